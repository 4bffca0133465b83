def make_zero_hook(head_index):
    def hook_fn(activation, hook):
        activation[..., head_index, :] = 0.0
        return activation

    return hook_fn


def ablation_loss_increase(model, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer head"]:
    clean = model(tokens, return_type="loss").item()
    table = []
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        losses = [model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(name, make_zero_hook(h))]).item()
                  for h in range(model.cfg.n_heads)]
        table.append(losses)
    return torch.tensor(table) - clean
