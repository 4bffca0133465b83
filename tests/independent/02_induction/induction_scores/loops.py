def induction_scores(patterns, seq_len):
    n_layers, batch, n_heads = patterns.shape[:3]
    scores = torch.zeros(n_layers, n_heads)
    for layer in range(n_layers):
        for head in range(n_heads):
            total = 0.0
            for query in range(seq_len + 1, 2 * seq_len + 1):
                total += patterns[layer, :, head, query, query - seq_len + 1].sum()
            scores[layer, head] = total / (batch * seq_len)
    return scores
