def prev_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    queries = torch.arange(1, patterns.shape[-1])
    stripe = patterns[..., queries, queries - 1]  # layer batch head query-1
    return stripe.mean(-1).mean(1)
