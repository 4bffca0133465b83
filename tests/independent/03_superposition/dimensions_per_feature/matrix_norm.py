def dimensions_per_feature(W):
    return W.size(1) / torch.linalg.matrix_norm(W) ** 2
