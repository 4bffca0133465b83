def dimensions_per_feature(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst"]:
    hidden = W.shape[1]
    return torch.tensor([hidden / (W[i] ** 2).sum().item() for i in range(W.shape[0])])
