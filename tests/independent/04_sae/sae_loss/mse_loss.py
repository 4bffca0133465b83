import torch.nn.functional as F


def sae_loss(sae, x, l1_coeff):
    latents = encode(sae, x)
    reconstruction = decode(sae, latents)
    mse = F.mse_loss(reconstruction, x, reduction="sum") / x.shape[0]
    sparsity = latents.abs().sum() / x.shape[0]
    return mse if sae.k is not None else mse + l1_coeff * sparsity
