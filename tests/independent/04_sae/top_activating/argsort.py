def top_activating(z: Float[Tensor, "batch d_sae"], latent: int, k: int) -> Int[Tensor, "k"]:
    return torch.argsort(z[:, latent], descending=True)[:k]
