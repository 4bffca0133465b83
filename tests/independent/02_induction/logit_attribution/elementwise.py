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
    correct = W_U[:, tokens[1:]].T / scale[:-1, None]  # [seq-1, d_model]: each next token's unembedding, scaled
    token = (embed[:-1] * correct).sum(-1, keepdim=True)
    position = (pos_embed[:-1] * correct).sum(-1, keepdim=True)
    l0 = (l0_results[:-1] * correct[:, None, :]).sum(-1)
    l1 = (l1_results[:-1] * correct[:, None, :]).sum(-1)
    constant = correct @ b_O.sum(0) + b_U[tokens[1:]]
    return torch.cat([token, position, l0, l1, constant[:, None]], dim=1)
