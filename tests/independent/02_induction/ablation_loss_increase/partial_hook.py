from functools import partial


def ablation_loss_increase(model, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer head"]:
    def ablate(z, hook, head):
        z[:, :, head, :] = 0
        return z

    base = model(tokens, return_type="loss").item()
    out = torch.zeros((model.cfg.n_layers, model.cfg.n_heads))
    for l in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            hook_name = f"blocks.{l}.attn.hook_z"
            ablated = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, partial(ablate, head=h))])
            out[l, h] = ablated.item() - base
    return out
