def k_composition_scores(model, earlier: int = 0, later: int = 1) -> Float[Tensor, "head_earlier head_later"]:
    n = model.cfg.n_heads
    return torch.tensor(
        [[composition_score(model.OV[earlier, i].AB, model.QK[later, j].T.AB) for j in range(n)] for i in range(n)]
    )
