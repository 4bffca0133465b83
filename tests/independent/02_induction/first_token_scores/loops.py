def first_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    n_layers, n_batch, n_heads, n_queries, _ = patterns.shape
    out = torch.zeros(n_layers, n_heads)
    for layer in range(n_layers):
        for head in range(n_heads):
            acc = 0.0
            for b in range(n_batch):
                acc += patterns[layer, b, head, 1:, 0].sum()
            out[layer, head] = acc / (n_batch * (n_queries - 1))
    return out
