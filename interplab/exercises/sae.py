"""Lab 04, sparse autoencoders: the inputs each exercise is graded on, and how training is judged.

Most exercises are deterministic (encode, decode, the loss, the metrics, a latent's logit effect,
ablating and steering, resampling dead latents) and are compared with the reference on SAEs with random
weights, documents and latents the student has not seen. Training is random
by design, so ``train_sae`` is judged by what the trained SAE *does*, measured here by the
grader itself on held-out data the student's function never sees:

- on toy activations whose true features are known (Sharkey et al. 2022), by how well the
  decoder recovers them: mean max cosine similarity (MMCS) above a threshold;
- on the tiny LM's activations, by explained variance, L0, dead latents and the language
  model's loss with the SAE spliced in, each against the reference's on the same data.

Definitions (the lab states them too): L0 is the mean number of non-zero latents per token;
explained variance is ``1 - Σ‖x - x̂‖² / Σ‖x - x̄‖²`` over all tokens; a latent is dead when it
fires on none of the evaluation tokens.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from interplab import corpus, models
from interplab.exercises import Exercise, Inputs, LabSpec, returned
from interplab.sae import LM_HOOK, SAE, lm_activations, toy_activations, toy_features

# --- inputs -----------------------------------------------------------------------------------


def _random_sae(
    inputs: Inputs, d_in: int, d_sae: int, tag: str, k: int | None = None, bias: float = 0.0, batch_topk: bool = False
) -> SAE:
    """Weights of no particular shape (decoder rows not unit-norm, non-zero biases): plain tensors.

    ``bias`` shifts the encoder bias, so that many pre-activations are negative (or positive).
    """
    return SAE(
        W_enc=inputs.randn(d_in, d_sae, tag=f"{tag}/W_enc") * 0.5,
        b_enc=inputs.randn(d_sae, tag=f"{tag}/b_enc") * 0.3 + bias,
        W_dec=inputs.randn(d_sae, d_in, tag=f"{tag}/W_dec") * 0.7,
        b_dec=inputs.randn(d_in, tag=f"{tag}/b_dec") * 0.5,
        k=k,
        batch_topk=batch_topk,
    )


def _sparse_latents(inputs: Inputs, n: int, d_sae: int, density: float, tag: str) -> Float[Tensor, "n d_sae"]:
    """Non-negative latents, zero except with probability ``density``; the last latent is dead."""
    values = torch.rand(n, d_sae, generator=inputs.generator(f"{tag}/values")) * 3
    z = values * (torch.rand(n, d_sae, generator=inputs.generator(f"{tag}/mask")) < density)
    z[:, -1] = 0.0
    return z


def _seed(inputs: Inputs, tag: str) -> int:
    """A seed for the corpus generator, drawn from the exercise's seed."""
    return int(inputs.randint(2**31 - 1, (1,), tag=tag))


def encode_cases(inputs: Inputs) -> list[tuple]:
    """(sae, x): sizes of every shape, and an encoder bias that turns most latents off."""
    return [
        (_random_sae(inputs, 5, 12, "a"), inputs.randn(7, 5, tag="xa")),
        (_random_sae(inputs, 8, 4, "b"), inputs.randn(3, 8, tag="xb") * 2),
        (_random_sae(inputs, 6, 6, "c", bias=-1.0), inputs.randn(6, 6, tag="xc") + 1),
    ]


def topk_cases(inputs: Inputs) -> list[tuple]:
    """(sae, x) with ``sae.k`` set; once with fewer positive pre-activations than k in most rows."""
    return [
        (_random_sae(inputs, 4, 10, "a", k=3), inputs.randn(6, 4, tag="xa")),
        (_random_sae(inputs, 7, 16, "b", k=1), inputs.randn(5, 7, tag="xb")),
        (_random_sae(inputs, 6, 9, "c", k=5, bias=-1.5), inputs.randn(9, 6, tag="xc")),
        (_random_sae(inputs, 3, 8, "d", k=8), inputs.randn(4, 3, tag="xd")),
    ]


def batchtopk_cases(inputs: Inputs) -> list[tuple]:
    """(sae, x) with ``sae.batch_topk``: examples of very different sizes (so some keep many latents and
    some none), and once fewer positive pre-activations in the whole batch than k × batch."""
    scale = torch.linspace(0.2, 3.0, 8)[:, None]
    return [
        (_random_sae(inputs, 5, 12, "a", k=2, batch_topk=True), inputs.randn(8, 5, tag="xa") * scale),
        (_random_sae(inputs, 6, 9, "b", k=4, bias=-1.5, batch_topk=True), inputs.randn(7, 6, tag="xb")),
        (_random_sae(inputs, 4, 16, "c", k=1, batch_topk=True), inputs.randn(10, 4, tag="xc") * scale.repeat(2, 1)[:10]),
    ]


def decode_cases(inputs: Inputs) -> list[tuple]:
    """(sae, z): sparse non-negative latents, as an encoder makes them."""
    return [
        (_random_sae(inputs, 5, 12, "a"), _sparse_latents(inputs, 7, 12, 0.3, "za")),
        (_random_sae(inputs, 9, 4, "b"), _sparse_latents(inputs, 3, 4, 0.6, "zb")),
    ]


def loss_cases(inputs: Inputs) -> list[tuple]:
    """(sae, x, l1_coeff): L1 SAEs with and without the penalty, and a TopK SAE (no penalty)."""
    return [
        (_random_sae(inputs, 5, 12, "a"), inputs.randn(16, 5, tag="xa"), 0.5),
        (_random_sae(inputs, 8, 8, "b"), inputs.randn(8, 8, tag="xb"), 0.0),
        (_random_sae(inputs, 6, 20, "c", k=4), inputs.randn(10, 6, tag="xc"), 0.7),
        (_random_sae(inputs, 4, 6, "d", bias=0.5), inputs.randn(12, 4, tag="xd") * 3, 2.0),
    ]


def grad_cases(inputs: Inputs) -> list[tuple]:
    """(W_dec, grad): rows far from unit norm; once square, so the wrong axis has the right shape."""
    return [
        (inputs.randn(6, 4, tag="Wa") * 2, inputs.randn(6, 4, tag="ga")),
        (inputs.randn(5, 5, tag="Wb") * 0.3, inputs.randn(5, 5, tag="gb")),
        (inputs.randn(12, 7, tag="Wc"), inputs.randn(12, 7, tag="gc") * 0.1),
    ]


@dataclass(frozen=True)
class HeldOut:
    """What the judge measures a trained SAE on; never passed to the student's function."""

    x_test: Float[Tensor, "n d_in"]
    #: The true feature directions of toy data (None for the language model).
    features: Float[Tensor, "n_features d_in"] | None = None
    #: Documents whose activations are ``x_test`` (language model only), for the spliced loss.
    tokens: Int[Tensor, "doc pos"] | None = None


#: Toy data: 48 features in 24 dimensions, about 2.9 present per example; an SAE twice as wide.
TOY = dict(n_features=48, d=24, p=0.06, d_sae=96, n_train=20_000, n_test=4_000)
#: The tiny LM: TopK SAE on the first MLP's output, about 2× wide (one of these widths).
LM = dict(train_docs=300, test_docs=40, d_sae=(224, 256, 288), k=16)
#: Every training case: steps, batch size, learning rate.
STEPS, BATCH, LR = 600, 256, 1e-2


def _toy_case(inputs: Inputs, tag: str, k: int | None, l1_coeff: float) -> tuple:
    features = toy_features(TOY["n_features"], TOY["d"], inputs.generator(f"{tag}/features"))
    x = toy_activations(features, TOY["n_train"], TOY["p"], inputs.generator(f"{tag}/train"))
    x_test = toy_activations(features, TOY["n_test"], TOY["p"], inputs.generator(f"{tag}/test"))
    sae = SAE.init(TOY["d"], TOY["d_sae"], k=k, generator=inputs.generator(f"{tag}/init"))
    return (sae, x, STEPS, BATCH, LR, l1_coeff, inputs.generator(f"{tag}/batches"), HeldOut(x_test, features=features))


def _lm_case(inputs: Inputs, tag: str) -> tuple:
    """The width is drawn by the seed and never the public one: an SAE trained on the public case (the
    same model, the same kind of text) would otherwise fit the hidden one as well as the student's."""
    model = _tiny_lm()
    docs = corpus.generate(LM["train_docs"] + LM["test_docs"], seed=_seed(inputs, f"{tag}/corpus")).tokens
    acts = lm_activations(model, docs)[:, 1:]  # BOS is left out: its activation is the same every time
    train, test = acts[: LM["train_docs"]].flatten(0, 1), acts[LM["train_docs"]:].flatten(0, 1)
    d_sae = inputs.choose(LM["d_sae"], f"{tag}/width")
    sae = SAE.init(acts.shape[-1], d_sae, k=LM["k"], generator=inputs.generator(f"{tag}/init"))
    held_out = HeldOut(test, tokens=docs[LM["train_docs"]:])
    return (sae, train, STEPS, BATCH, LR, 0.0, inputs.generator(f"{tag}/batches"), held_out)


def train_cases(inputs: Inputs) -> list[tuple]:
    """(sae, activations, steps, batch_size, lr, l1_coeff, generator, held-out data for the judge)."""
    return [_toy_case(inputs, "l1", None, 0.3), _toy_case(inputs, "topk", 4, 0.0), _lm_case(inputs, "lm")]


def variance_cases(inputs: Inputs) -> list[tuple]:
    """(x, x_hat): once with a large mean, where forgetting to centre x shows."""
    cases = []
    for i, (n, d, offset) in enumerate([(20, 5, 0.0), (50, 3, 4.0), (9, 9, 1.0)]):
        x = inputs.randn(n, d, tag=f"x{i}") + offset
        cases.append((x, x + 0.4 * inputs.randn(n, d, tag=f"noise{i}")))
    return cases


def frequency_cases(inputs: Inputs) -> list[tuple]:
    """(z,): sparse latents with a dead one; once square."""
    return [(_sparse_latents(inputs, 30, 8, 0.2, "a"),), (_sparse_latents(inputs, 6, 6, 0.5, "b"),)]


def mmcs_cases(inputs: Inputs) -> list[tuple]:
    """(W_dec, features): rows of any norm; more latents than features, as many, and fewer."""
    cases = []
    for i, (d_sae, n_features, d) in enumerate([(12, 6, 4), (5, 5, 5), (3, 7, 6)]):
        features = toy_features(n_features, d, inputs.generator(f"features{i}"))
        cases.append((inputs.randn(d_sae, d, tag=f"W{i}") * 2, features))
    # an SAE that nearly found every feature (rows scaled, shuffled, slightly off, and two doubled) plus two junk
    # latents; slightly off, so that its MMCS is just under 1 and differs from seed to seed
    features = toy_features(6, 5, inputs.generator("found"))
    order = torch.randperm(6, generator=inputs.generator("order"))
    near = features[order] + 0.1 * inputs.randn(6, 5, tag="off")
    found = torch.cat([near * 3, features[:2] * 0.5, inputs.randn(2, 5, tag="junk")])
    return cases + [(found, features)]


@functools.cache
def _tiny_lm():
    """The shipped tiny LM, loaded once per process (the grader judges many submissions)."""
    return models.load("tiny-lm", "cpu")


def _data_sae(inputs: Inputs, acts: Float[Tensor, "n d"], d_sae: int, k: int | None, tag: str) -> SAE:
    """An SAE whose decoder rows are real activations (a crude but honest dictionary)."""
    rows = acts[torch.randint(0, acts.shape[0], (d_sae,), generator=inputs.generator(f"{tag}/rows"))]
    W_dec = rows / rows.norm(dim=1, keepdim=True)
    b_enc = torch.full((d_sae,), -0.5 if k is None else 0.0)
    return SAE(W_dec.T.clone(), b_enc, W_dec, acts.mean(0), k=k)


def recovered_cases(inputs: Inputs) -> list[tuple]:
    """(model, sae, tokens, hook_name): the shipped tiny LM with SAEs made from its own activations."""
    model = _tiny_lm()
    docs = corpus.generate(48, seed=_seed(inputs, "corpus")).tokens
    acts = lm_activations(model, docs[:32])[:, 1:].flatten(0, 1)
    return [
        (model, _data_sae(inputs, acts, 256, 16, "topk"), docs[32:40], LM_HOOK),
        (model, _data_sae(inputs, acts, 128, None, "relu"), docs[40:], LM_HOOK),
    ]


def logit_cases(inputs: Inputs) -> list[tuple]:
    """(model, sae, latent): random decoders read through the tiny LM's unembedding and a perturbed twin's;
    the latent is drawn by the seed."""
    model = _tiny_lm()
    twin = models.perturbed(model, inputs.generator("twin"))
    d = model.cfg.d_model
    return [(model, _random_sae(inputs, d, 32, "a"), inputs.choose(range(32), "la")),
            (twin, _random_sae(inputs, d, 48, "b"), inputs.choose(range(48), "lb"))]


def _firing_latent(inputs: Inputs, sae: SAE, acts: Float[Tensor, "n d"], tag: str,
                   also: Float[Tensor, "d"] | None = None) -> int:
    """A latent that fires on between 1% and 50% of ``acts`` (and on ``also``, if given), drawn by the seed."""
    frequency = (_encode(sae, acts) > 0).float().mean(0)
    candidates = (frequency >= 0.01) & (frequency <= 0.5)
    if also is not None:
        candidates &= _encode(sae, also[None])[0] > 0
    candidates = candidates.nonzero().flatten()
    return int(candidates[inputs.randint(len(candidates), (1,), tag=tag)])


def ablate_cases(inputs: Inputs) -> list[tuple]:
    """(model, sae, tokens, hook_name, latent): SAEs made of the tiny LM's own activations (one TopK, one
    ReLU) on documents drawn by the seed, and a latent that fires on some of their tokens; the ReLU SAE's
    fires on BOS too, so that ablating it there (which the exercise forbids) shows."""
    model = _tiny_lm()
    docs = corpus.generate(40, seed=_seed(inputs, "corpus")).tokens
    full = lm_activations(model, docs[:32])
    acts, bos = full[:, 1:].flatten(0, 1), full[0, 0]
    topk, relu = _data_sae(inputs, acts, 128, 8, "topk"), _data_sae(inputs, acts, 96, None, "relu")
    return [(model, topk, docs[32:36], LM_HOOK, _firing_latent(inputs, topk, acts, "la")),
            (model, relu, docs[36:40], LM_HOOK, _firing_latent(inputs, relu, acts, "lb", also=bos))]


def steer_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, hook_name, direction, coeff): unit directions drawn by the seed, at two hooks, with
    coefficients of either sign."""
    model = _tiny_lm()
    docs = corpus.generate(6, seed=_seed(inputs, "corpus")).tokens
    direction = {tag: F.normalize(inputs.randn(model.cfg.d_model, tag=tag), dim=0) for tag in ("da", "db")}
    return [(model, docs[:3], LM_HOOK, direction["da"], inputs.choose([2.0, 4.0, 8.0], "ca")),
            (model, docs[3:], "blocks.1.hook_resid_pre", direction["db"], inputs.choose([-6.0, -3.0, 5.0], "cb"))]


def _unit_rows(sae: SAE) -> SAE:
    """The same SAE with unit-norm decoder rows, as training leaves them."""
    return SAE(sae.W_enc, sae.b_enc, sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True), sae.b_dec, k=sae.k)


def resample_cases(inputs: Inputs) -> list[tuple]:
    """(sae, x, dead): a TopK and a ReLU SAE with unit decoder rows, and some latents (drawn by the seed) dead."""
    cases = []
    for tag, (d_in, d_sae, k, n) in {"a": (6, 16, 3, 40), "b": (5, 10, None, 30)}.items():
        sae = _unit_rows(_random_sae(inputs, d_in, d_sae, tag, k=k, bias=0.2))
        n_dead = inputs.choose([2, 3, 4, 5], f"{tag}/n_dead")
        dead = torch.zeros(d_sae, dtype=torch.bool)
        dead[torch.randperm(d_sae, generator=inputs.generator(f"{tag}/dead"))[:n_dead]] = True
        cases.append((sae, inputs.randn(n, d_in, tag=f"{tag}/x") + 0.5, dead))
    return cases


def top_cases(inputs: Inputs) -> list[tuple]:
    """(z, latent, k): continuous activations (no ties among the top k). Each k is drawn by the seed
    from its own range and never the public one, so no hidden answer has a public answer's shape."""
    z1 = torch.relu(inputs.randn(40, 6, tag="z1"))
    z2 = torch.relu(inputs.randn(25, 25, tag="z2") + 0.5)
    return [(z1, 2, inputs.choose([4, 5, 6, 7], "k1")), (z1, 0, inputs.choose([1, 2, 3], "k2")),
            (z2, 24, inputs.choose([8, 9, 10, 11], "k3"))]


def precision_cases(inputs: Inputs) -> list[tuple]:
    """(z, labels): sparse latents (one dead) and random boolean features of various densities."""
    cases = []
    for i, (n, d_sae, n_features) in enumerate([(50, 6, 4), (30, 9, 9)]):
        density = torch.rand(n_features, generator=inputs.generator(f"density{i}"))
        labels = torch.rand(n, n_features, generator=inputs.generator(f"labels{i}")) < density
        cases.append((_sparse_latents(inputs, n, d_sae, 0.3, f"z{i}"), labels))
    return cases


# --- the grader's own measurements of a trained SAE ---------------------------------------------


def _encode(sae: SAE, x: Float[Tensor, "n d_in"]) -> Float[Tensor, "n d_sae"]:
    pre = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    if sae.k is None:
        return pre
    if sae.batch_topk:  # the k × n largest of the whole batch
        top = pre.flatten().topk(sae.k * pre.shape[0])
        return torch.zeros_like(pre).flatten().scatter(0, top.indices, top.values).view_as(pre)
    top = pre.topk(sae.k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values)


@dataclass(frozen=True)
class Measures:
    """What the judge measures of one trained SAE on held-out data."""

    l0: float
    explained_variance: float
    dead_fraction: float
    mmcs: float | None = None
    #: The language model's loss with the SAE spliced in, minus its clean loss (nats).
    loss_increase: float | None = None


@torch.no_grad()
def measure(sae: SAE, held_out: HeldOut) -> Measures:
    """The judge's measurements (float64), independent of anything the student wrote."""
    sae64 = SAE(*(w.detach().to(torch.float64) for w in sae.parameters()), k=sae.k)
    x = held_out.x_test.to(torch.float64)
    z = _encode(sae64, x)
    x_hat = z @ sae64.W_dec + sae64.b_dec
    explained = 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    mmcs = increase = None
    if held_out.features is not None:
        directions = sae64.W_dec / sae64.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        mmcs = float((held_out.features.to(torch.float64) @ directions.T).max(dim=1).values.mean())
    if held_out.tokens is not None:
        increase = _spliced_loss(sae, held_out.tokens) - _spliced_loss(None, held_out.tokens)
    return Measures(float((z > 0).sum(1).double().mean()), float(explained), float(((z > 0).sum(0) == 0).double().mean()),
                    mmcs, increase)


def _spliced_loss(sae: SAE | None, tokens: Int[Tensor, "doc pos"]) -> float:
    """The tiny LM's mean loss with the SAE's reconstruction at ``LM_HOOK`` (BOS kept); clean when None."""
    def splice(activation: Tensor, hook) -> Tensor:
        rest = activation[:, 1:]
        x_hat = _encode(sae, rest) @ sae.W_dec + sae.b_dec
        return torch.cat([activation[:, :1], x_hat.to(activation.dtype)], dim=1)

    model = _tiny_lm()
    hooks = [] if sae is None else [(LM_HOOK, splice)]
    with torch.no_grad():
        return float(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=hooks))


#: Toy data: the decoder must find the true features, MMCS ≥ this (the reference reaches ≈ 0.99).
MMCS_THRESHOLD = 0.9
#: Language model: explained variance at most this far below the reference's; dead latents at most
#: this far above; the loss increase when spliced in at most this many times the reference's (+ a floor).
EV_MARGIN, DEAD_MARGIN, LOSS_FACTOR, LOSS_FLOOR = 0.03, 0.15, 2.0, 0.01
#: Every decoder row must have unit norm, within this.
UNIT_NORM_TOL = 1e-3


def check_train(answer: torch.Tensor, reference: torch.Tensor, args: tuple) -> str | None:
    """A trained SAE: unit-norm decoder rows, and held-out measures as good as the reference's."""
    given, held_out = args[0], args[-1]
    try:
        sae = SAE.from_flat(answer, given.d_in, given.d_sae, given.k)
    except ValueError as exc:
        return f"{exc}: return the SAE you were given (`sae`), trained in place"
    if not all(bool(torch.isfinite(w).all()) for w in sae.parameters()):
        return "the trained weights contain NaN or infinity: did the training diverge?"
    if torch.equal(answer, given.flat()):
        return "the SAE's weights did not change: train `sae` in place (pass sae.parameters() to the optimiser)"
    norms = sae.W_dec.norm(dim=1)
    if float((norms - 1).abs().max()) > UNIT_NORM_TOL:
        return (f"decoder rows must have unit norm after training (yours range from {float(norms.min()):.3f} to "
                f"{float(norms.max()):.3f}): divide each row of W_dec by its norm after every optimiser step")
    got, want = measure(sae, held_out), measure(SAE.from_flat(reference, given.d_in, given.d_sae, given.k), held_out)
    kind = "L1 SAE" if given.k is None else f"TopK SAE (k={given.k})"
    if got.mmcs is not None and got.mmcs < MMCS_THRESHOLD:
        return (f"your {kind} recovers the true features poorly: MMCS {got.mmcs:.3f} on toy data, where at least "
                f"{MMCS_THRESHOLD} is needed (the reference reaches {want.mmcs:.3f}); check sae_loss and that every "
                "step draws a fresh random batch, zeroes the gradients, removes the decoder gradient's parallel "
                "part and renormalises W_dec")
    if got.explained_variance < want.explained_variance - EV_MARGIN:
        return (f"your {kind} explains {got.explained_variance:.1%} of the held-out variance, the reference "
                f"{want.explained_variance:.1%}: train with Adam at the given lr for all the steps, on random "
                "batches of the activations")
    if got.dead_fraction > want.dead_fraction + DEAD_MARGIN:
        return (f"{got.dead_fraction:.0%} of your latents never fire on held-out data (the reference: "
                f"{want.dead_fraction:.0%}): start from the given initialisation and b_dec at the activations' mean")
    if got.loss_increase is not None and got.loss_increase > LOSS_FACTOR * want.loss_increase + LOSS_FLOOR:
        return (f"spliced into the language model, your SAE raises its loss by {got.loss_increase:.3f} nats, the "
                f"reference's by {want.loss_increase:.3f}")
    if given.k is None and got.l0 > 2 * want.l0 + 1:
        return (f"your L1 SAE uses {got.l0:.1f} latents per example, the reference {want.l0:.1f}: is the L1 penalty "
                "in your loss, with the given coefficient?")
    return None


sae_weights = returned(SAE, "sae")


LAB = LabSpec(
    name="04_sae",
    exercises=(
        Exercise("encode_relu", encode_cases, rtol=1e-4, atol=1e-5),
        Exercise("encode_topk", topk_cases, rtol=1e-4, atol=1e-5, uses=("encode_relu",)),
        Exercise("encode_batchtopk", batchtopk_cases, rtol=1e-4, atol=1e-5, uses=("encode_relu",)),
        Exercise("decode", decode_cases, rtol=1e-4, atol=1e-5),
        Exercise("sae_loss", loss_cases, rtol=1e-4, atol=1e-5, uses=("encode_relu", "encode_topk", "decode")),
        Exercise("remove_parallel_grad", grad_cases, rtol=1e-4, atol=1e-5),
        Exercise("train_sae", train_cases, properties=check_train, output=sae_weights, judge_only=1,
                 uses=("encode_relu", "encode_topk", "decode", "sae_loss", "remove_parallel_grad")),
        Exercise("fire_frequencies", frequency_cases, rtol=1e-5, atol=1e-6),
        Exercise("explained_variance", variance_cases, rtol=1e-4, atol=1e-5),
        Exercise("mmcs", mmcs_cases, rtol=1e-4, atol=1e-5),
        Exercise("loss_recovered", recovered_cases, rtol=1e-3, atol=1e-4, uses=("encode_relu", "encode_topk", "decode")),
        Exercise("top_activating", top_cases, rtol=0, atol=0),
        Exercise("feature_precision", precision_cases, rtol=1e-5, atol=1e-6),
        Exercise("logit_effect", logit_cases, rtol=1e-4, atol=1e-5),
        Exercise("ablate_latent", ablate_cases, rtol=1e-3, atol=1e-4, uses=("encode_relu", "encode_topk")),
        Exercise("steer", steer_cases, rtol=1e-4, atol=1e-4),
        Exercise("resample_dead", resample_cases, rtol=1e-4, atol=1e-5, output=sae_weights,
                 uses=("encode_relu", "encode_topk", "decode")),
    ),
)
