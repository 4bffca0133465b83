def dimensions_per_feature(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst"]:
    frobenius_sq = torch.einsum("ihf,ihf->i", W, W)
    return W.shape[1] / frobenius_sq
