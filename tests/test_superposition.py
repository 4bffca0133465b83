"""Lab 03, superposition: grading a class end to end, and the result the lab is about.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/03_superposition.json``. Separately, a sweep trained with the
solution's own training loop must reproduce the dimensions-per-feature plateaus of Elhage et al.
(2022), measured here with formulas written independently of the lab's.
"""

import math

import torch
from classes import GradedClass
from course import solution_functions

LAB = "03_superposition"


class TestGrading(GradedClass):
    LAB = LAB
    PROPERTY_MESSAGES = {"no_zero_grad": "worse than the reference"}
    #: The rest are judged in process: each kernel trains a sweep of toy models.
    END_TO_END = ("probability_inverted", "no_zero_grad")


# --- the published result ------------------------------------------------------------------------

#: Dimensions per feature where Elhage et al. (2022) report plateaus: a feature alone, tetrahedron,
#: triangle, antipodal pair, pentagon, square antiprism.
PUBLISHED = {"1": 1.0, "3/4": 3 / 4, "2/3": 2 / 3, "1/2": 1 / 2, "2/5": 2 / 5, "3/8": 3 / 8}
TOLERANCE = 0.03


def share_near(D: torch.Tensor, represented: torch.Tensor, *values: float) -> torch.Tensor:
    """Per instance, the share of represented features whose D_i lies within TOLERANCE of one of ``values``."""
    near = torch.zeros_like(D, dtype=torch.bool)
    for value in values:
        near |= (D - value).abs() < TOLERANCE
    return (near & represented).sum(1) / represented.sum(1).clamp_min(1)


def longest_run(mask: torch.Tensor) -> int:
    best = run = 0
    for hit in mask.tolist():
        run = run + 1 if hit else 0
        best = max(best, run)
    return best


def test_the_dimensions_per_feature_curve_passes_through_the_published_plateaus():
    n, m, k = 30, 6, 20  # the lab's CPU-tier sweep: 30 equally important features in 6 dimensions
    p = 10 ** -torch.linspace(0, 1, k)  # 1 / (1 - S) from 1 to 10
    W = (torch.randn(k, m, n, generator=torch.Generator().manual_seed(4)) * math.sqrt(2 / (m + n))).requires_grad_()
    b = torch.zeros(k, n, requires_grad=True)
    train = solution_functions(LAB)["train_toy_models"]
    train(W, b, p, torch.ones(k, n), 1500, 256, 1e-2, torch.Generator().manual_seed(104), torch.zeros(k, 1, n))

    # Measured with formulas of our own, in float64: m / ||W||_F^2, and D_i from the columns W_i.
    W = W.detach().double()
    dims = m / torch.einsum("khn,khn->k", W, W)
    norms = W.norm(dim=1)
    overlaps = torch.einsum("khi,khj->kij", W / norms[:, None, :], W)  # unit W_i . W_j
    D = norms**2 / (overlaps**2).sum(-1)
    represented = norms > 0.5

    # Dense features: one dimension per feature.
    assert abs(dims[0] - PUBLISHED["1"]) < TOLERANCE, dims
    # The antipodal plateau: the curve sticks at 1/2 over several sparsities, every feature in a pair.
    assert longest_run((dims - PUBLISHED["1/2"]).abs() < TOLERANCE) >= 3, dims
    assert (share_near(D, represented, PUBLISHED["1/2"]) >= 0.9).sum() >= 3
    # Sparser: features gather at pentagons and square antiprisms (2/5 and 3/8 lie 0.025 apart).
    assert share_near(D, represented, PUBLISHED["2/5"], PUBLISHED["3/8"]).max() >= 0.5
    # Denser than the pairs: triangles and tetrahedra, seen here only partly at this size.
    assert share_near(D, represented, PUBLISHED["2/3"], PUBLISHED["3/4"]).max() >= 0.3
    # And the curve keeps falling past the last plateau.
    assert dims[-1] < PUBLISHED["3/8"]
