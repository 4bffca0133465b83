"""Measures the course's notebooks and graders share."""

from __future__ import annotations

import torch
from torch import Tensor


def auroc(positive: Tensor, negative: Tensor) -> float:
    """The area under the ROC curve of a score that should be higher on ``positive`` examples than on ``negative``
    ones: the probability that a random positive outscores a random negative, ties counted half (Mann-Whitney).
    In float64; 0.5 is chance, 1 a perfect separation."""
    p, n = positive.detach().double().flatten().cpu(), negative.detach().double().flatten().cpu()
    if not len(p) or not len(n):
        raise ValueError(f"an AUROC needs examples of both kinds; got {len(p)} positive and {len(n)} negative")
    ranks = torch.cat([p, n]).argsort().argsort().double() + 1  # ranks from 1; ties get averaged below
    values = torch.cat([p, n])
    for value in values.unique()[torch.bincount(torch.unique(values, return_inverse=True)[1]) > 1]:
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))
