def loss_recovered(model, sae: SAE, tokens: Int[Tensor, "batch pos"], hook_name: str) -> Float[Tensor, "4"]:
    def through_sae(resid, hook):
        b, p, d = resid.shape
        flat = resid[:, 1:].reshape(-1, d)  # the SAE sees one token per row
        rebuilt = decode(sae, encode(sae, flat)).reshape(b, p - 1, d)
        return torch.cat((resid[:, :1], rebuilt), dim=1)

    def ablate(resid, hook):
        mask = torch.ones_like(resid)
        mask[:, 1:] = 0
        return resid * mask

    losses = []
    with torch.no_grad():
        losses.append(model(tokens, return_type="loss"))
        for fn in (through_sae, ablate):
            losses.append(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, fn)]))
    clean, spliced, ablated = [l.item() for l in losses]
    return torch.tensor([clean, spliced, ablated, (ablated - spliced) / (ablated - clean)])
