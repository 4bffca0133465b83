def feature_precision(z: Float[Tensor, "batch d_sae"], labels: Bool[Tensor, "batch n_features"]) -> Float[Tensor, "d_sae n_features"]:
    fires = z > 0
    both = (fires[:, :, None] & labels[:, None, :]).sum(0).float()
    n = fires.sum(0).float()
    return both / torch.maximum(n, torch.ones_like(n))[:, None]
