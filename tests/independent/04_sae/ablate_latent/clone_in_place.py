def ablate_latent(model, sae, tokens, hook_name, latent):
    def hook_fn(activation, hook):
        activation = activation.clone()
        strength = encode(sae, activation[:, 1:])[:, :, latent]
        activation[:, 1:] -= strength.unsqueeze(-1) * sae.W_dec[latent]
        return activation

    with torch.no_grad():
        before = model(tokens, return_type="loss", loss_per_token=True)
        after = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=[(hook_name, hook_fn)])
    return after - before
