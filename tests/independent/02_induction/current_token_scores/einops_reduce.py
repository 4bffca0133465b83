def current_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    diag = torch.diagonal(patterns, dim1=3, dim2=4)  # layer batch head pos
    return einops.reduce(diag[:, :, :, 1:], "layer batch head pos -> layer head", "mean")
