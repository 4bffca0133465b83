def importance_loss(
    x_hat: Float[Tensor, "inst batch feat"], x: Float[Tensor, "inst batch feat"], importance: Float[Tensor, "inst feat"]
) -> Float[Tensor, "inst"]:
    return (importance.unsqueeze(1) * (x_hat - x).square()).mean(dim=[1, 2])
