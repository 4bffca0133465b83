def feature_dimensionality(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst feat"]:
    norms = W.norm(dim=1)  # [inst, feat]
    W_hat = W / norms.clamp(min=1e-12).unsqueeze(1)
    dots = W_hat.transpose(1, 2) @ W  # [inst, feat_i, feat_j]
    return norms**2 / (dots**2).sum(-1)
