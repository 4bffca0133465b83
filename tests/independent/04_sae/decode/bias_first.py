def decode(sae: SAE, z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
    return sae.b_dec + z @ sae.W_dec
