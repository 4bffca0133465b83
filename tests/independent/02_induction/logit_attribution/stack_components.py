def logit_attribution(
    embed: Float[Tensor, "seq d_model"],
    l1_results: Float[Tensor, "seq head d_model"],
    l2_results: Float[Tensor, "seq head d_model"],
    W_U: Float[Tensor, "d_model d_vocab"],
    tokens: Int[Tensor, "seq"],
) -> Float[Tensor, "seq-1 n_components"]:
    # every component that writes to the residual stream, in the order asked for
    components = torch.cat([embed[:, None, :], l1_results, l2_results], dim=1)  # [seq, 1 + 2h, d]
    unembed = W_U.T[tokens[1:]]  # [seq-1, d]
    return einops.einsum(components[:-1], unembed, "s c d, s d -> s c")
