def neuron_forward(
    W: Float[Tensor, "inst neuron feat"], b: Float[Tensor, "inst feat"], x: Float[Tensor, "inst batch feat"]
) -> Float[Tensor, "inst batch feat"]:
    hidden = torch.bmm(x, W.transpose(1, 2)).clamp(min=0)  # [inst, batch, neuron]
    out = torch.bmm(hidden, W) + b[:, None]
    return out.clamp(min=0)
