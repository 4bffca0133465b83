def logit_attribution(embed, pos_embed, l0_results, l1_results, b_O, scale, W_U, b_U, tokens):
    u = W_U[:, tokens[1:]] / scale[:-1]
    e = torch.einsum("sd,ds->s", embed[:-1], u).unsqueeze(1)
    p = torch.einsum("sd,ds->s", pos_embed[:-1], u).unsqueeze(1)
    a = torch.einsum("shd,ds->sh", l0_results[:-1], u)
    b = torch.einsum("shd,ds->sh", l1_results[:-1], u)
    c = torch.einsum("ld,ds->s", b_O, u) + b_U[tokens[1:]]
    return torch.hstack([e, p, a, b, c.unsqueeze(1)])
