def feature_dimensionality(W):
    sq_norms = torch.einsum("ihf,ihf->if", W, W)
    unit = W / torch.sqrt(sq_norms).clamp_min(1e-12)[:, None, :]
    overlap = torch.einsum("ihf,ihg->ifg", unit, W)
    return sq_norms / overlap.pow(2).sum(dim=2)
