"""Lab 06, activation patching: the inputs each exercise is graded on.

Every exercise takes a model and plain tensors (tokens, token ids, positions, a mask), never a
global, so the grader can call it on prompts the student has not seen. The prompts come from
`interplab.ioi` with the template, the names, the places and the objects drawn from the seed.
The models are the shipped `ioi-3l` and copies of it whose weights the seed perturbs
(`interplab.models.perturbed`): their
patching maps differ from the shipped model's, so an answer that reproduces the maps of the
lesson, or hard-codes which heads matter, fails. (A randomly initialised model is no good
here: it does not do the task, so its clean and corrupted logit differences nearly coincide
and a normalised patching metric would divide by almost nothing.)
"""

from __future__ import annotations

import functools

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from interplab import ioi
from interplab.exercises import Exercise, Inputs, LabSpec
from interplab.models import load, perturbed, random_init

MODEL = "ioi-3l"
#: Perturbed twins: every weight gets Gaussian noise of this many times its own tensor's std.
NOISE = 0.1


@functools.cache
def _shipped():
    """The shipped model, loaded once per process (the grader judges many submissions)."""
    return load(MODEL, device="cpu")


def _perturbed(inputs: Inputs, tag: str):
    """The shipped model with seeded noise on every weight (`models.perturbed`): a model that still
    does the task (less cleanly) but whose patching maps are its own."""
    return perturbed(_shipped(), inputs.generator(f"{tag}/weights"), scale=NOISE)


@functools.cache
def _length(template: int) -> int:
    return ioi.prompts(1, template, torch.Generator().manual_seed(0)).clean.shape[1]


def _prompts(inputs: Inputs, tag: str, n: int) -> ioi.Prompts:
    """`n` prompts of a template drawn from the seed. A hidden case's template is never as long as
    the public one's, so every map over positions has another shape than any public answer."""
    template = inputs.choose(range(len(ioi.TEMPLATES)), f"{tag}/template", clash=lambda a, b: _length(a) == _length(b))
    return ioi.prompts(n, template, inputs.generator(tag))


def _patching_case(model, p: ioi.Prompts) -> tuple:
    return (model, p.clean, p.corrupted, p.io, p.s)


# --- part 1: the metric ---------------------------------------------------------------------------


@torch.no_grad()
def logit_diff_cases(inputs: Inputs) -> list[tuple]:
    """(logits, io, s): the model's own logits, and random ones of other sizes."""
    p = _prompts(inputs, "model", 8)
    synthetic = []
    for i, (batch, pos, vocab) in enumerate([(5, 7, 20), (3, 4, 9)]):
        ids = torch.rand(batch, vocab, generator=inputs.generator(f"ids{i}")).argsort(dim=1)[:, :2]
        synthetic.append((inputs.randn(batch, pos, vocab, tag=f"logits{i}") * 3, ids[:, 0].clone(), ids[:, 1].clone()))
    return [(_shipped()(p.clean), p.io, p.s), *synthetic]


def normalise_cases(inputs: Inputs) -> list[tuple]:
    """(value, clean, corrupted): maps of values, scalars, and a metric for which lower is better."""
    return [
        (inputs.randn(3, 5, tag="a") * 2, 2.5 + float(inputs.randn(1, tag="ca")), -0.3),
        (inputs.randn(7, tag="b"), -1.0, 4.0 + float(inputs.randn(1, tag="cb"))),
        (inputs.randn(2, 4, 3, tag="c") + 1, 6.1, 0.2),
    ]


# --- part 2: the residual stream ------------------------------------------------------------------


def residual_cases(inputs: Inputs) -> list[tuple]:
    """Denoising and noising on the shipped model, denoising on a perturbed one; other templates."""
    p, q = _prompts(inputs, "shipped", 8), _prompts(inputs, "perturbed", 8)
    return [(*_patching_case(_shipped(), p), True), (*_patching_case(_shipped(), p), False),
            (*_patching_case(_perturbed(inputs, "perturbed"), q), True)]


# --- part 3: heads --------------------------------------------------------------------------------


def head_cases(inputs: Inputs) -> list[tuple]:
    return [_patching_case(_shipped(), _prompts(inputs, "shipped", 8)),
            _patching_case(_perturbed(inputs, "perturbed"), _prompts(inputs, "perturbed", 8))]


def component_cases(inputs: Inputs) -> list[tuple]:
    """Every component on the shipped model; the pattern and values on a perturbed one."""
    shipped = _patching_case(_shipped(), _prompts(inputs, "shipped", 8))
    twin = _patching_case(_perturbed(inputs, "perturbed"), _prompts(inputs, "perturbed", 8))
    return [(*shipped, c) for c in ("q", "k", "v", "pattern")] + [(*twin, c) for c in ("pattern", "v")]


@torch.no_grad()
def _patterns(model, tokens) -> Float[Tensor, "layer batch head query key"]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


def _synthetic_patterns(inputs: Inputs, shape: tuple[int, int, int, int]) -> Tensor:
    """Random causal attention patterns of another size."""
    layers, batch, heads, seq = shape
    scores = inputs.randn(layers, batch, heads, seq, seq, tag="synthetic") * 2.0
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


def attention_cases(inputs: Inputs) -> list[tuple]:
    """(patterns, io_pos, s1_pos, s2_pos): the shipped model's, a random model's, synthetic ones."""
    p, q = _prompts(inputs, "shipped", 12), _prompts(inputs, "untrained", 6)
    untrained = random_init(MODEL, seed=int(inputs.randint(2**31 - 1, (1,), "init")), device="cpu")
    synthetic_s1 = inputs.randint(4, (5,), "s1", low=1)
    synthetic_io = synthetic_s1 + inputs.randint(3, (5,), "io", low=1)
    return [
        (_patterns(_shipped(), p.clean), p.io_pos, p.s1_pos, p.s2_pos),
        (_patterns(untrained, q.clean), q.io_pos, q.s1_pos, q.s2_pos),
        (_synthetic_patterns(inputs, (2, 5, 3, 11)), synthetic_io, synthetic_s1, 8),
    ]


# --- part 4: attribution patching -----------------------------------------------------------------


def attribution_cases(inputs: Inputs) -> list[tuple]:
    return [_patching_case(_shipped(), _prompts(inputs, "shipped", 16)),
            _patching_case(_perturbed(inputs, "perturbed"), _prompts(inputs, "perturbed", 8))]


# --- part 5: path patching ------------------------------------------------------------------------

#: Sets of (sender, receiver, component): three paths on the shipped model and one on a perturbed twin. Every path
#: carries a few hundredths of the corruption's effect on the templates measured (a path that carries nothing scores
#: 1.0 whatever the prompts, so a public answer would fit it). The sets share no path, and a hidden set is never the
#: public one, so no hidden case asks about a path a public case answers.
PATH_SETS = (
    (((1, 2), (2, 2), "v"), ((0, 2), (1, 2), "q"), ((1, 2), (2, 0), "k"), ((1, 0), (2, 1), "v")),
    (((1, 2), (2, 1), "v"), ((0, 0), (2, 2), "v"), ((1, 0), (2, 3), "q"), ((0, 2), (2, 0), "k")),
    (((1, 3), (2, 2), "v"), ((0, 3), (2, 2), "v"), ((0, 1), (1, 0), "k"), ((1, 0), (2, 2), "v")),
    (((0, 1), (2, 1), "v"), ((0, 2), (2, 2), "v"), ((1, 3), (2, 1), "v"), ((0, 1), (2, 0), "v")),
)


def _share_a_path(a: tuple, b: tuple) -> bool:
    return bool(set(a) & set(b))


def path_cases(inputs: Inputs) -> list[tuple]:
    paths = inputs.choose(PATH_SETS, "paths", clash=_share_a_path)
    p = _prompts(inputs, "shipped", 16)
    q = _prompts(inputs, "perturbed", 8)
    shipped = [(*_patching_case(_shipped(), p), sender, receiver, c) for sender, receiver, c in paths[:3]]
    sender, receiver, c = paths[3]
    return shipped + [(*_patching_case(_perturbed(inputs, "perturbed"), q), sender, receiver, c)]


#: Chains (sender, hops), each hop ((layer, head), component), for the multi-hop exercise: per set a chain of two hops
#: (layer 0 -> 1 -> 2, so freezing matters only in the last run), a hop that skips a layer (the frozen layer between
#: is what a chain that lets the effect through other heads gets wrong), a chain that ends before the last layer or
#: a head with no hop (its output must reach the logits directly), and a skipping hop on a perturbed twin. Each set
#: separates every known mistake from the answer on the templates measured; the sets share no chain.
CHAIN_SETS = (
    (((0, 1), (((1, 0), "k"), ((2, 3), "q"))), ((0, 0), (((2, 2), "v"),)), ((0, 1), (((1, 0), "k"),)),
     ((0, 3), (((2, 1), "v"),))),
    (((0, 0), (((1, 0), "k"), ((2, 3), "q"))), ((0, 1), (((2, 0), "v"),)), ((0, 0), (((1, 0), "k"),)),
     ((0, 0), (((2, 1), "v"),))),
    (((0, 0), (((1, 0), "q"), ((2, 1), "v"))), ((0, 1), (((2, 2), "v"),)), ((1, 0), ()), ((0, 1), (((2, 1), "v"),))),
    (((0, 2), (((1, 2), "q"), ((2, 1), "v"))), ((0, 3), (((2, 2), "v"),)), ((0, 3), (((1, 0), "k"),)),
     ((0, 2), (((2, 2), "v"),))),
)


def chain_cases(inputs: Inputs) -> list[tuple]:
    chains = inputs.choose(CHAIN_SETS, "chains", clash=_share_a_path)
    p = _prompts(inputs, "shipped", 16)
    q = _prompts(inputs, "perturbed", 8)
    shipped = [(*_patching_case(_shipped(), p), sender, hops) for sender, hops in chains[:3]]
    sender, hops = chains[3]
    return shipped + [(*_patching_case(_perturbed(inputs, "perturbed"), q), sender, hops)]


# --- part 6: a circuit ----------------------------------------------------------------------------


def _circuit(inputs: Inputs, tag: str, extra: int) -> Bool[Tensor, "layer head"]:
    """The last layer's three S-suppression heads, and `extra` more heads drawn by the seed."""
    circuit = torch.zeros(3, 4, dtype=torch.bool)
    circuit[2, :3] = True
    others = (~circuit).flatten().nonzero()[:, 0]
    chosen = others[torch.randperm(len(others), generator=inputs.generator(tag))[:extra]]
    circuit.view(-1)[chosen] = True
    return circuit


def faithfulness_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, io, s, reference tokens, circuit): the reference is fresh ABC prompts of the template."""
    cases = []
    for tag, model, extra in (("shipped", _shipped(), 1), ("perturbed", _perturbed(inputs, "perturbed"), 2)):
        p = _prompts(inputs, tag, 16)
        reference = ioi.reference(32, p.template, inputs.generator(f"{tag}/reference"))
        cases.append((model, p.clean, p.io, p.s, reference, _circuit(inputs, f"{tag}/circuit", extra)))
    return cases


_PATCHING = ("logit_diff", "normalise")

LAB = LabSpec(
    name="06_patching",
    exercises=(
        Exercise("logit_diff", logit_diff_cases, rtol=1e-4, atol=1e-5),
        Exercise("normalise", normalise_cases, rtol=1e-5, atol=1e-6),
        Exercise("residual_patching", residual_cases, rtol=1e-3, atol=1e-4, uses=_PATCHING),
        Exercise("head_patching", head_cases, rtol=1e-3, atol=1e-4, uses=_PATCHING),
        Exercise("head_component_patching", component_cases, rtol=1e-3, atol=1e-4, uses=_PATCHING),
        Exercise("end_attention", attention_cases, rtol=1e-4, atol=1e-6),
        Exercise("attribution_patching", attribution_cases, rtol=1e-3, atol=1e-4, uses=_PATCHING),
        # Path effects are small (a few hundredths of the clean logit difference): judged closely.
        Exercise("path_patching", path_cases, rtol=1e-4, atol=2e-5, uses=_PATCHING),
        # Chains end near 1 (a few thousandths of the effect each): judged closely, or a public value fits by chance.
        Exercise("path_chain_patching", chain_cases, rtol=1e-5, atol=1e-5, uses=_PATCHING),
        Exercise("faithfulness", faithfulness_cases, rtol=1e-4, atol=1e-5, uses=("logit_diff",)),
    ),
)
