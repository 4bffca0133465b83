def steer(model, tokens, hook_name, direction, coeff):
    positions = torch.arange(tokens.shape[1])
    scale = (positions > 0).float()[None, :, None] * coeff  # nothing at BOS

    def hook_fn(resid, hook):
        return resid + scale * direction

    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook_fn)])
    return logits - logits.logsumexp(dim=-1, keepdim=True)
