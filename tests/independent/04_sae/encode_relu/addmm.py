def encode_relu(sae: SAE, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
    return torch.nn.functional.relu(torch.addmm(sae.b_enc, x - sae.b_dec, sae.W_enc))
