def fire_frequencies(z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "d_sae"]:
    return (z > 0).to(torch.float32).mean(dim=0)
