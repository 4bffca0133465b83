def prev_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    L, B, H, P, _ = patterns.shape
    result = torch.zeros((L, H))
    for l in range(L):
        for h in range(H):
            values = [patterns[l, b, h, i, i - 1] for b in range(B) for i in range(1, P)]
            result[l, h] = sum(values) / len(values)
    return result
