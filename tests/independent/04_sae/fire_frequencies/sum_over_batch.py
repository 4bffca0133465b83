def fire_frequencies(z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "d_sae"]:
    fired = z > 0
    return fired.sum(dim=0).float() / len(z)
