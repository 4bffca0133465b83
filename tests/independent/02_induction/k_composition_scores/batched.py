def k_composition_scores(model, earlier: int = 0, later: int = 1) -> Float[Tensor, "head_earlier head_later"]:
    W_A = model.OV[earlier].AB  # [head, d_model, d_model]
    W_B = model.QK[later].T.AB
    products = W_A[:, None] @ W_B[None, :]  # [head_earlier, head_later, d_model, d_model]
    numerator = products.norm(dim=(-2, -1))
    denominator = W_A.norm(dim=(-2, -1))[:, None] * W_B.norm(dim=(-2, -1))[None, :]
    return numerator / denominator
