def induction_scores_with_ablation(model, tokens, seq_len, heads, method="zero"):
    scores = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    queries = torch.arange(seq_len + 1, 2 * seq_len + 1)

    def score(pattern, hook):
        # pattern: [batch, head, query, key]; the induction target of query q is key q - seq_len + 1
        on_target = pattern[:, :, queries, queries - seq_len + 1]
        scores[hook.layer()] = on_target.mean(dim=(0, 2)).cpu()

    hooks = ablation_hooks(heads, method)
    hooks += [(f"blocks.{layer}.attn.hook_pattern", score) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    return scores
