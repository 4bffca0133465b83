def sae_loss(sae: SAE, x: Float[Tensor, "batch d_in"], l1_coeff: float) -> Float[Tensor, ""]:
    z = encode(sae, x)
    diff = decode(sae, z) - x
    loss = torch.einsum("bd,bd->", diff, diff) / len(x)
    if sae.k is None:
        loss = loss + l1_coeff * z.sum() / len(x)
    return loss
