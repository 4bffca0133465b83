def importance_loss(
    x_hat: Float[Tensor, "inst batch feat"], x: Float[Tensor, "inst batch feat"], importance: Float[Tensor, "inst feat"]
) -> Float[Tensor, "inst"]:
    losses = [(importance[i] * (x[i] - x_hat[i]).pow(2)).mean() for i in range(x.shape[0])]
    return torch.stack(losses)
