def k_composition_scores(model, earlier=0, later=1):
    heads = range(model.cfg.n_heads)
    ov_mats = [model.OV[earlier, h].AB for h in heads]
    qk_mats = [model.QK[later, h].T.AB for h in heads]
    out = torch.empty(len(ov_mats), len(qk_mats))
    for a, W_A in enumerate(ov_mats):
        for b, W_B in enumerate(qk_mats):
            out[a, b] = composition_score(W_A, W_B)
    return out
