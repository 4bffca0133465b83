def ablate_latent(model, sae, tokens, hook_name, latent):
    def ablate(activation, hook):
        contribution = encode(sae, activation)[..., latent:latent + 1] * sae.W_dec[latent]
        not_bos = torch.ones(activation.shape[1], 1)
        not_bos[0] = 0
        return activation - contribution * not_bos

    with torch.no_grad():
        clean = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True)
        ablated = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=[(hook_name, ablate)])
    return ablated - clean
