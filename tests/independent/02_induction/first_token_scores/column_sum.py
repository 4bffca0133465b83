def first_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    n = patterns.shape[-2]
    column = patterns[..., 0]  # attention to BOS from every query
    without_q0 = column.sum(dim=-1) - column[..., 0]
    return (without_q0 / (n - 1)).mean(dim=1)
