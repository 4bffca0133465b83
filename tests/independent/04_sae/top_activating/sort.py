def top_activating(z: Float[Tensor, "batch d_sae"], latent: int, k: int) -> Int[Tensor, "k"]:
    column = z[:, latent]
    return column.sort(descending=True).indices[:k]
