def k_composition_scores(model, earlier: int = 0, later: int = 1) -> Float[Tensor, "head_earlier head_later"]:
    n_heads = model.cfg.n_heads
    result = torch.zeros((n_heads, n_heads))
    for h0 in range(n_heads):
        W_OV = model.OV[earlier, h0].AB
        for h1 in range(n_heads):
            W_QK_T = model.QK[later, h1].T.AB
            result[h0, h1] = composition_score(W_OV, W_QK_T)
    return result
