def current_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    n_layers, batch, n_heads, n_pos, _ = patterns.shape
    scores = torch.zeros(n_layers, n_heads)
    for layer in range(n_layers):
        for head in range(n_heads):
            total = 0.0
            for q in range(1, n_pos):
                total += patterns[layer, :, head, q, q].mean()
            scores[layer, head] = total / (n_pos - 1)
    return scores
