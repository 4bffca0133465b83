def encode_batchtopk(sae: SAE, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
    rows = x.reshape(-1, x.shape[-1])
    latents = encode_relu(sae, rows)
    batch = rows.shape[0]
    values, indices = torch.topk(latents.reshape(-1), k=sae.k * batch)
    out = torch.zeros(latents.numel(), dtype=latents.dtype)
    out[indices] = values
    return out.reshape(*x.shape[:-1], sae.d_sae)
