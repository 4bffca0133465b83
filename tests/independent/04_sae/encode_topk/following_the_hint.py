def encode_topk(sae: SAE, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
    latents = encode_relu(sae, x)
    values, indices = latents.topk(sae.k, dim=-1)
    return torch.zeros_like(latents).scatter(-1, indices, values)
