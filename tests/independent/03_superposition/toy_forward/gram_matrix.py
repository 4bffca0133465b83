def toy_forward(
    W: Float[Tensor, "inst hidden feat"], b: Float[Tensor, "inst feat"], x: Float[Tensor, "inst batch feat"]
) -> Float[Tensor, "inst batch feat"]:
    gram = W.transpose(1, 2) @ W  # W^T W, [inst, feat, feat], symmetric
    pre = torch.bmm(x, gram) + b.unsqueeze(1)
    return torch.relu(pre)
