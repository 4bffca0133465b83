def logit_effect(model, sae: SAE, latent: int) -> Float[Tensor, "d_vocab"]:
    row = sae.W_dec[latent, :]
    return torch.matmul(row, model.W_U)
