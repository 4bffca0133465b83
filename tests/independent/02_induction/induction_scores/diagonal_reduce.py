def induction_scores(patterns: Float[Tensor, "layer batch head query key"], seq_len: int) -> Float[Tensor, "layer head"]:
    stripe = torch.diagonal(patterns, offset=-(seq_len - 1), dim1=-2, dim2=-1)
    stripe = stripe[..., 2:]  # seq_len + 2 entries; the first two are queries of the first half
    return einops.reduce(stripe, "l b h q -> l h", "mean")
