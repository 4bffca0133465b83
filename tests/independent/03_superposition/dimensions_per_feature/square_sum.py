def dimensions_per_feature(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst"]:
    m = W.shape[1]
    return m / (W**2).sum(dim=(1, 2))
