def explained_variance(x: Float[Tensor, "batch d_in"], x_hat: Float[Tensor, "batch d_in"]) -> Float[Tensor, ""]:
    mean = x.mean(dim=0, keepdim=True)
    return 1 - ((x - x_hat) ** 2).sum() / ((x - mean) ** 2).sum()
