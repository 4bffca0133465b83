def loss_recovered(model, sae: SAE, tokens: Int[Tensor, "batch pos"], hook_name: str) -> Float[Tensor, "4"]:
    def keeping_bos(replace):
        def hook_fn(act, hook):
            position = torch.arange(act.shape[1], device=act.device)[None, :, None]
            return torch.where(position == 0, act, replace(act))

        return hook_fn

    sae_hook = keeping_bos(lambda a: decode(sae, encode(sae, a)))
    zero_hook = keeping_bos(torch.zeros_like)
    with torch.no_grad():
        L_clean = model(tokens, return_type="loss").item()
        L_sae = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, sae_hook)]).item()
        L_zero = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, zero_hook)]).item()
    return torch.tensor([L_clean, L_sae, L_zero, (L_zero - L_sae) / (L_zero - L_clean)])
