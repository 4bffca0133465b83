def feature_precision(z: Float[Tensor, "batch d_sae"], labels: Bool[Tensor, "batch n_features"]) -> Float[Tensor, "d_sae n_features"]:
    fires = z > 0
    out = torch.zeros(z.shape[1], labels.shape[1])
    for latent in range(z.shape[1]):
        on = fires[:, latent]
        if on.any():  # a dead latent keeps its row of zeros
            out[latent] = labels[on].float().mean(dim=0)
    return out
