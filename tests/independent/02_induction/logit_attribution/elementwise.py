def logit_attribution(
    embed: Float[Tensor, "seq d_model"],
    l1_results: Float[Tensor, "seq head d_model"],
    l2_results: Float[Tensor, "seq head d_model"],
    W_U: Float[Tensor, "d_model d_vocab"],
    tokens: Int[Tensor, "seq"],
) -> Float[Tensor, "seq-1 n_components"]:
    correct = W_U[:, tokens[1:]].T  # [seq-1, d_model]: unembedding of each next token
    direct = (embed[:-1] * correct).sum(-1, keepdim=True)
    l1 = (l1_results[:-1] * correct[:, None, :]).sum(-1)
    l2 = (l2_results[:-1] * correct[:, None, :]).sum(-1)
    return torch.cat([direct, l1, l2], dim=1)
