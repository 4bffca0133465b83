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
    rows = []
    for i in range(len(tokens) - 1):
        nxt = tokens[i + 1]
        u = W_U[:, nxt] / scale[i]
        row = [embed[i] @ u, pos_embed[i] @ u]
        row += [l0_results[i, h] @ u for h in range(l0_results.shape[1])]
        row += [l1_results[i, h] @ u for h in range(l1_results.shape[1])]
        row.append(sum(b_O[layer] @ u for layer in range(b_O.shape[0])) + b_U[nxt])
        rows.append(torch.stack(row))
    return torch.stack(rows)
