def logit_effect(model, sae, latent):
    # a latent firing with value 1 alone writes one_hot @ W_dec into the residual stream
    one_hot = torch.zeros(sae.W_dec.shape[0])
    one_hot[latent] = 1.0
    written = one_hot @ sae.W_dec
    return (written[None, :] @ model.W_U)[0]
