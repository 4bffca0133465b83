def feature_precision(z, labels):
    active = (z > 0).float()
    joint = torch.einsum("bs,bf->sf", active, labels.float())
    totals = active.sum(dim=0)[:, None]
    return torch.where(totals > 0, joint / totals.clamp_min(1), torch.zeros_like(joint))
