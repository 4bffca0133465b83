"""Lab 08, circuit tracing: the inputs each exercise is graded on, and how training is judged.

Every exercise but the training one is deterministic and is compared with the reference on inputs the student
has not seen: prompts drawn by the seed, a layer and target token drawn by it (never the public ones), the
shipped tiny LM, a perturbed twin of it and a randomly initialised one, the shipped transcoders and random ones.
Training is random by design, so ``train_transcoder`` is judged by what the trained transcoder *does*, measured
here by the grader on held-out tokens the student's function never sees: its fraction of variance unexplained
(FVU) and its dead latents, each against the reference's on the same data (as lab 04 judges ``train_sae``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interplab import corpus, models
from interplab.attribution import attribution_graph
from interplab.exercises import Exercise, Inputs, LabSpec
from interplab.transcoder import Transcoder, load_transcoders, mlp_io


@functools.cache
def _tiny_lm():
    """The shipped tiny LM, loaded once per process (the grader judges many submissions)."""
    return models.load("tiny-lm", "cpu")


def _seed(inputs: Inputs, tag: str) -> int:
    """A seed for the corpus generator, drawn from the exercise's seed."""
    return int(inputs.randint(2**31 - 1, (1,), tag=tag))


def _prompt(inputs: Inputs, tag: str) -> Tensor:
    """One corpus document's first tokens (BOS first); its length is drawn by the seed, never the public one."""
    length = inputs.choose([7, 8, 9, 10, 11], f"{tag}/length")
    return corpus.generate(1, seed=_seed(inputs, f"{tag}/doc")).tokens[0, :length]


def _random_transcoders(inputs: Inputs, model, tag: str, d_tc: int = 64, k: int | None = 6) -> list[Transcoder]:
    """Transcoders of random weights (a different seed's training stands in), with biases that leave some on."""
    out = []
    for layer in range(model.cfg.n_layers):
        tc = Transcoder.init(model.cfg.d_model, d_tc, k=k, layer=layer, generator=inputs.generator(f"{tag}/{layer}"))
        tc.requires_grad_(False)
        tc.W_enc.mul_(2.0)
        tc.b_enc.add_(0.1)
        out.append(tc)
    return out


def _models(inputs: Inputs) -> list[tuple]:
    """(model, transcoders): the shipped pair, a perturbed twin with the shipped transcoders, and a randomly
    initialised twin with random transcoders."""
    model = _tiny_lm()
    shipped = load_transcoders("tiny-lm")
    twin = models.perturbed(model, inputs.generator("twin"))
    fresh = models.random_init("tiny-lm", _seed(inputs, "fresh"), "cpu")
    return [(model, shipped), (twin, shipped), (fresh, _random_transcoders(inputs, fresh, "random"))]


# --- part 1: training and its metrics ----------------------------------------------------------


@dataclass(frozen=True)
class HeldOut:
    """What the judge measures a trained transcoder on; never passed to the student's function."""

    x_test: Float[Tensor, "n d_model"]
    y_test: Float[Tensor, "n d_model"]


#: Every training case: documents, widths (one drawn by the seed), k, steps, batch size, learning rate. Small batches
#: of many steps: a loop that trains on one batch throughout then leaves 26-44% of the held-out variance
#: unexplained against the reference's 2.1-2.4% (3 seeds; at batch 256 it was within 2 points, and passed).
TRAIN = dict(train_docs=160, test_docs=40, d_tc=(96, 128, 160), k=8, steps=400, batch=32, lr=3e-3)


def train_cases(inputs: Inputs) -> list[tuple]:
    """(transcoder, x, y, steps, batch_size, lr, generator, held-out data for the judge): one layer, drawn by the
    seed, of the shipped tiny LM on documents drawn by it; BOS left out (its activations are always the same)."""
    model = _tiny_lm()
    layer = inputs.choose([0, 1], "layer")
    docs = corpus.generate(TRAIN["train_docs"] + TRAIN["test_docs"], seed=_seed(inputs, "corpus")).tokens
    x, y = (a.view(len(docs), -1, a.shape[-1])[:, 1:] for a in mlp_io(model, docs, layer))
    n = TRAIN["train_docs"]
    d_tc = inputs.choose(TRAIN["d_tc"], "width")
    tc = Transcoder.init(model.cfg.d_model, d_tc, k=TRAIN["k"], layer=layer, generator=inputs.generator("init"))
    held_out = HeldOut(x[n:].flatten(0, 1), y[n:].flatten(0, 1))
    return [(tc, x[:n].flatten(0, 1), y[:n].flatten(0, 1), TRAIN["steps"], TRAIN["batch"], TRAIN["lr"],
             inputs.generator("batches"), held_out)]


def _io_case(inputs: Inputs, model, tcs: list[Transcoder], tag: str) -> tuple:
    layer = inputs.choose([0, 1], f"{tag}/layer")
    docs = corpus.generate(12, seed=_seed(inputs, f"{tag}/corpus")).tokens
    x, y = mlp_io(model, docs, layer)
    return tcs[layer], x, y


def fvu_cases(inputs: Inputs) -> list[tuple]:
    """(transcoder, x, y): a layer drawn by the seed, of each model with its transcoders."""
    return [_io_case(inputs, model, tcs, f"m{i}") for i, (model, tcs) in enumerate(_models(inputs))]


def dead_dense_cases(inputs: Inputs) -> list[tuple]:
    """(z, dense_threshold): real features of each model's transcoders, and a threshold drawn by the seed."""
    cases = []
    for i, (model, tcs) in enumerate(_models(inputs)):
        tc, x, _ = _io_case(inputs, model, tcs, f"m{i}")
        cases.append((tc.encode(x).detach(), inputs.choose([0.02, 0.05, 0.1, 0.2], f"m{i}/dense")))
    return cases


def spliced_cases(inputs: Inputs) -> list[tuple]:
    """(model, transcoder, tokens): a layer drawn by the seed, documents drawn by it."""
    cases = []
    for i, (model, tcs) in enumerate(_models(inputs)[:2]):
        layer = inputs.choose([0, 1], f"m{i}/layer")
        cases.append((model, tcs[layer], corpus.generate(6, seed=_seed(inputs, f"m{i}/corpus")).tokens))
    return cases


# --- part 2: scoring features against the corpus's labels ---------------------------------------


def precision_cases(inputs: Inputs) -> list[tuple]:
    """(z, labels): the shipped transcoders' features at a layer drawn by the seed, on documents drawn by it."""
    model, shipped = _tiny_lm(), load_transcoders("tiny-lm")
    cases = []
    for tag in ("a", "b"):
        layer = inputs.choose([0, 1], f"{tag}/layer")
        docs = corpus.generate(20, seed=_seed(inputs, f"{tag}/corpus"))
        x, _ = mlp_io(model, docs.tokens, layer)
        z = shipped[layer].encode(x).view(*docs.tokens.shape, -1).detach()
        cases.append((z, docs.labels))
    return cases


# --- parts 3 and 4: the local replacement and its direct effects --------------------------------


def _perturbed_features(inputs: Inputs, model, tcs: list[Transcoder], tokens: Tensor, tag: str) -> list[Tensor]:
    """The prompt's own features, each scaled by a factor in [0.3, 1.7]: a replacement that recomputes what it
    should hold frozen gives other logits once the features differ from the prompt's."""
    out = []
    for layer, tc in enumerate(tcs):
        z = tc.encode(mlp_io(model, tokens[None], layer)[0]).detach()
        out.append(z * (0.3 + 1.4 * torch.rand(z.shape, generator=inputs.generator(f"{tag}/{layer}"))))
    return out


def _on_prompts(inputs: Inputs, features_of: Callable[..., object]) -> list[tuple]:
    """(model, transcoders, tokens, features_of(inputs, model, transcoders, tokens, tag)): each model on its own
    prompt."""
    cases = []
    for i, (model, tcs) in enumerate(_models(inputs)):
        tokens = _prompt(inputs, f"m{i}")
        cases.append((model, tcs, tokens, features_of(inputs, model, tcs, tokens, f"m{i}")))
    return cases


def replacement_cases(inputs: Inputs) -> list[tuple]:
    """(model, transcoders, tokens, features): each model on its own prompt, with perturbed features."""
    return _on_prompts(inputs, _perturbed_features)


def attribution_cases(inputs: Inputs) -> list[tuple]:
    """(model, transcoders, tokens, target): each model on its own prompt, a target token drawn by the seed."""
    return [(model, tcs, _prompt(inputs, f"m{i}"), int(inputs.randint(model.cfg.d_vocab, (1,), tag=f"m{i}/target")))
            for i, (model, tcs) in enumerate(_models(inputs))]


# --- part 5: influence and pruning --------------------------------------------------------------


def _graph(inputs: Inputs, model, tcs: list[Transcoder], tag: str):
    tokens = _prompt(inputs, tag)
    with torch.no_grad():
        target = int(model(tokens[None])[0, -1].argmax())
    return attribution_graph(model, tcs, tokens, target)


def _random_dag(inputs: Inputs, n: int, tag: str) -> Tensor:
    """A signed adjacency of an acyclic graph whose last node (the logit) reads every other, in shuffled order."""
    a = inputs.randn(n, n, tag=f"{tag}/w") * (torch.rand(n, n, generator=inputs.generator(f"{tag}/m")) < 0.4)
    a = torch.tril(a, diagonal=-1)
    a[-1, :-1] = inputs.randn(n - 1, tag=f"{tag}/logit")
    order = torch.cat([torch.randperm(n - 1, generator=inputs.generator(f"{tag}/order")), torch.tensor([n - 1])])
    return a[order][:, order]


def influence_cases(inputs: Inputs) -> list[tuple]:
    """(adjacency, logit): the shipped pair's and the twin's attribution graphs, and a random signed DAG."""
    pairs = _models(inputs)[:2]
    graphs = [_graph(inputs, model, tcs, f"m{i}").adjacency for i, (model, tcs) in enumerate(pairs)]
    dag = _random_dag(inputs, inputs.choose([9, 10, 11, 12], "n"), "dag")
    return [(a, len(a) - 1) for a in graphs] + [(dag, len(dag) - 1)]


def prune_cases(inputs: Inputs) -> list[tuple]:
    """(adjacency, activations, is_feature, threshold): the two graphs, thresholds drawn by the seed."""
    cases = []
    for i, (model, tcs) in enumerate(_models(inputs)[:2]):
        graph = _graph(inputs, model, tcs, f"m{i}")
        activations = torch.tensor([node.activation for node in graph.nodes])
        is_feature = torch.tensor([node.kind == "feature" for node in graph.nodes])
        cases.append((graph.adjacency, activations, is_feature, inputs.choose([0.5, 0.6, 0.7, 0.8, 0.9], f"t{i}")))
    return cases


# --- part 6: interventions in the real model ----------------------------------------------------


def _active(inputs: Inputs, model, tcs: list[Transcoder], tokens: Tensor, tag: str) -> list[tuple[int, int, int]]:
    """Three active (layer, pos, feature) after BOS, drawn by the seed, at least one in each layer."""
    chosen = []
    for layer, n in ((0, 2), (1, 1)):
        z = tcs[layer].encode(mlp_io(model, tokens[None], layer)[0])
        z[0] = 0.0
        active = z.nonzero().tolist()
        picks = torch.randperm(len(active), generator=inputs.generator(f"{tag}/{layer}"))[:n]
        chosen += [(layer, *active[int(j)]) for j in picks]
    return chosen


def ablate_cases(inputs: Inputs) -> list[tuple]:
    """(model, transcoders, tokens, features): each model on its own prompt, active features drawn by the seed."""
    return _on_prompts(inputs, _active)


# --- the grader's own measurements of a trained transcoder --------------------------------------


def transcoder_weights(result: object) -> Tensor:
    """A trained transcoder as the answer to record: its four weights, flattened."""
    if not isinstance(result, Transcoder):
        hint = " (did you forget to `return tc`?)" if result is None else ""
        raise TypeError(f"your function returned a {type(result).__name__}{hint}; return the Transcoder")
    return torch.cat([w.detach().flatten() for w in result.parameters()])


def _unflatten(flat: Tensor, like: Transcoder) -> Transcoder:
    sizes = [w.numel() for w in like.parameters()]
    if flat.numel() != sum(sizes):
        raise ValueError(f"a transcoder of {flat.numel()} numbers, not {sum(sizes)}")
    parts = [p.view(w.shape) for p, w in zip(flat.split(sizes), like.parameters())]
    return Transcoder(*parts, k=like.k, layer=like.layer)


@torch.no_grad()
def measure(tc: Transcoder, held_out: HeldOut) -> tuple[float, float]:
    """(FVU, dead fraction) on the held-out tokens, in float64, independent of anything the student wrote."""
    tc64 = Transcoder(*(w.detach().double() for w in tc.parameters()), k=tc.k, layer=tc.layer)
    x, y = held_out.x_test.double(), held_out.y_test.double()
    z = tc64.encode(x)
    fvu = (y - tc64.decode(z)).pow(2).sum() / (y - y.mean(0)).pow(2).sum()
    return float(fvu), float(((z > 0).sum(0) == 0).double().mean())


#: The trained transcoder's held-out FVU at most this far above the reference's; dead latents at most this far above.
FVU_MARGIN, DEAD_MARGIN = 0.05, 0.15


def check_train(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    """A trained transcoder: finite, changed, and as good on held-out tokens as the reference."""
    given, held_out = args[0], args[-1]
    try:
        tc = _unflatten(answer, given)
    except ValueError as exc:
        return f"{exc}: return the transcoder you were given (`tc`), trained in place"
    if not all(bool(torch.isfinite(w).all()) for w in tc.parameters()):
        return "the trained weights contain NaN or infinity: did the training diverge?"
    if torch.equal(answer, transcoder_weights(given)):
        return "the transcoder's weights did not change: train `tc` in place (pass tc.parameters() to the optimiser)"
    (fvu, dead), (want_fvu, want_dead) = measure(tc, held_out), measure(_unflatten(reference, given), held_out)
    if fvu > want_fvu + FVU_MARGIN:
        return (f"your transcoder leaves {fvu:.1%} of the MLP output's held-out variance unexplained, the reference "
                f"{want_fvu:.1%}: it must predict the MLP's output y from its input x, on a fresh random batch "
                "every step")
    if dead > want_dead + DEAD_MARGIN:
        return f"{dead:.0%} of your latents never fire on held-out tokens (the reference: {want_dead:.0%})"
    return None


LAB = LabSpec(
    name="08_circuits",
    exercises=(
        Exercise("train_transcoder", train_cases, properties=check_train, output=transcoder_weights, judge_only=1),
        Exercise("fvu", fvu_cases, rtol=1e-4, atol=1e-5),
        Exercise("dead_dense", dead_dense_cases, rtol=1e-5, atol=1e-6),
        Exercise("spliced_loss", spliced_cases, rtol=1e-4, atol=1e-4),
        Exercise("label_precision", precision_cases, rtol=1e-5, atol=1e-6),
        Exercise("replacement_logits", replacement_cases, rtol=1e-4, atol=1e-4),
        Exercise("logit_attribution", attribution_cases, rtol=1e-3, atol=1e-4, uses=("replacement_logits",)),
        Exercise("influence", influence_cases, rtol=1e-4, atol=1e-5),
        Exercise("prune_features", prune_cases, rtol=0, atol=0, uses=("influence",)),
        Exercise("ablate_features", ablate_cases, rtol=1e-4, atol=1e-4),
    ),
)
