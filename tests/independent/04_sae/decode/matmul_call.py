def decode(sae: SAE, z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
    return torch.matmul(z, sae.W_dec) + sae.b_dec
