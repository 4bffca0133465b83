def encode_topk(sae: SAE, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
    z = encode_relu(sae, x)
    out = torch.zeros_like(z)
    for row in range(z.shape[0]):
        top = torch.argsort(z[row], descending=True)[: sae.k]
        out[row, top] = z[row, top]
    return out
