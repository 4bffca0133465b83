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
from interplab.vocab import FIRST_WORD_ID

MODEL = "attn-only-2l"


def _model(inputs: Inputs, trained: bool = True):
    """The shipped model, or a random one of its shape seeded by the grader's seed."""
    if trained:
        return load(MODEL, device="cpu")
    return random_init(MODEL, seed=int(inputs.generator("model").initial_seed() % 2**31), device="cpu")


def _twin(inputs: Inputs):
    """The trained model with its weights moved by seeded noise: its heads keep their jobs, its numbers change."""
    return perturbed(_model(inputs), inputs.generator("perturb"))


def _words(model, inputs: Inputs, shape: tuple[int, ...], tag: str) -> Int[torch.Tensor, "..."]:
    """Random ordinary tokens: never BOS or the unknown-word token, which the model never saw in training."""
    return inputs.randint(model.cfg.d_vocab, shape, tag, low=FIRST_WORD_ID)


def _random_tokens(model, inputs: Inputs, batch: int, length: int, tag: str) -> Int[torch.Tensor, "batch pos"]:
    body = _words(model, inputs, (batch, length), tag)
    return torch.cat([torch.full((batch, 1), _bos(model)), body], dim=1)


def _repeated_tokens(model, inputs: Inputs, batch: int, seq_len: int, tag: str) -> Int[torch.Tensor, "batch pos"]:
    body = _words(model, inputs, (batch, seq_len), tag)
    return torch.cat([torch.full((batch, 1), _bos(model)), body, body], dim=1)


def _bos(model) -> int:
    return int(model.tokenizer.bos_token_id)


@torch.no_grad()
def _patterns(model, tokens) -> Float[torch.Tensor, "layer batch head query key"]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


@torch.no_grad()
def _previous_token_head(model, inputs: Inputs) -> int:
    """The layer-0 head that attends most to the previous token, measured on random tokens."""
    pattern = _patterns(model, _random_tokens(model, inputs, 4, 20, "previous"))[0]
    return int(pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2)).argmax())


def _heads(model, inputs: Inputs, layers: tuple[int, ...], k: int, tag: str) -> list[tuple[int, int]]:
    """``k`` distinct heads drawn by the seed from ``layers``, at least one from each, in order."""
    n = model.cfg.n_heads
    pool = torch.randperm(len(layers) * n, generator=inputs.generator(tag)).tolist()
    chosen = [next(i for i in pool if i // n == j) for j in range(len(layers))]
    chosen += [i for i in pool if i not in chosen][: k - len(chosen)]
    return sorted((layers[i // n], i % n) for i in chosen)


def _synthetic_patterns(inputs: Inputs, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """Random causal attention patterns: each row a softmax over the keys up to the query."""
    layers, batch, heads, seq = shape
    scores = inputs.randn(layers, batch, heads, seq, seq, tag="synthetic") * 2.0
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)


# --- part 1: attention patterns -----------------------------------------------------------------


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


# --- part 2: induction --------------------------------------------------------------------------


def repeated_tokens_cases(inputs: Inputs) -> list[tuple]:
    """(bos_token_id, special_ids, d_vocab, seq_len, batch, generator): lengths drawn by the seed, never
    the public ones, so no two cases' outputs have one shape. Case b draws 144 or more tokens from 8 or 9
    ordinary ones, so a generator that draws a special token, or never the last ordinary one, shows."""
    return [
        (0, [0, 1], 100, inputs.choose([5, 6, 7, 8], "a/len"), 3, inputs.generator("a")),
        (0, [0, 1], 10, inputs.choose([12, 13, 14, 15], "b/len"), 12, inputs.generator("b")),
        (3, [0, 3, 7], 12, inputs.choose([1, 2, 3, 4], "c/len"), 40, inputs.generator("c")),
    ]


#: With this many draws per ordinary token or more, every ordinary token should appear (a miss has
#: probability under n * exp(-16) < 1e-5 for the case sizes above).
DRAWS_PER_TOKEN = 16


def check_repeated_tokens(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    """Random by design, so judged by its properties: shape, BOS, range, exact repetition."""
    bos, special_ids, d_vocab, seq_len, batch, _ = args
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
    if int(body.min()) < 0 or int(body.max()) >= d_vocab:
        return f"random tokens must lie in [0, {d_vocab})"
    drawn = [t for t in special_ids if bool((body == t).any())]
    if drawn:
        return (f"your random tokens include special token id {drawn[0]} (BOS is {bos}; the specials are "
                f"{sorted(special_ids)}): draw only from the ordinary ids, those not in special_ids")
    first, second = body[:, :seq_len], body[:, seq_len:]
    if not torch.equal(first, second):
        return "the second half must repeat the first half exactly (concatenate the same tensor twice)"
    ordinary = [t for t in range(d_vocab) if t not in special_ids]
    missing = [t for t in ordinary if not bool((first == t).any())]
    if first.numel() >= DRAWS_PER_TOKEN * len(ordinary) and missing:
        return (f"in {first.numel()} draws from {len(ordinary)} ordinary tokens, id {missing[-1]} never came up: "
                "every ordinary token must be possible (torch.randint's upper bound is exclusive)")
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


# --- part 3: what heads write -------------------------------------------------------------------


@torch.no_grad()
def _attribution_inputs(model, tokens: Int[torch.Tensor, "pos"]) -> tuple:
    """Every term of the final residual stream, the final LayerNorm's scale, W_U, b_U and the tokens."""
    _, cache = model.run_with_cache(tokens[None])
    per_head = [
        torch.einsum("phd,hdm->phm", cache["z", layer][0], model.W_O[layer]) for layer in (0, 1)
    ]
    return (cache["embed"][0], cache["pos_embed"][0], per_head[0], per_head[1], model.b_O.detach().clone(),
            cache["ln_final.hook_scale"][0, :, 0], model.W_U.detach().clone(), model.b_U.detach().clone(), tokens)


def attribution_cases(inputs: Inputs) -> list[tuple]:
    """The trained model and a seed-perturbed copy on repeated tokens, and synthetic terms of other sizes."""
    trained, twin = _model(inputs), _twin(inputs)
    synthetic = (
        inputs.randn(9, 16, tag="embed"),
        inputs.randn(9, 16, tag="pos"),
        inputs.randn(9, 3, 16, tag="l0"),
        inputs.randn(9, 3, 16, tag="l1"),
        inputs.randn(2, 16, tag="b_O"),
        0.5 + torch.rand(9, generator=inputs.generator("scale")),
        inputs.randn(16, 30, tag="W_U"),
        inputs.randn(30, tag="b_U"),
        inputs.randint(30, (9,), "tokens"),
    )
    return [
        _attribution_inputs(trained, _repeated_tokens(trained, inputs, 1, 12, "repeats")[0]),
        _attribution_inputs(twin, _repeated_tokens(twin, inputs, 1, 9, "twin")[0]),
        synthetic,
    ]


def ablation_cases(inputs: Inputs) -> list[tuple]:
    trained, untrained = _model(inputs), _model(inputs, trained=False)
    return [
        (trained, _repeated_tokens(trained, inputs, 4, 12, "repeats")),
        (untrained, _random_tokens(untrained, inputs, 2, 20, "text")),
    ]


def joint_ablation_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, heads, method): all of layer 1 of a perturbed twin, zeroed and mean-ablated;
    heads drawn by the seed from both layers, in the trained model and a random one."""
    trained, untrained, twin = _model(inputs), _model(inputs, trained=False), _twin(inputs)
    repeats = _repeated_tokens(twin, inputs, 4, inputs.choose([10, 11, 12, 13, 14], "len"), "repeats")
    layer1 = [(1, head) for head in range(twin.cfg.n_heads)]
    some = _heads(trained, inputs, (0, 1), 3, "heads")
    return [
        (twin, repeats, layer1, "zero"),
        (twin, repeats, layer1, "mean"),
        (trained, repeats, some, "mean"),
        (untrained, _random_tokens(untrained, inputs, 3, 16, "text"), some, "zero"),
    ]


def induction_ablation_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, seq_len, heads, method): the previous-token head of a perturbed twin, zeroed
    and mean-ablated; layer-0 heads drawn by the seed in the trained model and in a random one."""
    trained, untrained, twin = _model(inputs), _model(inputs, trained=False), _twin(inputs)
    seq_len = inputs.choose([9, 10, 11, 12, 13], "len")
    repeats = _repeated_tokens(twin, inputs, 3, seq_len, "repeats")
    previous = [(0, _previous_token_head(twin, inputs))]
    return [
        (twin, repeats, seq_len, previous, "zero"),
        (twin, repeats, seq_len, previous, "mean"),
        (trained, repeats, seq_len, _heads(trained, inputs, (0,), 2, "heads"), "mean"),
        (untrained, _repeated_tokens(untrained, inputs, 2, 8, "untrained"), 8, _heads(untrained, inputs, (0,), 1, "one"),
         "zero"),
    ]


# --- part 4: reading the weights ----------------------------------------------------------------


def _word_subset(model, n: int, inputs: Inputs, tag: str) -> Int[torch.Tensor, "n"]:
    """``n`` distinct word tokens (never BOS or the unknown token, ids 0 and 1), in order."""
    d_words = model.cfg.d_vocab - FIRST_WORD_ID
    return (FIRST_WORD_ID + torch.randperm(d_words, generator=inputs.generator(tag))[:n]).sort().values


def ov_cases(inputs: Inputs) -> list[tuple]:
    """(model, layer, head, tokens): every layer-1 head of the trained model, and two of a seed-perturbed
    copy, each read on a random subset of words. The subset's size is a prime drawn by the seed, never
    the public one, so an accuracy k/n can equal a public one only at 0 or 1, which these heads never reach."""
    trained = _model(inputs)
    n = inputs.choose([53, 59, 61, 67, 71, 73], "size")
    words = _word_subset(trained, n, inputs, "words")
    heads = [(trained, 1, h, words) for h in range(trained.cfg.n_heads)]
    twin = _twin(inputs)
    picked = torch.randperm(twin.cfg.n_heads, generator=inputs.generator("heads"))[:2].tolist()
    return heads + [(twin, 1, h, _word_subset(twin, n, inputs, f"twin/{h}")) for h in picked]


def eigenvalue_cases(inputs: Inputs) -> list[tuple]:
    """(model, layer): both layers of a seed-perturbed twin, and a layer of a random model."""
    twin = _twin(inputs)
    return [(twin, 0), (twin, 1), (_model(inputs, trained=False), inputs.choose([0, 1], "layer"))]


def _head_weights(model, layer: int, head: int) -> tuple:
    """The positional embeddings and one head's query and key weights and biases, and the LayerNorm's eps."""
    return (model.W_pos.detach().clone(), model.W_Q[layer, head].detach().clone(), model.b_Q[layer, head].detach().clone(),
            model.W_K[layer, head].detach().clone(), model.b_K[layer, head].detach().clone(), float(model.cfg.eps))


def positional_cases(inputs: Inputs) -> list[tuple]:
    """(W_pos, W_Q, b_Q, W_K, b_K, eps): a perturbed twin's previous-token head and another layer-0 head,
    a random model's head, and synthetic weights of other sizes."""
    twin, untrained = _twin(inputs), _model(inputs, trained=False)
    previous = _previous_token_head(twin, inputs)
    other = inputs.choose([h for h in range(twin.cfg.n_heads) if h != previous], "head")
    synthetic = (inputs.randn(13, 24, tag="W_pos"), inputs.randn(24, 6, tag="W_Q"), inputs.randn(6, tag="b_Q"),
                 inputs.randn(24, 6, tag="W_K"), inputs.randn(6, tag="b_K"), 1e-5)
    return [_head_weights(twin, 0, previous), _head_weights(twin, 0, other),
            _head_weights(untrained, 0, inputs.choose(range(untrained.cfg.n_heads), "random_head")), synthetic]


def composition_cases(inputs: Inputs) -> list[tuple]:
    return [
        (inputs.randn(8, 8, tag="a1"), inputs.randn(8, 8, tag="b1")),
        (inputs.randn(6, 6, tag="a2") @ inputs.randn(6, 6, tag="c2"), inputs.randn(6, 6, tag="b2")),
        (inputs.randn(12, 5, tag="a3") @ inputs.randn(5, 12, tag="c3"), inputs.randn(12, 12, tag="b3")),
    ]


def head_composition_cases(inputs: Inputs) -> list[tuple]:
    """(model, mode): a seed-perturbed copy of the trained model (its circuit intact, its numbers new) in
    every mode, and a random model in a mode drawn by the seed."""
    twin = _twin(inputs)
    return [(twin, "Q"), (twin, "K"), (twin, "V"), (_model(inputs, trained=False), inputs.choose(["Q", "K", "V"], "mode"))]


#: (d_model, d_head) pairs whose random baselines (about 1/sqrt(d_model): 0.24, 0.20, 0.18, 0.14, 0.12, 0.10, 0.083,
#: 0.068) lie at least 12% apart, far beyond the 5% tolerance. Eight shapes leave six beside the public pair, so two
#: seeds draw the same hidden pair once in 30 (an answer table from another seed fits only then).
BASELINE_SHAPES = ((16, 4), (24, 6), (32, 8), (48, 8), (64, 16), (96, 12), (144, 12), (216, 24))


def baseline_cases(inputs: Inputs) -> list[tuple]:
    """Two shapes drawn by the seed, sharing none with the public pair: their baselines differ by more
    than the tolerance from every public one."""
    pair = inputs.choose([(a, b) for a in BASELINE_SHAPES for b in BASELINE_SHAPES if a != b], "shapes",
                         clash=lambda mine, public: bool(set(mine) & set(public)))
    return [(*pair[0], 200, inputs.generator("a")), (*pair[1], 200, inputs.generator("b"))]


@torch.no_grad()
def _decomposition_inputs(model, tokens: Int[torch.Tensor, "pos"], head: int) -> tuple:
    """What layer 1 reads, term by term (embedding, positions, each layer-0 head, layer 0's bias), the
    LayerNorm scale of layer 1, and one layer-1 head's query and key weights and biases."""
    _, cache = model.run_with_cache(tokens[None])
    heads = torch.einsum("phd,hdm->hpm", cache["z", 0][0], model.W_O[0])
    bias = model.b_O[0].expand(len(tokens), -1)
    components = torch.cat([cache["embed"][0][None], cache["pos_embed"][0][None], heads, bias[None]])
    return (components, cache["blocks.1.ln1.hook_scale"][0, :, 0], model.W_Q[1, head].detach().clone(),
            model.b_Q[1, head].detach().clone(), model.W_K[1, head].detach().clone(), model.b_K[1, head].detach().clone())


def decomposition_cases(inputs: Inputs) -> list[tuple]:
    """(components, scale, W_Q, b_Q, W_K, b_K): a perturbed twin's layer-1 head drawn by the seed on repeated
    tokens, a random model's, and synthetic terms of other sizes."""
    twin, untrained = _twin(inputs), _model(inputs, trained=False)
    head = inputs.choose(range(twin.cfg.n_heads), "head")
    synthetic = (inputs.randn(4, 7, 12, tag="components"), 0.5 + torch.rand(7, generator=inputs.generator("scale")),
                 inputs.randn(12, 5, tag="W_Q"), inputs.randn(5, tag="b_Q"), inputs.randn(12, 5, tag="W_K"),
                 inputs.randn(5, tag="b_K"))
    return [
        _decomposition_inputs(twin, _repeated_tokens(twin, inputs, 1, inputs.choose([7, 8, 9], "len"), "repeats")[0], head),
        _decomposition_inputs(untrained, _random_tokens(untrained, inputs, 1, 10, "text")[0], 0),
        synthetic,
    ]


def _detector(name: str) -> Exercise:
    return Exercise(name, detector_cases, rtol=1e-4, atol=1e-5)


LAB = LabSpec(
    name="02_induction",
    exercises=(
        Exercise("attention_pattern", pattern_cases, rtol=1e-4, atol=1e-6),
        _detector("current_token_scores"),
        _detector("prev_token_scores"),
        _detector("first_token_scores"),
        Exercise("repeated_tokens", repeated_tokens_cases, properties=check_repeated_tokens),
        Exercise("induction_scores", induction_cases),
        Exercise("logit_attribution", attribution_cases, rtol=1e-3, atol=1e-4),
        Exercise("ablation_loss_increase", ablation_cases, rtol=1e-3, atol=1e-4),
        Exercise("joint_ablation_loss_increase", joint_ablation_cases, rtol=1e-3, atol=1e-4),
        Exercise("induction_scores_with_ablation", induction_ablation_cases, rtol=1e-3, atol=1e-4,
                 uses=("induction_scores", "joint_ablation_loss_increase")),
        Exercise("ov_top1_accuracy", ov_cases, atol=1e-6),
        Exercise("eigenvalue_copying_scores", eigenvalue_cases, rtol=1e-3, atol=1e-5),
        Exercise("positional_pattern", positional_cases, rtol=1e-3, atol=1e-5, uses=("attention_pattern",)),
        Exercise("composition_score", composition_cases),
        Exercise("head_composition_scores", head_composition_cases, rtol=1e-3, atol=1e-5, uses=("composition_score",)),
        # A mean of 200 random draws: any correct sampler lands within about 1% (5 standard errors < 5%).
        Exercise("composition_baseline", baseline_cases, rtol=0.05, atol=0.0, uses=("composition_score",)),
        Exercise("decompose_attn_scores", decomposition_cases, rtol=1e-3, atol=1e-4),
    ),
)
