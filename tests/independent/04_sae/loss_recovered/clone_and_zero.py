def loss_recovered(model, sae: SAE, tokens: Int[Tensor, "batch pos"], hook_name: str) -> Float[Tensor, "4"]:
    def replace_with_sae(act, hook):
        recon = decode(sae, encode(sae, act[:, 1:]))
        return torch.cat([act[:, :1], recon], dim=1)

    def zero_out(act, hook):
        out = act.clone()
        out[:, 1:] = 0.0
        return out

    with torch.no_grad():
        clean = float(model(tokens, return_type="loss"))
        spliced = float(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, replace_with_sae)]))
        ablated = float(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, zero_out)]))
    recovered = (ablated - spliced) / (ablated - clean)
    return torch.tensor([clean, spliced, ablated, recovered])
