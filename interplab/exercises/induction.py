"""Lab 02, induction heads: the inputs each exercise is graded on.

Every exercise takes plain tensors or a model, never a global, so the grader can call it on
inputs the student has not seen: the shipped model on fresh random tokens, a randomly
initialised model of the same shape, a copy of the trained model with its weights moved by
seeded noise, and synthetic tensors of other sizes (which catch answers that hard-code the
shipped model's number of heads or sequence length). Every hidden case differs from every
public one, so no answer copied from the public references fits a hidden case.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int

from interplab.exercises import Exercise, Inputs, LabSpec
from interplab.models import load, perturbed, random_init

MODEL = "attn-only-2l"


def _model(inputs: Inputs, trained: bool = True):
    """The shipped model, or a random one of its shape seeded by the grader's seed."""
    if trained:
        return load(MODEL, device="cpu")
    return random_init(MODEL, seed=int(inputs.generator("model").initial_seed() % 2**31), device="cpu")


def _random_tokens(model, inputs: Inputs, batch: int, length: int, tag: str) -> Int[torch.Tensor, "batch pos"]:
    body = inputs.randint(model.cfg.d_vocab, (batch, length), tag, low=1)
    return torch.cat([torch.full((batch, 1), _bos(model)), body], dim=1)


def _repeated_tokens(model, inputs: Inputs, batch: int, seq_len: int, tag: str) -> Int[torch.Tensor, "batch pos"]:
    body = inputs.randint(model.cfg.d_vocab, (batch, seq_len), tag, low=1)
    return torch.cat([torch.full((batch, 1), _bos(model)), body, body], dim=1)


def _bos(model) -> int:
    return int(model.tokenizer.bos_token_id)


@torch.no_grad()
def _patterns(model, tokens) -> Float[torch.Tensor, "layer batch head query key"]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


def _synthetic_patterns(inputs: Inputs, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """Random causal attention patterns: each row a softmax over the keys up to the query."""
    layers, batch, heads, seq = shape
    scores = inputs.randn(layers, batch, heads, seq, seq, tag="synthetic") * 2.0
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


@torch.no_grad()
def pattern_cases(inputs: Inputs) -> list[tuple]:
    """Queries and keys of the trained model, and random ones of another size."""
    trained = _model(inputs)
    _, cache = trained.run_with_cache(_random_tokens(trained, inputs, 2, 14, "text"))
    return [
        (cache["q", 0], cache["k", 0]),
        (cache["q", 1], cache["k", 1]),
        (inputs.randn(3, 9, 5, 8, tag="q"), inputs.randn(3, 9, 5, 8, tag="k")),
    ]


def detector_cases(inputs: Inputs) -> list[tuple]:
    """Patterns from the trained model, from a random model, and synthetic ones of other sizes."""
    trained, untrained = _model(inputs), _model(inputs, trained=False)
    return [
        (_patterns(trained, _random_tokens(trained, inputs, 4, 24, "text")),),
        (_patterns(trained, _repeated_tokens(trained, inputs, 3, 9, "repeats")),),
        (_patterns(untrained, _random_tokens(untrained, inputs, 2, 16, "untrained")),),
        (_synthetic_patterns(inputs, (3, 2, 5, 11)),),
    ]


def repeated_tokens_cases(inputs: Inputs) -> list[tuple]:
    """(bos_token_id, d_vocab, seq_len, batch, generator): lengths drawn by the seed from sets that
    differ case by case, and never the public ones, so no two cases' outputs have one shape."""
    return [
        (0, 100, inputs.choose([5, 6, 7, 8], "a/len"), 3, inputs.generator("a")),
        (0, 100, inputs.choose([11, 12, 13, 14], "b/len"), 5, inputs.generator("b")),
        (2, 37, inputs.choose([1, 2, 3, 4], "c/len"), 2, inputs.generator("c")),
    ]


def check_repeated_tokens(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    """Random by design, so judged by its properties: shape, BOS, range, exact repetition."""
    bos, d_vocab, seq_len, batch, _ = args
    if answer.dtype not in (torch.int64, torch.int32):
        return f"expected integer token ids, got dtype {answer.dtype}"
    if tuple(answer.shape) != tuple(reference.shape):
        return (
            f"expected shape {tuple(reference.shape)} (batch, 1 + 2 * seq_len), got "
            f"{tuple(answer.shape)}: one BOS, then the random half, then the same half again"
        )
    if not bool((answer[:, 0] == bos).all()):
        return f"every sequence must start with the BOS token (id {bos})"
    body = answer[:, 1:]
    if bool((body == bos).any()) or int(body.min()) < 0 or int(body.max()) >= d_vocab:
        return f"random tokens must lie in [0, {d_vocab}) and never be BOS (id {bos})"
    first, second = body[:, :seq_len], body[:, seq_len:]
    if not torch.equal(first, second):
        return "the second half must repeat the first half exactly (concatenate the same tensor twice)"
    if seq_len >= 4 and batch >= 2 and torch.equal(first[0], first[1]):
        return "every sequence in the batch should be drawn independently; rows 0 and 1 are equal"
    return None


def induction_cases(inputs: Inputs) -> list[tuple]:
    trained, untrained = _model(inputs), _model(inputs, trained=False)
    return [
        (_patterns(trained, _repeated_tokens(trained, inputs, 4, 10, "a")), 10),
        (_patterns(trained, _repeated_tokens(trained, inputs, 2, 15, "b")), 15),
        (_patterns(untrained, _repeated_tokens(untrained, inputs, 2, 8, "c")), 8),
    ]


@torch.no_grad()
def _attribution_inputs(model, tokens: Int[torch.Tensor, "pos"]) -> tuple:
    """embed, per-head outputs of layers 0 and 1, W_U and tokens, as the exercise takes them."""
    _, cache = model.run_with_cache(tokens[None])
    per_head = [
        torch.einsum("phd,hdm->phm", cache["z", layer][0], model.W_O[layer]) for layer in (0, 1)
    ]
    return (cache["embed"][0], per_head[0], per_head[1], model.W_U.detach().clone(), tokens)


def attribution_cases(inputs: Inputs) -> list[tuple]:
    trained = _model(inputs)
    repeated = _repeated_tokens(trained, inputs, 1, 12, "repeats")[0]
    synthetic_tokens = inputs.randint(30, (9,), "tokens")
    synthetic = (
        inputs.randn(9, 16, tag="embed"),
        inputs.randn(9, 3, 16, tag="l1"),
        inputs.randn(9, 3, 16, tag="l2"),
        inputs.randn(16, 30, tag="W_U"),
        synthetic_tokens,
    )
    return [_attribution_inputs(trained, repeated), synthetic]


def ablation_cases(inputs: Inputs) -> list[tuple]:
    trained, untrained = _model(inputs), _model(inputs, trained=False)
    return [
        (trained, _repeated_tokens(trained, inputs, 4, 12, "repeats")),
        (untrained, _random_tokens(untrained, inputs, 2, 20, "text")),
    ]


def _word_subset(model, n: int, inputs: Inputs, tag: str) -> Int[torch.Tensor, "n"]:
    """``n`` distinct word tokens (never BOS or the unknown token, ids 0 and 1), in order."""
    return (2 + torch.randperm(model.cfg.d_vocab - 2, generator=inputs.generator(tag))[:n]).sort().values


def ov_cases(inputs: Inputs) -> list[tuple]:
    """(model, layer, head, tokens): every layer-1 head of the trained model, and two of a seed-perturbed
    copy, each read on a random subset of words. The subset's size is a prime drawn by the seed, never
    the public one, so an accuracy k/n can equal a public one only at 0 or 1, which these heads never reach."""
    trained = _model(inputs)
    n = inputs.choose([53, 59, 61, 67, 71, 73], "size")
    words = _word_subset(trained, n, inputs, "words")
    heads = [(trained, 1, h, words) for h in range(trained.cfg.n_heads)]
    twin = perturbed(trained, inputs.generator("perturb"))
    picked = torch.randperm(twin.cfg.n_heads, generator=inputs.generator("heads"))[:2].tolist()
    return heads + [(twin, 1, h, _word_subset(twin, n, inputs, f"twin/{h}")) for h in picked]


def composition_cases(inputs: Inputs) -> list[tuple]:
    return [
        (inputs.randn(8, 8, tag="a1"), inputs.randn(8, 8, tag="b1")),
        (inputs.randn(6, 6, tag="a2") @ inputs.randn(6, 6, tag="c2"), inputs.randn(6, 6, tag="b2")),
        (inputs.randn(12, 5, tag="a3") @ inputs.randn(5, 12, tag="c3"), inputs.randn(12, 12, tag="b3")),
    ]


def k_composition_cases(inputs: Inputs) -> list[tuple]:
    """A seed-perturbed copy of the trained model (its circuit intact, its numbers new) and a random one."""
    return [(perturbed(_model(inputs), inputs.generator("perturb")),), (_model(inputs, trained=False),)]


#: (d_model, d_head) pairs whose random baselines lie at least 15% apart (0.20, 0.17, 0.14, 0.12, 0.10).
BASELINE_SHAPES = ((24, 6), (32, 8), (48, 8), (64, 16), (96, 12))


def baseline_cases(inputs: Inputs) -> list[tuple]:
    """Two shapes drawn by the seed, sharing none with the public pair: their baselines differ by more
    than the tolerance from every public one."""
    pair = inputs.choose([(a, b) for a in BASELINE_SHAPES for b in BASELINE_SHAPES if a != b], "shapes",
                         clash=lambda mine, public: bool(set(mine) & set(public)))
    return [(*pair[0], 200, inputs.generator("a")), (*pair[1], 200, inputs.generator("b"))]


def _detector(name: str) -> Exercise:
    return Exercise(name, detector_cases, rtol=1e-4, atol=1e-5)


LAB = LabSpec(
    name="02_induction",
    notebook="induction_heads",
    exercises=(
        Exercise("attention_pattern", pattern_cases, rtol=1e-4, atol=1e-6),
        _detector("current_token_scores"),
        _detector("prev_token_scores"),
        _detector("first_token_scores"),
        Exercise("repeated_tokens", repeated_tokens_cases, properties=check_repeated_tokens),
        Exercise("induction_scores", induction_cases),
        Exercise("logit_attribution", attribution_cases, rtol=1e-3, atol=1e-4),
        Exercise("ablation_loss_increase", ablation_cases, rtol=1e-3, atol=1e-4),
        Exercise("ov_copying_score", ov_cases, atol=1e-6),
        Exercise("composition_score", composition_cases),
        Exercise("k_composition_scores", k_composition_cases, rtol=1e-3, atol=1e-5, uses=("composition_score",)),
        # A mean of 200 random draws: any correct sampler lands within about 1% (5 standard errors < 5%).
        Exercise("composition_baseline", baseline_cases, rtol=0.05, atol=0.0, uses=("composition_score",)),
    ),
)
