def head_composition_scores(model, mode, earlier=0, later=1):
    def reader(j):
        if mode == "V":
            return model.OV[later, j].AB
        qk = model.QK[later, j].AB
        return qk if mode == "Q" else qk.T  # the key side reads through the transpose
    n = model.cfg.n_heads
    return torch.tensor([[composition_score(model.OV[earlier, i].AB, reader(j)) for j in range(n)] for i in range(n)])
