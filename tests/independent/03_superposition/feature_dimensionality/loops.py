def feature_dimensionality(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst feat"]:
    n_inst, _, n_feat = W.shape
    D = torch.zeros(n_inst, n_feat)
    for i in range(n_inst):
        for f in range(n_feat):
            col = W[i, :, f]
            length = col.norm()
            direction = col / max(length.item(), 1e-12)
            D[i, f] = length**2 / ((direction @ W[i]) ** 2).sum()
    return D
