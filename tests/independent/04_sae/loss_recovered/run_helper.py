def loss_recovered(model, sae, tokens, hook_name):
    def run(hook_fn=None):
        hooks = [] if hook_fn is None else [(hook_name, hook_fn)]
        with torch.no_grad():
            return model.run_with_hooks(tokens, return_type="loss", fwd_hooks=hooks).item()

    def sae_hook(activation, hook):
        activation[:, 1:] = decode(sae, encode(sae, activation[:, 1:]))
        return activation

    def zero_hook(activation, hook):
        activation[:, 1:] = 0
        return activation

    clean = run()
    with_sae = run(sae_hook)
    zeroed = run(zero_hook)
    return torch.tensor([clean, with_sae, zeroed, (zeroed - with_sae) / (zeroed - clean)])
