def induction_scores(patterns: Float[Tensor, "layer batch head query key"], seq_len: int) -> Float[Tensor, "layer head"]:
    queries = torch.arange(seq_len + 1, 2 * seq_len + 1)  # the repeated half
    keys = queries - seq_len + 1  # the token after the earlier copy
    return patterns[..., queries, keys].mean(dim=(1, 3))
