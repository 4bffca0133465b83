def induction_scores_with_ablation(model, tokens, seq_len, heads, method="zero"):
    patterns = {}

    def keep_pattern(pattern, hook):
        patterns[hook.layer()] = pattern.detach()

    hooks = ablation_hooks(heads, method) + [(f"blocks.{l}.attn.hook_pattern", keep_pattern) for l in range(model.cfg.n_layers)]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    return induction_scores(torch.stack([patterns[l] for l in range(model.cfg.n_layers)]), seq_len)
