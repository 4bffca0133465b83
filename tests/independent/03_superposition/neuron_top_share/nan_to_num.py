def neuron_top_share(W):
    pos = torch.relu(W).square()
    share = pos.amax(-1) / pos.sum(-1)
    return torch.nan_to_num(share, nan=0.0)  # 0 / 0 for a neuron with no positive weight
