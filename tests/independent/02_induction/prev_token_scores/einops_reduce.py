def prev_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    below_diagonal = patterns.diagonal(offset=-1, dim1=-2, dim2=-1)
    return einops.reduce(below_diagonal, "l b h p -> l h", "mean")
