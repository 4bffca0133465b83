def eigenvalue_copying_scores(model, layer):
    out = []
    for h in range(model.cfg.n_heads):
        lam = (model.W_E @ model.OV[layer, h] @ model.W_U).eigenvalues
        out.append((lam.real.sum() / lam.abs().sum()).item())
    return torch.tensor(out)
