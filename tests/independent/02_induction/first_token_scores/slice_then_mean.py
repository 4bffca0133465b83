def first_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    to_first = patterns[:, :, :, 1:, 0]  # every query but the first, key 0
    return to_first.mean(dim=3).mean(dim=1)
