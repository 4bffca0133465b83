def logit_attribution(embed, l1_results, l2_results, W_U, tokens):
    u = W_U[:, tokens[1:]]
    e = torch.einsum("sd,ds->s", embed[:-1], u).unsqueeze(1)
    a = torch.einsum("shd,ds->sh", l1_results[:-1], u)
    b = torch.einsum("shd,ds->sh", l2_results[:-1], u)
    return torch.hstack([e, a, b])
