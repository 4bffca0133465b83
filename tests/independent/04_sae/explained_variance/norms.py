def explained_variance(x: Float[Tensor, "batch d_in"], x_hat: Float[Tensor, "batch d_in"]) -> Float[Tensor, ""]:
    err = torch.linalg.norm(x - x_hat) ** 2
    spread = torch.linalg.norm(x - x.mean(0)) ** 2
    return 1.0 - err / spread
