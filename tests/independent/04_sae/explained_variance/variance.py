def explained_variance(x: Float[Tensor, "batch d_in"], x_hat: Float[Tensor, "batch d_in"]) -> Float[Tensor, ""]:
    resid = (x - x_hat).pow(2).sum()
    total = x.var(dim=0, unbiased=False).sum() * x.shape[0]  # sum of squared deviations
    return 1 - resid / total
