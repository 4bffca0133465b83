"""Lab 03, superposition: grading a class end to end, and the result the lab is about.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/03_superposition.json``. Separately, a sweep trained with the
solution's own training loop must reproduce the dimensions-per-feature plateaus of Elhage et al.
(2022), measured here with formulas written independently of the lab's; the checks of the
exercises judged by their properties pass correct answers written another way; and the neuron
model's functions agree with plain implementations.
"""

import math

import torch
from classes import GradedClass
from course import solution_functions

from interplab.checker import Lab

LAB = "03_superposition"


class TestGrading(GradedClass):
    LAB = LAB
    PROPERTY_MESSAGES = {"no_zero_grad": "worse than the reference", "pairs_as_blocks": "side by side",
                         "features_independent": "must be present together", "one_value_per_pair": "independent values",
                         "pair_probability_p": "must be present with probability p", "both_present": "at most one feature",
                         "halves_not_interleaved": "side by side"}
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


# --- checks judged by properties are fair; the neuron model, written plainly --------------------------


def correlated_by_bernoulli(n_instances, batch, n_pairs, feature_probability, generator):
    """Correct, written another way: Bernoulli presence per pair, the pair's two features stacked side by side."""
    probability = feature_probability[:, None, None].expand(n_instances, batch, n_pairs)
    present = torch.bernoulli(probability, generator=generator)
    values = torch.rand(n_instances, batch, n_pairs, 2, generator=generator)
    return (values * present[..., None]).flatten(-2)


def anticorrelated_by_one_draw(n_instances, batch, n_pairs, feature_probability, generator):
    """Correct, written another way: one uniform u per pair; the first feature if u < p, the second if p <= u < 2p."""
    u = torch.rand(n_instances, batch, n_pairs, generator=generator)
    p = feature_probability[:, None, None]
    present = torch.stack([u < p, (u >= p) & (u < 2 * p)], dim=-1).flatten(-2)
    return torch.rand(n_instances, batch, 2 * n_pairs, generator=generator) * present


def test_correct_pair_generators_written_differently_pass():
    lab = Lab(LAB)
    assert lab.verdict("correlated_features", correlated_by_bernoulli).passed
    assert lab.verdict("anticorrelated_features", anticorrelated_by_one_draw).passed


def test_the_neuron_model_agrees_with_plain_loops():
    fns = solution_functions(LAB)
    generator = torch.Generator().manual_seed(0)
    W, b, x = torch.randn(2, 3, 7, generator=generator), torch.randn(2, 7, generator=generator), torch.rand(2, 5, 7, generator=generator)
    W[1, 2] = -W[1, 2].abs()  # a neuron that nothing switches on
    expected = torch.zeros(2, 5, 7)
    shares = torch.zeros(2, 3)
    for k in range(2):
        for example in range(5):
            neurons = [max(0.0, float(sum(W[k, j, i] * x[k, example, i] for i in range(7)))) for j in range(3)]
            for i in range(7):
                expected[k, example, i] = max(0.0, sum(W[k, j, i].item() * neurons[j] for j in range(3)) + b[k, i].item())
        for j in range(3):
            positive = [max(0.0, W[k, j, i].item()) ** 2 for i in range(7)]
            shares[k, j] = max(positive) / sum(positive) if sum(positive) > 0 else 0.0
    torch.testing.assert_close(fns["neuron_forward"](W, b, x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fns["neuron_top_share"](W), shares, rtol=1e-5, atol=1e-6)
