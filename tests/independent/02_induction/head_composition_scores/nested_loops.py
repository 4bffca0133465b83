def head_composition_scores(model, mode: str, earlier: int = 0, later: int = 1) -> Float[Tensor, "head_earlier head_later"]:
    assert mode in ("Q", "K", "V"), mode
    n_heads = model.cfg.n_heads
    result = torch.zeros((n_heads, n_heads))
    for h1 in range(n_heads):
        W_QK = model.W_Q[later, h1] @ model.W_K[later, h1].T
        W_OV_later = model.W_V[later, h1] @ model.W_O[later, h1]
        second = {"Q": W_QK, "K": W_QK.T, "V": W_OV_later}[mode]
        for h0 in range(n_heads):
            first = model.W_V[earlier, h0] @ model.W_O[earlier, h0]
            result[h0, h1] = torch.linalg.matrix_norm(first @ second) / (
                torch.linalg.matrix_norm(first) * torch.linalg.matrix_norm(second))
    return result
