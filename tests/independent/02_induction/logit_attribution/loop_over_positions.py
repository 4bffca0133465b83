def logit_attribution(
    embed: Float[Tensor, "seq d_model"],
    l1_results: Float[Tensor, "seq head d_model"],
    l2_results: Float[Tensor, "seq head d_model"],
    W_U: Float[Tensor, "d_model d_vocab"],
    tokens: Int[Tensor, "seq"],
) -> Float[Tensor, "seq-1 n_components"]:
    rows = []
    for i in range(len(tokens) - 1):
        u = W_U[:, tokens[i + 1]]
        row = [embed[i] @ u]
        row += [l1_results[i, h] @ u for h in range(l1_results.shape[1])]
        row += [l2_results[i, h] @ u for h in range(l2_results.shape[1])]
        rows.append(torch.stack(row))
    return torch.stack(rows)
