import einops
import torch.nn.functional as F


def feature_dimensionality(W: Float[Tensor, "inst hidden feat"]) -> Float[Tensor, "inst feat"]:
    unit = F.normalize(W, dim=1)  # unit columns
    projections = einops.einsum(unit, W, "inst hidden i, inst hidden j -> inst i j")
    return W.pow(2).sum(1) / projections.pow(2).sum(-1)
