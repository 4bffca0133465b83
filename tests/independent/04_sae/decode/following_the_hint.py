def decode(sae: SAE, z: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
    x_hat = z @ sae.W_dec + sae.b_dec
    return x_hat
