def logit_effect(model, sae, latent):
    return torch.einsum("d,dv->v", sae.W_dec[latent], model.W_U)
