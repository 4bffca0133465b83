def toy_forward(
    W: Float[Tensor, "inst hidden feat"], b: Float[Tensor, "inst feat"], x: Float[Tensor, "inst batch feat"]
) -> Float[Tensor, "inst batch feat"]:
    outs = []
    for i in range(W.shape[0]):
        h = x[i] @ W[i].T
        outs.append(torch.relu(h @ W[i] + b[i]))
    return torch.stack(outs)
