def feature_precision(z: Float[Tensor, "batch d_sae"], labels: Bool[Tensor, "batch n_features"]) -> Float[Tensor, "d_sae n_features"]:
    fired = (z > 0).float()
    counts = fired.T @ labels.float()
    n_fired = fired.sum(0).clamp(min=1)
    return counts / n_fired.unsqueeze(-1)
