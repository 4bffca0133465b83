def joint_ablation_loss_increase(
    model, tokens: Int[Tensor, "batch pos"], heads: list[tuple[int, int]], method: str = "zero"
) -> float:
    keep = torch.ones(model.cfg.n_layers, model.cfg.n_heads)
    for layer, head in heads:
        keep[layer, head] = 0.0

    def blend(z, hook):
        mask = keep[hook.layer()].to(z.device)[:, None]  # [head, 1], broadcast over batch, pos and d_head
        replacement = z.mean(dim=0, keepdim=True) if method == "mean" else torch.zeros_like(z)
        return z * mask + replacement * (1 - mask)

    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers) if (keep[layer] == 0).any()]
    with torch.no_grad():
        clean_loss = model(tokens, return_type="loss")
        ablated_loss = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(name, blend) for name in names])
    return float(ablated_loss - clean_loss)
