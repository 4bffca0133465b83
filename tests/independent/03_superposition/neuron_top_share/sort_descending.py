def neuron_top_share(W: Float[Tensor, "inst neuron feat"]) -> Float[Tensor, "inst neuron"]:
    squared = torch.where(W > 0, W * W, torch.zeros_like(W))
    ordered = squared.sort(dim=-1, descending=True).values
    total = ordered.sum(dim=-1)
    result = torch.zeros_like(total)
    alive = total > 0
    result[alive] = ordered[..., 0][alive] / total[alive]
    return result
