"""Lab 03, superposition: the inputs each exercise is graded on.

The lab trains the toy models of Elhage et al. (2022), *Toy Models of Superposition*: ``n``
features squeezed into ``m < n`` hidden dimensions, ``h = W x``, ``x̂ = ReLU(Wᵀ h + b)``. Many
models (instances) are trained at once, so every tensor has the **instance axis first**:
``W [inst, hidden, feat]``, ``b [inst, feat]``, ``x [inst, batch, feat]``.

Four exercises are random by design and judged by their properties rather than by closeness:
drawing a batch of sparse features (shape, range, sparsity per instance, uniform values), drawing
correlated and anticorrelated pairs of features (the same, and the pairs' rule), and training a
sweep (the trained models' loss on a held-out batch, which the grader computes itself, against
the reference's on the same batch). The others are deterministic and are
compared with the reference on random tensors of sizes the student has not seen, and on
geometries whose answers are known (a pentagon, antipodal pairs).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float

from interplab.exercises import Exercise, Inputs, LabSpec

# --- inputs -----------------------------------------------------------------------------------


def _rand(inputs: Inputs, *size: int, tag: str) -> torch.Tensor:
    return torch.rand(*size, generator=inputs.generator(tag))


def _sparse(inputs: Inputs, n_inst: int, batch: int, n_feat: int, p: float | torch.Tensor, tag: str) -> torch.Tensor:
    """Sparse features like the lab's (``p`` one probability, or one per instance), fixed by the seed."""
    p = torch.as_tensor(p, dtype=torch.float32).reshape(-1, 1, 1)
    values = _rand(inputs, n_inst, batch, n_feat, tag=f"{tag}/values")
    return values * (_rand(inputs, n_inst, batch, n_feat, tag=f"{tag}/mask") < p)


def _probabilities(inputs: Inputs, base: list[float], tag: str) -> Float[torch.Tensor, "inst"]:
    """``base`` moved a little by the seed; 1 stays 1 and equal entries stay equal.

    Every value stays clear of 1/2, where "present with probability p" and "with 1 - p" look alike.
    """
    shift = (_rand(inputs, 1, tag=tag) - 0.5) * 0.06
    p = torch.tensor(base)
    return torch.where(p < 1.0, (p + shift).clamp(0.02, 0.95), p)


def _init(inputs: Inputs, n_inst: int, n_hidden: int, n_feat: int, tag: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Xavier-normal weights and a zero bias, as leaf tensors the student's loop can train in place."""
    std = math.sqrt(2.0 / (n_hidden + n_feat))
    W = (inputs.randn(n_inst, n_hidden, n_feat, tag=f"{tag}/W") * std).requires_grad_()
    return W, torch.zeros(n_inst, n_feat, requires_grad=True)


def _polygon(k: int, n_hidden: int = 2, scale: float = 1.0) -> Float[torch.Tensor, "hidden k"]:
    """``k`` unit vectors spread evenly round a circle in the first two hidden dimensions."""
    angles = 2 * math.pi * torch.arange(k) / k
    W = torch.zeros(n_hidden, k)
    W[0], W[1] = scale * torch.cos(angles), scale * torch.sin(angles)
    return W


def _known_geometries(inputs: Inputs) -> Float[torch.Tensor, "inst 3 8"]:
    """Weights whose answers are known: orthogonal features, antipodal pairs, a pentagon,
    and each of them slightly perturbed (features off by a little from the ideal shape)."""
    orthogonal = torch.zeros(3, 8)
    orthogonal[0, 0], orthogonal[1, 1], orthogonal[2, 2] = 1.0, 0.9, 1.1
    orthogonal[:, 3:] = 0.05 * inputs.randn(3, 5, tag="tiny")  # five weakly represented features
    pairs = torch.zeros(3, 8)
    pairs[:, :6] = torch.cat([torch.eye(3), -torch.eye(3)], dim=1)
    pairs[:, 6:] = 0.1 * inputs.randn(3, 2, tag="pairs")
    pentagon = torch.zeros(3, 8)
    pentagon[:, :5] = _polygon(5, 3)
    pentagon[2, 5:] = 1.0
    clean = torch.stack([orthogonal, pairs, pentagon])
    return torch.cat([clean, clean + 0.05 * inputs.randn(*clean.shape, tag="noise")])


def batch_cases(inputs: Inputs) -> list[tuple]:
    """(n_instances, batch, n_features, feature_probability, generator).

    Big enough that a sparsity off by a few per cent shows (1,200 to 1,600 draws per instance),
    small enough to keep the references light. The batch sizes are drawn by the seed and never the
    public ones, so a batch copied from the public references has the wrong shape.
    """
    return [
        (3, inputs.choose([280, 300, 320, 340], "batch1"), 5, _probabilities(inputs, [0.1, 0.3, 0.8], "p1"),
         inputs.generator("a")),
        (4, inputs.choose([180, 200, 220, 240], "batch2"), 8, _probabilities(inputs, [0.03, 0.2, 0.2, 1.0], "p2"),
         inputs.generator("b")),
        (2, inputs.choose([380, 400, 420, 440], "batch3"), 3, _probabilities(inputs, [0.7, 0.05], "p3"),
         inputs.generator("c")),
    ]


def forward_cases(inputs: Inputs) -> list[tuple]:
    """(W, b, x): sparse features like the lab's, and a square model (hidden = features) on any x."""
    return [
        (inputs.randn(3, 2, 5, tag="W1") * 0.7, inputs.randn(3, 5, tag="b1") * 0.3, _sparse(inputs, 3, 16, 5, 0.3, "x1")),
        (inputs.randn(2, 4, 4, tag="W2"), inputs.randn(2, 4, tag="b2") * 0.5, inputs.randn(2, 9, 4, tag="x2")),
        (inputs.randn(5, 3, 7, tag="W3") * 0.5, inputs.randn(5, 7, tag="b3") * 0.3, _sparse(inputs, 5, 11, 7, 0.2, "x3")),
    ]


def loss_cases(inputs: Inputs) -> list[tuple]:
    """(x_hat, x, importance), with the instance, batch and feature axes of different sizes
    (and, once, as many instances as features, so a mean over the wrong axis has the right shape)."""
    cases = []
    for i, (n_inst, batch, n_feat) in enumerate([(3, 20, 5), (4, 8, 4), (2, 30, 6)]):
        x = _sparse(inputs, n_inst, batch, n_feat, 0.4, f"x{i}")
        x_hat = torch.relu(x + 0.3 * inputs.randn(n_inst, batch, n_feat, tag=f"noise{i}"))
        importance = 0.1 + _rand(inputs, n_inst, n_feat, tag=f"importance{i}")
        cases.append((x_hat, x, importance))
    return cases


#: Size of the held-out batch the trained models are judged on.
TEST_BATCH = 500


def train_cases(inputs: Inputs) -> list[tuple]:
    """(W, b, feature_probability, importance, steps, batch_size, lr, generator, x_test).

    Dense to fairly sparse features (p ≥ 0.1): at sparser settings a model can settle in one of
    several arrangements of nearly equal loss, which would make a fair threshold too loose.
    """
    p1 = _probabilities(inputs, [1.0, 0.5, 0.25, 0.1], "p1")
    importance1 = (0.8 ** torch.arange(5.0)).expand(4, 5).clone()
    p2 = _probabilities(inputs, [1.0, 0.3, 0.12], "p2")
    importance2 = 0.5 + 0.5 * _rand(inputs, 3, 6, tag="importance2")
    cases = []
    for tag, (n_hidden, n_feat, p, importance) in {"a": (2, 5, p1, importance1), "b": (3, 6, p2, importance2)}.items():
        W, b = _init(inputs, len(p), n_hidden, n_feat, tag)
        x_test = _sparse(inputs, len(p), TEST_BATCH, n_feat, p, f"{tag}/test")
        cases.append((W, b, p, importance, 600, 256, 1e-2, inputs.generator(tag), x_test))
    return cases


def dims_cases(inputs: Inputs) -> list[tuple]:
    """(W,): random weights of several sizes, and the known geometries."""
    return [
        (inputs.randn(4, 3, 7, tag="W1"),),
        (_known_geometries(inputs),),
        (inputs.randn(2, 5, 20, tag="W3") * 0.3,),
    ]


# --- judging answers that are random by design --------------------------------------------------

#: How far a measured fraction may stray from the expected one: this many standard errors, plus a margin.
SIGMAS, MARGIN = 5.0, 0.01


def check_batch(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    """Sparse features: right shape, values in [0, 1], each instance non-zero with its own
    probability, present values uniform on [0, 1] and drawn independently of presence."""
    n_inst, batch, n_feat, p, _ = args
    if not answer.is_floating_point():
        return f"expected a floating-point tensor, got dtype {answer.dtype}"
    if tuple(answer.shape) != tuple(reference.shape):
        return f"expected shape {tuple(reference.shape)} [instance, batch, feature], got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()) or float(answer.min()) < 0 or float(answer.max()) > 1:
        return "values must lie in [0, 1]: a present feature is uniform on [0, 1], an absent one is exactly 0"
    n = batch * n_feat
    present = (answer != 0).flatten(1).float().mean(1).to(torch.float64)
    p = p.to(torch.float64)
    tolerance = SIGMAS * (p * (1 - p) / n).sqrt() + MARGIN
    wrong = (present - p).abs() > tolerance
    if bool(wrong.any()):
        if bool(((present - (1 - p)).abs() <= tolerance).all()):
            return BATCH_INVERTED
        k = int(wrong.nonzero()[0])
        return (f"instance {k} has {float(present[k]):.1%} of its features non-zero; with feature probability "
                f"{float(p[k]):.3g} expect about {float(p[k]):.1%} (each instance has its own probability: "
                "broadcast feature_probability over the batch and feature axes)")
    values = answer[answer != 0].to(torch.float64)
    if values.numel() and float((values == 1).float().mean()) > 0.5:
        return BATCH_NO_MAGNITUDES
    for k in range(n_inst):
        values = answer[k][answer[k] != 0].to(torch.float64)
        if values.numel() >= 200:
            tolerance = SIGMAS * (1 / 12 / values.numel()) ** 0.5 + MARGIN
            if abs(float(values.mean()) - 0.5) > tolerance:
                message = BATCH_SHARED_DRAW if float(values.max()) <= float(p[k]) else BATCH_NOT_UNIFORM
                return f"{message} (instance {k}: mean of its non-zero values {float(values.mean()):.3f})"
    for i in range(n_inst):
        for j in range(i + 1, n_inst):
            if float(p[i]) == float(p[j]) and torch.equal(answer[i], answer[j]):
                return f"instances {i} and {j} drew identical features: draw every instance independently"
    return None


BATCH_INVERTED = ("features are present with probability 1 − p instead of p: keep a feature where "
                  "`torch.rand(...) < feature_probability`")
BATCH_NO_MAGNITUDES = ("present features must take a uniform random value on [0, 1] (torch.rand), "
                       "not always 1: multiply the values by the mask")
BATCH_SHARED_DRAW = ("the values of present features must be uniform on [0, 1], independent of whether the "
                     "feature is present: draw the mask and the values separately")
BATCH_NOT_UNIFORM = "the values of present features must be uniform on [0, 1] (torch.rand)"


def held_out_loss(x_hat: torch.Tensor, x: torch.Tensor, importance: torch.Tensor) -> Float[torch.Tensor, "inst"]:
    """The grader's own measure of a trained model: importance-weighted squared error per instance."""
    x_hat, x, importance = (t.to(torch.float64) for t in (x_hat, x, importance))
    return torch.einsum("ibf,if->i", (x - x_hat) ** 2, importance) / (x.shape[1] * x.shape[2])


#: A trained sweep passes when its median instance's test loss is within this factor of the
#: reference's, and no instance is worse than ``TRAIN_WORST`` times. Measured spread of correct
#: loops (other data draws, AdamW, a mean over instances): median ≤ 1.01, worst ≤ 1.3; forgetting
#: ``zero_grad`` gives medians of 4 or more, Adam's default lr (1e-3 for 1e-2) 1.1 to 2.3.
TRAIN_MEDIAN, TRAIN_WORST, TRAIN_SUSPICIOUS = 1.05, 2.0, 0.25


def check_train(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    """Trained models: their reconstruction of the held-out batch is (nearly) as good as the reference's."""
    _, _, _, importance, steps, _, lr, _, x_test = args
    if tuple(answer.shape) != tuple(x_test.shape):
        return (f"expected shape {tuple(x_test.shape)}: return the trained models' reconstruction of x_test, "
                f"toy_forward(W, b, x_test); got {tuple(answer.shape)}")
    if not answer.is_floating_point() or not bool(torch.isfinite(answer).all()):
        return "the reconstruction contains NaN or infinity: did the training diverge?"
    if float(answer.min()) < 0:
        return "the reconstruction can't be negative (it is a ReLU's output): return toy_forward(W, b, x_test)"
    if torch.equal(answer, x_test):
        return "you returned x_test itself: return the trained models' reconstruction of it"
    ratio = held_out_loss(answer, x_test, importance) / held_out_loss(reference, x_test, importance).clamp_min(1e-12)
    median, worst = float(ratio.quantile(0.5)), int(ratio.argmax())
    if median > TRAIN_MEDIAN or float(ratio[worst]) > TRAIN_WORST:
        return (f"the trained models reconstruct x_test worse than the reference (test loss {median:.2f} × the "
                f"reference's for the median instance, {float(ratio[worst]):.2f} × for instance {worst}): train all "
                f"instances with Adam at lr={lr:g} for {steps} steps, each on a fresh batch, zeroing the gradients "
                "every step; and make sure generate_batch, toy_forward and importance_loss pass their checks first")
    if float(ratio.min()) < TRAIN_SUSPICIOUS:
        return ("the test loss is far below what the reference reaches with the same steps: return the models' "
                "reconstruction toy_forward(W, b, x_test), nothing else")
    return None


# --- correlated and anticorrelated features -------------------------------------------------------


def pair_cases(inputs: Inputs) -> list[tuple]:
    """(n_instances, batch, n_pairs, feature_probability, generator): batch sizes drawn by the seed, never
    the public ones; probabilities moved by the seed, at most 0.45 so that a pair (2p) fits under 1."""
    return [
        (3, inputs.choose([300, 320, 340, 360], "batch1"), 2, _probabilities(inputs, [0.05, 0.2, 0.4], "p1").clamp(max=0.45),
         inputs.generator("a")),
        (2, inputs.choose([200, 220, 240, 260], "batch2"), 4, _probabilities(inputs, [0.1, 0.3], "p2"),
         inputs.generator("b")),
    ]


#: Pairs that break the rule (both present for an anticorrelated pair, one alone for a correlated
#: one) tolerated per pair drawn: torch.rand returns exactly 0 with probability 2^-24, which looks absent.
PAIR_SLACK = 1e-3


def _check_pairs(answer: torch.Tensor, reference: torch.Tensor, args: tuple, correlated: bool) -> str | None:
    """Paired features: shape, range, each feature present with probability p, the pairs' rule, uniform values."""
    n_inst, batch, n_pairs, p, _ = args
    if not answer.is_floating_point():
        return f"expected a floating-point tensor, got dtype {answer.dtype}"
    if tuple(answer.shape) != tuple(reference.shape):
        return f"expected shape {tuple(reference.shape)} [instance, batch, 2 * n_pairs], got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()) or float(answer.min()) < 0 or float(answer.max()) > 1:
        return "values must lie in [0, 1]: a present feature is uniform on [0, 1], an absent one is exactly 0"
    present = answer != 0
    first, second = present[..., 0::2], present[..., 1::2]  # the two features of every pair
    blocks = present[..., :n_pairs], present[..., n_pairs:]  # features k and k + n_pairs
    if correlated:
        broken = (first != second).flatten(1).float().mean(1)
        if float(broken.max()) > PAIR_SLACK:
            if float((blocks[0] != blocks[1]).float().mean()) <= PAIR_SLACK:
                return PAIRS_AS_BLOCKS
            return (f"in instance {int(broken.argmax())}, {float(broken.max()):.0%} of the pairs have one feature present "
                    "without the other: features 2k and 2k + 1 must be present together (draw one presence per pair)")
    else:
        both = (first & second).flatten(1).float().mean(1)
        if float(both.max()) > PAIR_SLACK:
            if float((blocks[0] & blocks[1]).float().mean()) <= PAIR_SLACK and n_pairs > 1:
                return PAIRS_AS_BLOCKS
            return (f"in instance {int(both.argmax())}, both features of a pair are present in {float(both.max()):.1%} of "
                    "the pairs: an anticorrelated pair has at most one feature present (pick one of the two)")
    rate = present.flatten(1).float().mean(1).to(torch.float64)
    p = p.to(torch.float64)
    n = batch * 2 * n_pairs
    # Presence is shared within a pair (or exclusive), so count the pairs' draws: half as many independent ones.
    tolerance = SIGMAS * (p * (1 - p) / (n / 2)).sqrt() + MARGIN
    wrong = (rate - p).abs() > tolerance
    if bool(wrong.any()):
        k = int(wrong.nonzero()[0])
        hint = ("draw each pair present with probability p" if correlated else
                "draw each pair present with probability 2p, then one of its two features with probability 1/2")
        return (f"instance {k} has {float(rate[k]):.1%} of its features present; each feature must be present with "
                f"probability p = {float(p[k]):.3g}: {hint}")
    if correlated:
        together = answer[..., 0::2][first & second], answer[..., 1::2][first & second]
        if together[0].numel() and float((together[0] == together[1]).float().mean()) > 0.5:
            return PAIR_SHARED_VALUES
    values = answer[present].to(torch.float64)
    if values.numel() >= 200:
        tolerance = SIGMAS * (1 / 12 / values.numel()) ** 0.5 + MARGIN
        if abs(float(values.mean()) - 0.5) > tolerance:
            return f"{BATCH_NOT_UNIFORM}, drawn independently of which features are present"
    return None


PAIRS_AS_BLOCKS = ("the pairs are features 2k and 2k + 1, side by side; yours pair feature k with feature k + n_pairs: "
                   "repeat each pair's presence twice in a row (repeat_interleave, or stack on a new last axis and "
                   "flatten), not the whole block (repeat, cat)")
PAIR_SHARED_VALUES = ("the two features of a pair are present together but take independent values: draw one value per "
                      "feature, not one per pair")


def check_correlated(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    return _check_pairs(answer, reference, args, correlated=True)


def check_anticorrelated(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    return _check_pairs(answer, reference, args, correlated=False)


# --- a privileged basis: neurons ------------------------------------------------------------------


def neuron_forward_cases(inputs: Inputs) -> list[tuple]:
    """(W, b, x): neurons fewer than features, and as many; sizes drawn by the seed, never the public ones."""
    n1, n2 = inputs.choose([9, 10, 11, 12], "features1"), inputs.choose([5, 6, 7], "features2")
    return [
        (inputs.randn(3, 4, n1, tag="W1") * 0.7, inputs.randn(3, n1, tag="b1") * 0.3, _sparse(inputs, 3, 16, n1, 0.3, "x1")),
        (inputs.randn(2, n2, n2, tag="W2") * 0.6, inputs.randn(2, n2, tag="b2") * 0.5, inputs.randn(2, 9, n2, tag="x2")),
    ]


def top_share_cases(inputs: Inputs) -> list[tuple]:
    """(W,): random weights of sizes drawn by the seed (some neurons with no positive weight at all), and
    weights like a trained neuron model's, mostly one positive weight per neuron."""
    n_feat = inputs.choose([7, 8, 9, 10], "features")
    W = inputs.randn(4, 5, n_feat, tag="W1")
    W[:, 0] = -W[:, 0].abs()  # a dead neuron: nothing switches it on
    trained_like = -0.3 * _rand(inputs, 2, 6, 12, tag="negative")
    trained_like[:, torch.arange(6), torch.arange(6) * 2] = 1.0 + _rand(inputs, 2, 6, tag="top")
    trained_like += 0.2 * _rand(inputs, 2, 6, 12, tag="leak") * (_rand(inputs, 2, 6, 12, tag="where") < 0.3)
    return [(W,), (trained_like,)]


LAB = LabSpec(
    name="03_superposition",
    exercises=(
        Exercise("generate_batch", batch_cases, properties=check_batch),
        Exercise("toy_forward", forward_cases, rtol=1e-4, atol=1e-5),
        Exercise("importance_loss", loss_cases, rtol=1e-4, atol=1e-6),
        Exercise("train_toy_models", train_cases, properties=check_train,
                 uses=("generate_batch", "toy_forward", "importance_loss")),
        Exercise("dimensions_per_feature", dims_cases, rtol=1e-4, atol=1e-6),
        Exercise("feature_dimensionality", dims_cases, rtol=1e-4, atol=1e-5),
        Exercise("correlated_features", pair_cases, properties=check_correlated),
        Exercise("anticorrelated_features", pair_cases, properties=check_anticorrelated),
        Exercise("neuron_forward", neuron_forward_cases, rtol=1e-4, atol=1e-5),
        Exercise("neuron_top_share", top_share_cases, rtol=1e-4, atol=1e-6),
    ),
)
