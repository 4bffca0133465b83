def encode_relu(sae: SAE, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
    pre = x @ sae.W_enc - sae.b_dec @ sae.W_enc + sae.b_enc
    return pre.clamp(min=0)
