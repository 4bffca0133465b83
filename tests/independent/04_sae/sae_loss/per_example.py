def sae_loss(sae: SAE, x: Float[Tensor, "batch d_in"], l1_coeff: float) -> Float[Tensor, ""]:
    if sae.k is None:
        z = encode_relu(sae, x)
    else:
        z = encode_topk(sae, x)
    err = ((decode(sae, z) - x) ** 2).sum(dim=1)  # per example
    penalty = l1_coeff * z.norm(p=1, dim=1) if sae.k is None else torch.zeros_like(err)
    return (err + penalty).mean()
