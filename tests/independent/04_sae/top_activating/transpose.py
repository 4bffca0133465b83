def top_activating(z: Float[Tensor, "batch d_sae"], latent: int, k: int) -> Int[Tensor, "k"]:
    return z.T[latent].topk(k=k).indices
