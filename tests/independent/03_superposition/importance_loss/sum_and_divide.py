def importance_loss(
    x_hat: Float[Tensor, "inst batch feat"], x: Float[Tensor, "inst batch feat"], importance: Float[Tensor, "inst feat"]
) -> Float[Tensor, "inst"]:
    _, batch, feats = x.shape
    total = torch.sum(importance[:, None, :] * (x - x_hat) ** 2, dim=(1, 2))
    return total / (batch * feats)
