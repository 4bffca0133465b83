def joint_ablation_loss_increase(model, tokens, heads, method="zero"):
    by_layer = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def ablate(z, hook, chosen):
        fill = z[:, :, chosen].mean(0) if method == "mean" else 0.0
        z[:, :, chosen] = fill
        return z

    hooks = [(f"blocks.{layer}.attn.hook_z", functools.partial(ablate, chosen=chosen)) for layer, chosen in by_layer.items()]
    clean = model(tokens, return_type="loss")
    with model.hooks(fwd_hooks=hooks):
        broken = model(tokens, return_type="loss")
    return (broken - clean).item()
