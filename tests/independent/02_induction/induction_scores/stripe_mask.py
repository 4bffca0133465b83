def induction_scores(patterns: Float[Tensor, "layer batch head query key"], seq_len: int) -> Float[Tensor, "layer head"]:
    size = patterns.shape[-1]
    mask = torch.zeros(size, size)
    for q in range(seq_len + 1, size):
        mask[q, q - seq_len + 1] = 1
    per_sequence = (patterns * mask).sum((-2, -1)) / seq_len
    return per_sequence.mean(1)
