def induction_scores_with_ablation(
    model, tokens: Int[Tensor, "batch pos"], seq_len: int, heads: list[tuple[int, int]], method: str = "zero"
) -> Float[Tensor, "layer head"]:
    def knock_out(z, hook):
        for layer, head in heads:
            if layer == hook.layer():
                z[:, :, head] = z[:, :, head].mean(0) if method == "mean" else torch.zeros_like(z[:, :, head])
        return z

    layers = sorted(set(layer for layer, _ in heads))
    with model.hooks(fwd_hooks=[(f"blocks.{layer}.attn.hook_z", knock_out) for layer in layers]):
        _, cache = model.run_with_cache(tokens)
    stacked = torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])
    return induction_scores(stacked, seq_len)
