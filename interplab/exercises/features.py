"""Lab 01, features: the inputs each exercise is graded on.

Every exercise is a function of tensors and models, so the grader can call it on inputs the
student has not seen. Each set of inputs is drawn from the seed: fresh documents of the
synthetic corpus (whose labels are the ground truth), the shipped ``tiny-lm`` and a randomly
initialised twin of it (``models.random_init``, seeded), a layer and a feature picked by the
seed, and synthetic tensors of other sizes (which catch answers that hard-code the shipped
model's width or number of layers). So no hidden case has the answer of a public one; where an
answer is a count or a rank statistic that two draws could share, ``Inputs.choose`` gives the
hidden cases sizes that the public ones do not have, so their answers cannot even have the same
shape (or, for counts, the same total).

One exercise is random by design: ``random_directions`` draws random vectors, so the grader
checks what they are (their norms, their independence) rather than which ones they are.

Conventions the lab states too: the residual stream "at layer l" is the stream entering
block l (``blocks.{l}.hook_resid_pre``), and layer ``n_layers`` is the stream after the last
block (``blocks.{n_layers - 1}.hook_resid_post``), as ``ActivationCache.accumulated_resid``
numbers them. Position 0 is BOS, which carries no feature and is left out of every statistic.
"""

from __future__ import annotations

import functools

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interplab import corpus, models
from interplab.exercises import Exercise, Inputs, LabSpec

MODEL = "tiny-lm"
#: Word classes no token has two of: the features lab 01 counts detectors over (a unit that
#: detects two of them responds to unrelated things; nested features such as person and noun
#: would make a clean person detector look like it detects two).
DISJOINT_FEATURES = ("person", "place", "animal", "verb", "adjective", "number")


@functools.cache
def _tiny_lm():
    """The shipped model, loaded once per process (the grader judges many submissions)."""
    return models.load(MODEL, "cpu")


@functools.cache
def _twin(seed: int):
    """A randomly initialised model of the shipped shape: answers must not rely on trained weights."""
    return models.random_init(MODEL, seed, "cpu")


def _seed(inputs: Inputs, tag: str) -> int:
    return int(inputs.randint(2**31 - 1, (1,), tag=tag))


def _model(inputs: Inputs, trained: bool):
    """The shipped model, or the grading seed's random twin (one per seed, shared by every exercise)."""
    return _tiny_lm() if trained else _twin(_twin_seed(inputs.seed))


def _twin_seed(seed: int) -> int:
    return _seed(Inputs(seed, "random_init"), "twin")


def _docs(inputs: Inputs, n: int, tag: str, length: int = corpus.SEQ_LEN) -> corpus.Corpus:
    """Fresh documents of the corpus, ``length`` tokens each (BOS first)."""
    return corpus.generate(n, seed=_seed(inputs, tag), seq_len=length)


def _layer(inputs: Inputs, tag: str, n_layers: int) -> int:
    """A residual-stream layer in [0, n_layers] picked by the seed."""
    return int(inputs.randint(n_layers + 1, (1,), tag=tag))


@functools.lru_cache(maxsize=64)
@torch.no_grad()
def _cached_stack(model_seed: int | None, docs_seed: int, n_docs: int) -> Tensor:
    model = _tiny_lm() if model_seed is None else _twin(model_seed)
    docs = corpus.generate(n_docs, seed=docs_seed)
    _, cache = model.run_with_cache(docs.tokens, names_filter=lambda name: "resid" in name)
    return cache.accumulated_resid()


def _complete_seed(inputs: Inputs, tag: str, n_docs: int) -> int:
    """A corpus seed, drawn from the exercise's seed, whose ``n_docs`` documents have every feature on some
    token and lack it on another (BOS left out). A few documents can miss a topic altogether, and a mean or
    an AUROC over no tokens is undefined."""
    seed = _seed(inputs, tag)
    while True:
        labels = corpus.generate(n_docs, seed=seed).labels[:, 1:].flatten(0, 1)
        if labels.any(0).all() and not labels.all(0).any():
            return seed
        seed += 1


def _labelled_stack(inputs: Inputs, trained: bool, n_docs: int, tag: str) -> tuple[Tensor, corpus.Corpus]:
    """Fresh documents with every feature, and the model's residual stream at every layer on them
    (TransformerLens's own ``accumulated_resid``). Cached, as many exercises and every judged submission
    need the same ones; a copy is returned, so that a function that writes into its input cannot change
    another case."""
    docs_seed = _complete_seed(inputs, tag, n_docs)
    model_seed = None if trained else _twin_seed(inputs.seed)
    return _cached_stack(model_seed, docs_seed, n_docs).clone(), corpus.generate(n_docs, seed=docs_seed)


def _dom(resid: Float[Tensor, "layer batch pos d"], labels: Bool[Tensor, "batch pos f"]) -> Float[Tensor, "layer f d"]:
    """Difference-of-means directions, to serve as realistic inputs (BOS left out)."""
    x, y = resid[:, :, 1:].flatten(1, 2), labels[:, 1:].flatten(0, 1).double()
    mean_with = torch.einsum("tf,ltd->lfd", y, x.double()) / y.sum(0)[:, None]
    mean_without = torch.einsum("tf,ltd->lfd", 1 - y, x.double()) / (1 - y).sum(0)[:, None]
    return (mean_with - mean_without).float()


def _share_a_size(a: tuple, b: tuple) -> bool:
    """For ``Inputs.choose``: two tuples of sizes clash when any size is in both."""
    return bool(set(a) & set(b))


def _synthetic_resid(inputs: Inputs, shape: tuple[int, int, int, int], n_features: int, tag: str) -> tuple:
    """Random residuals whose BOS position (0) is large and shared, and random labels with BOS unlabelled.

    Every feature has tokens with and without it, and one feature is present nearly everywhere, so
    that a mean over everything differs from the mean over tokens without it.
    """
    layers, batch, pos, d = shape
    resid = inputs.randn(*shape, tag=f"{tag}/resid")
    resid[:, :, 0] = 6.0 + inputs.randn(layers, 1, d, tag=f"{tag}/bos")
    density = torch.rand(n_features, generator=inputs.generator(f"{tag}/density")) * 0.4 + 0.1
    density[0] = 0.85
    labels = torch.rand(batch, pos, n_features, generator=inputs.generator(f"{tag}/labels")) < density
    labels[:, 0] = False
    labels[0, 1], labels[0, 2] = True, False  # each feature present somewhere, absent somewhere
    return resid, labels


# --- part 1: reading the residual stream -----------------------------------------------------------


def residual_stack_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens): the trained model and a random twin, on fresh short documents."""
    return [
        (_model(inputs, True), _docs(inputs, 2, "docs", length=12).tokens),
        (_model(inputs, False), _docs(inputs, 3, "twin_docs", length=9).tokens),
    ]


def feature_directions_cases(inputs: Inputs) -> list[tuple]:
    """(resid, labels): the trained model's stream on labelled documents, a twin's, and synthetic data."""
    cases = []
    for trained, n_docs in [(True, 24), (False, 16)]:
        resid, docs = _labelled_stack(inputs, trained, n_docs, f"docs{trained}")
        cases.append((resid, docs.labels))
    cases.append(_synthetic_resid(inputs, (2, 5, 14, 7), 4, "synthetic"))
    return cases


# --- part 2: directions as detectors ----------------------------------------------------------------


#: Leading (batch) shapes of the three AUROC cases. An AUROC is a ratio of small integers that two
#: draws can share, so the hidden cases take a set of shapes with none in common with the public set.
AUROC_SHAPES = [((), (2,), (3, 2)), ((3,), (4,), (2, 2)), ((5,), (), (4, 2)), ((6,), (7,), (5, 2))]


def auroc_cases(inputs: Inputs) -> list[tuple]:
    """(scores, labels): continuous scores, integer scores with many ties, and scores whose rows
    alternate sign, each with leading batch dimensions drawn by the seed."""
    a, b, c = inputs.choose(AUROC_SHAPES, "shapes", clash=_share_a_size)
    g = inputs.generator("labels")
    labels_a = torch.rand(120, generator=g) < 0.3
    labels_b = torch.rand(90, generator=g) < 0.5
    labels_c = torch.rand(60, generator=g) < 0.2
    labels_c[:2] = torch.tensor([True, False])
    scores_a = inputs.randn(*a, 120, tag="a") + 0.8 * labels_a
    scores_b = inputs.randint(5, (*b, 90), tag="b").float() + labels_b.float()  # ties everywhere
    sign = torch.tensor([1.0, -1.0])[:, None]  # the second row of each pair scores the other way
    scores_c = inputs.randint(4, (*c, 60), tag="c").float() - labels_c.float() * sign
    return [(scores_a, labels_a), (scores_b, labels_b), (scores_c, labels_c)]


def layer_aurocs_cases(inputs: Inputs) -> list[tuple]:
    """(directions, resid, labels): directions from one set of documents, scored on another."""
    cases = []
    for trained in (True, False):
        train, train_docs = _labelled_stack(inputs, trained, 24, f"train{trained}")
        test, test_docs = _labelled_stack(inputs, trained, 10, f"test{trained}")
        cases.append((_dom(train, train_docs.labels), test, test_docs.labels))
    resid, labels = _synthetic_resid(inputs, (2, 6, 20, 5), 3, "synthetic")
    cases.append((inputs.randn(2, 3, 5, tag="directions"), resid, labels))
    return cases


# --- part 3: neurons against directions --------------------------------------------------------------


@functools.lru_cache(maxsize=16)
@torch.no_grad()
def _cached_neurons(model_seed: int | None, docs_seed: int, n_docs: int, layer: int) -> Float[Tensor, "token d_mlp"]:
    model = _tiny_lm() if model_seed is None else _twin(model_seed)
    hook = f"blocks.{layer}.mlp.hook_post"
    _, cache = model.run_with_cache(corpus.generate(n_docs, seed=docs_seed).tokens, names_filter=lambda name: name == hook)
    return cache[hook][:, 1:].flatten(0, 1)


#: Units per case (trained model, twin, synthetic), drawn by the seed: enough to find detectors, few enough
#: to judge quickly. The three counts add up to the number of units, so hidden cases take numbers of
#: units that no public case has, and a public answer cannot be a hidden one.
N_UNITS = [(160, 150, 24), (170, 140, 28), (180, 130, 20), (190, 120, 32)]


def count_detectors_cases(inputs: Inputs) -> list[tuple]:
    """(acts, labels, threshold): MLP neurons of the trained model and of a twin against disjoint features,
    and synthetic units built to detect none, one or two of a few features."""
    columns = [corpus.FEATURES.index(name) for name in DISJOINT_FEATURES]
    n_trained, n_twin, n_synthetic = inputs.choose(N_UNITS, "units", clash=_share_a_size)
    cases = []
    for trained, n_units in ((True, n_trained), (False, n_twin)):
        n_docs = 8
        docs_seed = _complete_seed(inputs, f"docs{trained}", n_docs)
        layer = int(inputs.randint(_tiny_lm().cfg.n_layers, (1,), tag=f"layer{trained}"))
        acts = _cached_neurons(None if trained else _twin_seed(inputs.seed), docs_seed, n_docs, layer)
        units = torch.randperm(acts.shape[1], generator=inputs.generator(f"units{trained}"))[:n_units]
        labels = corpus.generate(n_docs, seed=docs_seed).labels[:, 1:].flatten(0, 1)[:, columns]
        cases.append((acts[:, units], labels, 0.85 if trained else 0.6))
    labels = torch.rand(300, 4, generator=inputs.generator("labels")) < 0.25
    mixing = torch.rand(4, n_synthetic, generator=inputs.generator("mixing")) < 0.2
    mixing[:, 0] = False  # at least one unit that detects nothing
    acts = labels.float() @ (mixing.float() * 3) + inputs.randn(300, n_synthetic, tag="noise")
    cases.append((acts, labels, 0.8))
    return cases


#: How many directions each case asks for: the hidden cases ask for numbers no public case does.
N_DIRECTIONS = [(8, 3, 20), (6, 4, 16), (10, 5, 12), (7, 2, 24)]


def random_directions_cases(inputs: Inputs) -> list[tuple]:
    """(direction, n, generator): directions of various widths and norms."""
    n_a, n_b, n_c = inputs.choose(N_DIRECTIONS, "n", clash=_share_a_size)
    return [
        (inputs.randn(128, tag="a") * 0.3, n_a, inputs.generator("ga")),
        (inputs.randn(300, tag="b") * 4 + 1, n_b, inputs.generator("gb")),
        (inputs.randn(64, tag="c"), n_c, inputs.generator("gc")),
    ]


#: A random direction's cosine with any fixed direction is about 1/sqrt(d): in 64 or more
#: dimensions, above this only with odds below one in a billion. The same bound holds for its largest
#: entry (over its norm), which rules out axis-aligned "random" directions such as rows of an identity.
MAX_RANDOM_COSINE = 0.8


def check_random_directions(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    """``n`` independent random directions, each with the norm of ``direction``."""
    direction, n = args[0], args[1]
    want = (n, direction.shape[-1])
    if tuple(answer.shape) != want:
        return f"expected shape {want} (one random direction per row), got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()):
        return "your answer contains NaN or infinity"
    answer = answer.double()
    norms, target = answer.norm(dim=-1), float(direction.double().norm())
    if float((norms - target).abs().max()) > 1e-4 * target:
        return (f"every row must have the norm of `direction` ({target:.4g}); yours range from {float(norms.min()):.4g} "
                f"to {float(norms.max()):.4g}: divide each random row by its own norm, then multiply by direction.norm()")
    unit = answer / norms[:, None]
    overlap = (unit @ unit.T - torch.eye(n, dtype=torch.float64)).abs().max() if n > 1 else torch.tensor(0.0)
    if float(overlap) > MAX_RANDOM_COSINE:
        return "some rows point the same way: draw n independent random vectors, one per row"
    if float((unit @ direction.double() / target).abs().max()) > MAX_RANDOM_COSINE:
        return "a random direction should be unrelated to `direction`, not a copy of it"
    if float(unit.abs().max()) > MAX_RANDOM_COSINE:
        return "these rows lie along the axes: draw them at random (torch.randn with the generator), not by hand"
    return None


# --- part 4: reading directions through the unembedding ------------------------------------------------


def direct_logit_effect_cases(inputs: Inputs) -> list[tuple]:
    """(model, direction, tokens): a real feature direction of the final stream, and random directions
    on the trained model and on a twin (whose unembedding has no bias)."""
    model = _model(inputs, True)
    resid, docs = _labelled_stack(inputs, True, 24, "docs")
    feature = int(inputs.randint(len(corpus.FEATURES), (1,), tag="feature"))
    direction = _dom(resid[-1:], docs.labels)[0, feature]
    d = model.cfg.d_model
    return [
        (model, direction, _docs(inputs, 4, "scale_docs", length=20).tokens),
        (model, inputs.randn(d, tag="random") + 0.5, _docs(inputs, 3, "more_docs", length=16).tokens),
        (_model(inputs, False), inputs.randn(d, tag="twin") * 2 - 1, _docs(inputs, 3, "twin_docs", length=16).tokens),
    ]


def logit_lens_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens): the trained model and a twin on fresh documents."""
    return [
        (_model(inputs, True), _docs(inputs, 2, "docs", length=12).tokens),
        (_model(inputs, False), _docs(inputs, 2, "twin_docs", length=10).tokens),
    ]


def component_dla_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, targets, others): prompts of several lengths, each with its own pair of tokens (so that
    pairing every prompt with every pair, or dropping one side of the difference, shows), on the trained model
    and on a twin."""
    model = _model(inputs, True)
    vocab = model.cfg.d_vocab
    cases = []
    for trained, n, length, tag in [(True, 5, 14, "docs"), (True, 3, 9, "short_docs"), (False, 4, 12, "twin_docs")]:
        tokens = _docs(inputs, n, tag, length=length).tokens
        targets = inputs.randint(vocab, (n,), tag=f"{tag}/targets")
        others = (targets + 1 + inputs.randint(vocab - 1, (n,), tag=f"{tag}/others")) % vocab  # never the target
        cases.append((_model(inputs, trained), tokens, targets, others))
    return cases


# --- part 5: writing directions -----------------------------------------------------------------------


def steered_log_probs_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, layer, vector): a scaled feature direction at an inner layer, random vectors at
    layers picked by the seed (the last one included), on the trained model and a twin."""
    model = _model(inputs, True)
    n = model.cfg.n_layers
    resid, docs = _labelled_stack(inputs, True, 16, "docs")
    inner = int(inputs.randint(n, (1,), tag="inner"))  # a layer before some block, where the hook point matters
    feature = int(inputs.randint(len(corpus.FEATURES), (1,), tag="feature"))
    direction = _dom(resid[inner:inner + 1], docs.labels)[0, feature]
    d = model.cfg.d_model
    return [
        (model, _docs(inputs, 2, "steer_docs", length=12).tokens, inner, 4 * direction),
        (model, _docs(inputs, 2, "final_docs", length=10).tokens, n, inputs.randn(d, tag="final") * 2),
        (_model(inputs, False), _docs(inputs, 2, "twin_docs", length=10).tokens, _layer(inputs, "twin_layer", n),
         inputs.randn(d, tag="twin") * 3),
    ]


def steering_effect_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, layer, vector, target_ids, mask): the quotation direction toward the closing quote
    mark at sentence ends outside quotations, and random vectors, targets and positions."""
    model = _model(inputs, True)
    resid, docs = _labelled_stack(inputs, True, 24, "docs")
    layer = 1 + int(inputs.randint(model.cfg.n_layers, (1,), tag="layer"))
    quote = _dom(resid[layer:layer + 1], docs.labels)[0, corpus.FEATURES.index("quote")]
    test = _docs(inputs, 6, "test")
    tokens = test.tokens
    ends = (tokens == corpus.TOKEN_ID["."]) | (tokens == corpus.TOKEN_ID["!"])
    outside_ends = ends & ~test.feature("quote")
    outside_ends[0, 1] = True  # never empty
    d, vocab = model.cfg.d_model, model.cfg.d_vocab
    random_mask = torch.rand(tokens.shape, generator=inputs.generator("mask")) < 0.3
    random_mask[:, 0], random_mask[0, 1] = False, True
    twin_tokens = _docs(inputs, 3, "twin_docs", length=20).tokens
    twin_mask = torch.rand(twin_tokens.shape, generator=inputs.generator("twin_mask")) < 0.5
    twin_mask[:, 0], twin_mask[0, 1] = False, True
    return [
        (model, tokens, layer, 3 * quote, torch.tensor([corpus.TOKEN_ID['"']]), outside_ends),
        (model, tokens, 0, inputs.randn(d, tag="random"), inputs.randint(vocab, (5,), tag="targets"), random_mask),
        (_model(inputs, False), twin_tokens, _layer(inputs, "twin_layer", model.cfg.n_layers),
         inputs.randn(d, tag="twin") * 2, inputs.randint(vocab, (3,), tag="twin_targets"), twin_mask),
    ]


LAB = LabSpec(
    name="01_features",
    exercises=(
        Exercise("residual_stack", residual_stack_cases, rtol=1e-4, atol=1e-5),
        Exercise("feature_directions", feature_directions_cases, rtol=1e-4, atol=1e-5),
        Exercise("auroc", auroc_cases, rtol=1e-5, atol=1e-6),
        Exercise("layer_aurocs", layer_aurocs_cases, rtol=1e-5, atol=1e-6, uses=("auroc",)),
        Exercise("count_detectors", count_detectors_cases, rtol=0, atol=0, uses=("auroc",)),
        Exercise("random_directions", random_directions_cases, properties=check_random_directions),
        Exercise("direct_logit_effect", direct_logit_effect_cases, rtol=1e-4, atol=1e-5),
        Exercise("logit_lens", logit_lens_cases, rtol=1e-4, atol=1e-4, uses=("residual_stack",)),
        Exercise("component_dla", component_dla_cases, rtol=1e-4, atol=1e-4),
        Exercise("steered_log_probs", steered_log_probs_cases, rtol=1e-4, atol=1e-4),
        Exercise("steering_effect", steering_effect_cases, rtol=1e-4, atol=1e-6, uses=("steered_log_probs",)),
    ),
)
