def sae_loss(sae: SAE, x: Float[Tensor, "batch d_in"], l1_coeff: float) -> Float[Tensor, ""]:
    z = encode(sae, x)
    x_hat = decode(sae, z)
    recon = (x - x_hat).pow(2).sum(-1).mean()
    if sae.k is None:
        return recon + l1_coeff * z.sum(-1).mean()
    return recon
