def joint_ablation_loss_increase(model, tokens, heads, method="zero"):
    def make_hook(head):
        def hook(z, hook):
            if method == "mean":
                z[:, :, head] = z[:, :, head].mean(dim=0, keepdim=True)
            else:
                z[:, :, head] = 0
            return z
        return hook

    # one hook per ablated head; hooks on the same point run one after the other
    hooks = [(f"blocks.{layer}.attn.hook_z", make_hook(head)) for layer, head in heads]
    baseline = model(tokens, return_type="loss").item()
    ablated = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=hooks).item()
    return ablated - baseline
