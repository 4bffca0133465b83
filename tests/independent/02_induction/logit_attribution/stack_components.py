def logit_attribution(
    embed: Float[Tensor, "seq d_model"],
    pos_embed: Float[Tensor, "seq d_model"],
    l0_results: Float[Tensor, "seq head d_model"],
    l1_results: Float[Tensor, "seq head d_model"],
    b_O: Float[Tensor, "layer d_model"],
    scale: Float[Tensor, "seq"],
    W_U: Float[Tensor, "d_model d_vocab"],
    b_U: Float[Tensor, "d_vocab"],
    tokens: Int[Tensor, "seq"],
) -> Float[Tensor, "seq-1 n_terms"]:
    # every term that writes to the residual stream, in the order asked for
    n = embed.shape[0]
    biases = b_O.sum(dim=0).expand(n, -1)
    components = torch.stack([embed, pos_embed, *l0_results.unbind(1), *l1_results.unbind(1), biases], dim=1)
    components = components / scale[:, None, None]
    unembed = W_U.T[tokens[1:]]  # [seq-1, d]
    out = einops.einsum(components[:-1], unembed, "s c d, s d -> s c")
    out[:, -1] = out[:, -1] + b_U[tokens[1:]]
    return out
