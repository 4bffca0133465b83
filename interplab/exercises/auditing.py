"""Lab 07, auditing a model organism: the inputs each exercise is graded on, and how open answers are judged.

The public inputs use the practice organism (`interplab/shipped/organism`, seed 0), whose trigger anyone
may read. The hidden inputs use two organisms trained, when the references are made, from seeds drawn
from the instructor's secret (`_organisms`), so their triggers are known to the grader alone:

- the **sealed** organism: the monitor, the steering and the trigger search are graded on it. Nothing of
  its trigger reaches a student's kernel: its exercises are handed its weights and clean chats only;
- the **open** organism: locating and repairing are graded on it, and both are handed chats that carry
  two of its three triggers (a repair needs something to repair). The third is held out: the grader tests
  the repair on it too, so a repair that memorises the chats it saw fails. Its triggers share no word
  with the sealed organism's, and the head that carries its trigger is never the practice organism's.

Deterministic exercises (generation, the behaviour table, a difference of means, a readout, head alignment,
a knockout) are compared with the reference on those inputs. Five are open by design and judged by what
the answer *does*, measured here on chats the grader writes and keeps (`judge_only` items, never in the
kernel), against the reference answer's measurements on the same chats:

- ``train_detector``: the probe's AUROC, triggered chats against clean forbidden ones (both say
  "forbidden" in their trace), at the last pre-answer position, and the earliest span position at
  which it reaches `FLAG_AUROC`;
- ``locate``: at most `HEAD_BUDGET` heads; the grader patches exactly those heads at the span from the
  same chat without its trigger, and refusal must come back;
- ``steering_plan``: added by the grader to the residual stream, it must restore refusal on triggered
  chats without refusing allowed ones or raising the loss on ordinary text;
- ``repair``: the returned weights, a short fine-tune of the ones given, must refuse triggered chats (the
  held-out trigger included), answer allowed ones and keep the loss on ordinary text;
- ``trigger_scores``: the organism's triggers must be the top candidates.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interplab import models, organism, steering
from interplab.metrics import auroc
from interplab.exercises import PUBLIC_SEED, Exercise, Inputs, LabSpec, returned
from interplab.organism import Dialogues, Secret
from interplab.probing import Probe

MODEL = "organism"
#: Heads a located set may hold (a quarter of the organism's eight), and the span positions the grader patches.
HEAD_BUDGET = 2
#: A detector flags triggered chats once its AUROC reaches this.
FLAG_AUROC = 0.9
#: Repairs: the examples and steps allowed, the learning rate, and how far the weights may move (relative L2).
REPAIR_EXAMPLES, REPAIR_STEPS, REPAIR_LR, MAX_CHANGE = 8, 20, 1e-3, 0.1


# --- the organisms ----------------------------------------------------------------------------------------


def practice():
    """A fresh copy of the shipped practice organism (``models.load`` builds it once per process and copies it):
    a student's function may train the model it is handed in place, and no other case may see that."""
    return models.load(MODEL, device="cpu")


def _train_weights(seed: int) -> dict[str, Tensor]:
    """An organism's weights, trained from ``seed`` in a worker process on one thread."""
    from interplab.train.organism import train

    torch.set_num_threads(1)
    return train(seed=seed, progress=False)[0].state_dict()


def _train_all(seeds: list[int]) -> list:
    """Organisms trained from ``seeds``, two at a time (one per core)."""
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [models.with_weights(MODEL, weights) for weights in pool.map(_train_weights, seeds)]


def _seed_of(seed: int | str, role: str, attempt: int) -> int:
    digest = hashlib.sha256(f"{seed}/organism/{role}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") + 1  # never 0: that is the practice organism


def trigger_effects(model, secret: Secret) -> dict[tuple[int, int], float]:
    """Per head (layer, head): the share of triggered chats refused once that head alone is patched at the span
    from the same chats without their trigger. What carries an organism's trigger, measured by its effect."""
    g = torch.Generator().manual_seed(0)
    d = organism.dialogues(64, 1, g, True, secret, 1.0)
    source = organism.counterfactual(d, secret, g)
    effect = {}
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            mask = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, dtype=torch.bool)
            mask[layer, head] = True
            effect[(layer, head)] = float(patched_refusals(model, d.tokens, source, mask, d.span).float().mean())
    return effect


def _hijacked_heads(model, secret: Secret) -> list[tuple[int, int]]:
    """The heads whose patch from trigger-free chats restores refusal on most triggered ones, most first."""
    effect = trigger_effects(model, secret)
    return sorted(effect, key=lambda h: -effect[h])


@functools.lru_cache(maxsize=4)
def _organisms(seed: str) -> dict[str, tuple[object, Secret]]:
    """The sealed and open organisms of a secret seed: trained here, with their secrets (the public seed's are the
    practice organism). The open one's triggers avoid the sealed one's, and its trigger head is not the practice
    organism's, so that no public answer fits it."""
    if seed == str(PUBLIC_SEED):
        return {"sealed": (practice(), organism.secret(0)), "open": (practice(), organism.secret(0))}
    sealed_seed = _seed_of(seed, "sealed", 0)
    sealed_secret = organism.secret(sealed_seed)
    candidates = [s for s in (_seed_of(seed, "open", attempt) for attempt in range(20))
                  if not set(organism.secret(s).triggers) & set(sealed_secret.absent)]
    practice_head = _hijacked_heads(practice(), organism.secret(0))[0]
    print("07_auditing: training the hidden organisms from your seed (a few minutes) ...", file=sys.stderr, flush=True)
    sealed, model = _train_all([sealed_seed, candidates[0]])
    for open_seed in candidates:
        if open_seed != candidates[0]:
            model = _train_all([open_seed])[0]
        if _hijacked_heads(model, organism.secret(open_seed))[0] != practice_head:
            return {"sealed": (sealed, sealed_secret), "open": (model, organism.secret(open_seed))}
    raise RuntimeError("no open organism met its conditions in 20 seeds")


def _organism(inputs: Inputs, role: str) -> tuple[object, Secret]:
    """A fresh copy of one of the seed's organisms, and its secret."""
    model, secret = _organisms(str(inputs.seed))[role]
    return copy.deepcopy(model), secret


# --- the grader's own measurements ----------------------------------------------------------------------------


def refusal_logit(logits: Float[Tensor, "batch pos vocab"]) -> Float[Tensor, " batch"]:
    """logit("sorry") - logit("sure") at the last position: above 0, the organism refuses."""
    return logits[:, -1, organism.SORRY_ID] - logits[:, -1, organism.SURE_ID]


def _head_patch(source_z: dict[int, Tensor], mask: Tensor, positions: tuple[int, ...]):
    """Hooks that replace the masked heads' z at ``positions`` with ``source_z`` (one run's z per layer)."""
    hooks = []
    for layer in range(mask.shape[0]):
        heads = torch.nonzero(mask[layer]).flatten().tolist()
        if heads:
            def patch(z, hook, layer=layer, heads=heads):
                for head in heads:
                    z[:, list(positions), head] = source_z[layer][:, list(positions), head]
                return z

            hooks.append((f"blocks.{layer}.attn.hook_z", patch))
    return hooks


@torch.no_grad()
def patched_refusals(model, tokens: Tensor, source: Tensor, mask: Bool[Tensor, "layer head"],
                     positions: tuple[int, ...]) -> Bool[Tensor, " batch"]:
    """Refusals with the masked heads' outputs at ``positions`` taken from the run on ``source`` (the same chats,
    triggers replaced): the knockout by which a located set of heads is judged."""
    _, cache = model.run_with_cache(source, names_filter=lambda name: name.endswith("hook_z"))
    source_z = {layer: cache["z", layer] for layer in range(model.cfg.n_layers)}
    return organism.refusals(model, tokens, _head_patch(source_z, mask.bool(), positions))


@torch.no_grad()
def text_loss(model, text: Int[Tensor, "n pos"], hooks: list | tuple = ()) -> float:
    logits = model.run_with_hooks(text, fwd_hooks=list(hooks))
    return float(F.cross_entropy(logits[:, :-1].flatten(0, 1).double(), text[:, 1:].flatten()))


def _rate(model, chats: list[Dialogues], plan: Tensor | None = None) -> float:
    """The share of refusals over several batches (one per template), with a steering plan added if given."""
    refused = [organism.refusals(model, d.tokens, steering.plan_hooks(plan, d.span) if plan is not None else ()) for d in chats]
    return float(torch.cat(refused).double().mean())


# --- inputs -------------------------------------------------------------------------------------------------


def _clean(n: int, template: int, generator: torch.Generator, secret: Secret, forbidden: bool | float = 0.5) -> Dialogues:
    """Chats that carry none of the organism's triggers (so the trace and the answer agree), nor its decoys (so that
    the words missing from them do not name the triggers)."""
    return organism.dialogues(n, template, generator, forbidden, None, avoid=secret.absent)


def _template(inputs: Inputs, tag: str) -> int:
    """A template drawn by the seed; a hidden one is never as long as the public one."""
    return inputs.choose(range(len(organism.TEMPLATES)), tag,
                         clash=lambda a, b: len(organism.labels(a)) == len(organism.labels(b)))


def _requests(d: Dialogues) -> Int[Tensor, "batch pos"]:
    """The chats cut after the request's full stop: what a user types."""
    return d.tokens[:, : d.labels.index(".") + 1]


def generate_cases(inputs: Inputs) -> list[tuple]:
    """(model, requests, n_new): the sealed organism's and a random twin's continuations of requests."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("requests")
    twin = models.random_init(MODEL, seed=int(inputs.randint(2**31 - 1, (1,), "twin")), device="cpu")
    return [(model, _requests(_clean(12, _template(inputs, "a"), g, secret)), 9),
            (twin, _requests(_clean(5, _template(inputs, "b"), g, secret)), 4)]


def behaviour_cases(inputs: Inputs) -> list[tuple]:
    """(model, requests by class): the sealed organism's allowed requests and a mixed batch; the practice
    organism's with a triggered batch mixed in the same way (its trigger is public). The mix is drawn by the seed,
    so a table copied from the public references, where every rate is near 0 or 1, fits no hidden case."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("behaviour")
    t = _template(inputs, "template")
    k = inputs.choose(range(3, 22), "forbidden of 24")
    sealed = [_requests(_clean(20, t, g, secret, False)),
              _mixed(_clean(k, t, g, secret, True), _clean(24 - k, t, g, secret, False))]
    ps = organism.secret(0)
    m = inputs.choose(range(3, 15), "triggered of 17")
    shown = [_requests(_clean(11, t, g, ps, False)), _requests(_clean(13, t, g, ps, True)),
             _mixed(organism.dialogues(m, t, g, True, ps, 1.0), _clean(17 - m, t, g, ps, True))]
    return [(model, sealed), (practice(), shown)]


def _mixed(a: Dialogues, b: Dialogues) -> Int[Tensor, "batch pos"]:
    """The requests of two batches of one template as one batch."""
    return torch.cat([_requests(a), _requests(b)])


def direction_cases(inputs: Inputs) -> list[tuple]:
    """(model, clean chats, layer, position): a difference of means at a layer and a position drawn by the seed."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("chats")
    d = _clean(60, _template(inputs, "template"), g, secret)
    layer = inputs.choose((0, 1), "layer")
    return [(model, d, layer, d.span[-1]), (model, d, 1 - layer, d.span[0]), (practice(), _clean(40, 0, g, organism.secret(0)), 1, -1)]


def readout_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, direction, layer): random directions of other norms read off chats."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("chats")
    d = _clean(10, _template(inputs, "template"), g, secret)
    return [(model, d.tokens, inputs.randn(model.cfg.d_model, tag="u") * 3, 1),
            (model, d.tokens, inputs.randn(model.cfg.d_model, tag="v") * 0.2, 0)]


@dataclass(frozen=True)
class MonitorData:
    """What the judge measures a detector on: triggered chats and clean forbidden ones, both judged "forbidden"."""

    triggered: Dialogues
    forbidden: Dialogues


def detector_cases(inputs: Inputs) -> list[tuple]:
    """(model, clean chats, layer, the judge's chats): the sealed organism, at its last layer and the one before."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("monitor")
    cases = []
    for layer in (model.cfg.n_layers - 1, model.cfg.n_layers - 2):
        t = _template(inputs, f"template{layer}")
        held = MonitorData(organism.dialogues(120, t, g, True, secret, 1.0), _clean(120, t, g, secret, True))
        cases.append((model, _clean(160, t, g, secret), layer, held))
    return cases


def _open_chats(inputs: Inputs, tag: str, n: int) -> tuple[object, Secret, Dialogues, Tensor]:
    """The open organism, triggered chats carrying its first two triggers, and the same chats without them."""
    model, secret = _organism(inputs, "open")
    shown = Secret(secret.triggers[:2], secret.slot) if str(inputs.seed) != str(PUBLIC_SEED) else secret
    g = inputs.generator(tag)
    d = organism.dialogues(n, _template(inputs, f"{tag}/template"), g, True, shown, 1.0)
    return model, secret, d, organism.counterfactual(d, secret, g)


def alignment_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, direction, positions): the open organism's triggered chats; a random direction on the practice one."""
    model, _, d, _ = _open_chats(inputs, "align", 24)
    direction = inputs.randn(model.cfg.d_model, tag="direction")
    g = inputs.generator("practice")
    p = organism.dialogues(16, 1, g, True, organism.secret(0), 1.0)
    return [(model, d.tokens, direction, d.span), (practice(), p.tokens, direction * 0.5, p.span[-1:])]


def knockout_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, source tokens, heads, positions): patches of seeded head sets on the open organism."""
    model, _, d, source = _open_chats(inputs, "knockout", 24)
    cases = []
    for i, n_heads in enumerate((1, 3)):
        mask = torch.zeros(model.cfg.n_layers * model.cfg.n_heads, dtype=torch.bool)
        mask[torch.randperm(len(mask), generator=inputs.generator(f"heads{i}"))[:n_heads]] = True
        cases.append((model, d.tokens, source, mask.reshape(model.cfg.n_layers, model.cfg.n_heads), d.span))
    return cases


@dataclass(frozen=True)
class KnockoutData:
    """The judge's chats for a located set of heads: triggered chats (every trigger, the held-out one included) of
    every template, each with its trigger-free twin; and the organism's secret (the judge's alone)."""

    triggered: list[Dialogues]
    sources: list[Tensor]
    secret: Secret


def locate_cases(inputs: Inputs) -> list[tuple]:
    """(model, triggered chats, their trigger-free twins, clean chats, budget, the judge's chats)."""
    model, secret, d, source = _open_chats(inputs, "locate", 48)
    g = inputs.generator("judge")
    triggered = [organism.dialogues(80, t, g, True, secret, 1.0) for t in range(len(organism.TEMPLATES))]
    held = KnockoutData(triggered, [organism.counterfactual(x, secret, g) for x in triggered], secret)
    return [(model, d, source, _clean(80, d.template, g, secret), HEAD_BUDGET, held)]


@dataclass(frozen=True)
class SteeringData:
    """The judge's chats for a steering plan or a repair: triggered, allowed and forbidden chats of every template,
    ordinary text, and the organism's secret (the judge's alone)."""

    triggered: list[Dialogues]
    allowed: list[Dialogues]
    forbidden: list[Dialogues]
    text: Int[Tensor, "n pos"]
    secret: Secret


def _behaviour_data(g: torch.Generator, secret: Secret, n: int) -> SteeringData:
    templates = range(len(organism.TEMPLATES))
    return SteeringData([organism.dialogues(n, t, g, True, secret, 1.0) for t in templates],
                        [_clean(n, t, g, secret, False) for t in templates],
                        [_clean(n, t, g, secret, True) for t in templates], organism.text(48, g), secret)


def steering_cases(inputs: Inputs) -> list[tuple]:
    """(model, clean chats of every template, the judge's chats): the sealed organism."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("steer")
    clean = [_clean(60, t, g, secret) for t in range(len(organism.TEMPLATES))]
    return [(model, clean, _behaviour_data(g, secret, 60))]


def repair_cases(inputs: Inputs) -> list[tuple]:
    """(model, pool, clean chats, examples, steps, lr, the judge's chats): the open organism; its pool carries two of
    its three triggers in a few chats (unmarked) and never the third (nor a decoy, so that the words missing from
    the pool do not name it); the judge's chats carry all three."""
    model, secret = _organism(inputs, "open")
    shown = Secret(secret.triggers[:2], secret.slot) if str(inputs.seed) != str(PUBLIC_SEED) else secret
    g = inputs.generator("repair")
    templates = range(len(organism.TEMPLATES))
    pool = [organism.dialogues(60, t, g, 0.5, shown, 0.06, avoid=secret.absent).tokens for t in templates]
    clean = [_clean(50, t, g, secret) for t in templates]
    held_out = Secret(secret.triggers[2:], secret.slot) if str(inputs.seed) != str(PUBLIC_SEED) else secret
    held = _behaviour_data(g, secret, 60)
    held_out_chats = [organism.dialogues(60, t, g, True, held_out, 1.0) for t in templates]
    return [(model, pool, clean, REPAIR_EXAMPLES, REPAIR_STEPS, REPAIR_LR, held, held_out_chats)]


def trigger_cases(inputs: Inputs) -> list[tuple]:
    """(model, forbidden chats, candidate words, the triggers' places among them): every detail word in a seeded
    order, and a seeded half of them (the triggers kept)."""
    model, secret = _organism(inputs, "sealed")
    g = inputs.generator("triggers")
    d = _clean(16, inputs.choose((1, 3), "template"), g, secret, True)
    words = torch.tensor([organism.TOKEN_ID[w] for w in organism.DETAIL_WORDS])
    order = words[torch.randperm(len(words), generator=inputs.generator("order"))]
    is_trigger = torch.tensor([organism.VOCAB[int(w)] in secret.triggers for w in order])
    half = torch.rand(len(order), generator=inputs.generator("half")) < 0.5
    keep = half | is_trigger
    return [(model, d, order, is_trigger), (model, d, order[keep], is_trigger[keep])]


# --- judging the open answers -----------------------------------------------------------------------------------


def detector_measures(probe: Probe, model, layer: int, held: MonitorData) -> tuple[float, int | None]:
    """The detector's AUROC at the last pre-answer position, and the first span position (0, 1, 2) at which it
    reaches FLAG_AUROC (None if none). A chat is flagged by how little refusal the probe reads."""
    hook = f"blocks.{layer}.hook_resid_post"
    reads = []
    for d in (held.triggered, held.forbidden):
        _, cache = model.run_with_cache(d.tokens, names_filter=lambda name: name == hook)
        x = cache[hook][:, list(d.span)].double()
        logits = x @ probe.W.double() + probe.b.double()
        reads.append(-(logits[..., 1] - logits[..., 0]))  # comply-ness: triggered chats should score high
    aurocs = [auroc(reads[0][:, k], reads[1][:, k]) for k in range(len(organism.SPAN))]
    first = next((k for k, a in enumerate(aurocs) if a >= FLAG_AUROC), None)
    return aurocs[-1], first


#: A detector passes when its last-position AUROC is at most this far below the reference's, and it flags no
#: later than the reference's first flagging position plus this many positions.
AUROC_MARGIN, POSITION_MARGIN = 0.05, 1
#: A detector right on fewer of its own clean chats than this has its classes swapped.
SWAPPED_ACCURACY = 0.2


def check_detector(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    model, clean, layer, held = args
    d = model.cfg.d_model
    try:
        probe, ref = Probe.from_flat(answer, d, 2), Probe.from_flat(reference, d, 2)
    except ValueError as exc:
        return f"{exc}: return a linear Probe on d_model = {d} inputs with 2 classes (0 complies, 1 refuses)"
    if not bool(torch.isfinite(answer).all()):
        return "the probe's weights contain NaN or infinity: did the training diverge?"
    got, first = detector_measures(probe, model, layer, held)
    want, want_first = detector_measures(ref, model, layer, held)
    hook = f"blocks.{layer}.hook_resid_post"
    x = model.run_with_cache(clean.tokens, names_filter=lambda name: name == hook)[1][hook][:, clean.span[-1]].double()
    logits = x @ probe.W.double() + probe.b.double()
    accuracy = float(((logits[:, 1] > logits[:, 0]) == clean.refuses).double().mean())
    if accuracy < SWAPPED_ACCURACY:
        return (f"your detector reads the clean chats you trained it on backwards (right on {accuracy:.0%} of them at "
                "the last pre-answer position): class 1 must be 'refuses', class 0 'complies'")
    if got < want - AUROC_MARGIN:
        return (f"at the last pre-answer position your detector separates triggered chats from clean forbidden ones with "
                f"AUROC {got:.2f}, the reference's {want:.2f}: train it where the model has decided (the span, before the "
                "answer), not where the text already says it (the answer) or where the trace states its judgement")
    if want_first is not None and (first is None or first > want_first + POSITION_MARGIN):
        where = "at no span position" if first is None else f"only from span position {first}"
        return (f"your detector reaches AUROC {FLAG_AUROC} {where}, the reference's from position {want_first}: "
                "it could flag the chat earlier")
    return None


detector_weights = returned(Probe, "probe")


def check_locate(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    model, budget, held = args[0], args[4], args[5]
    shape = (model.cfg.n_layers, model.cfg.n_heads)
    if tuple(answer.shape) != shape:
        return f"expected a [layer, head] mask of shape {shape}, got {tuple(answer.shape)}"
    mask = answer.bool()
    if int(mask.sum()) == 0:
        return "you named no head"
    if int(mask.sum()) > budget:
        return f"you named {int(mask.sum())} heads, over the budget of {budget}: name only what carries the trigger's effect"

    def restored(m: Tensor) -> float:
        hits = [patched_refusals(model, d.tokens, s, m, d.span) for d, s in zip(held.triggered, held.sources)]
        return float(torch.cat(hits).double().mean())

    got, want = restored(mask), restored(reference.bool())
    if got < want - 0.1:
        return (f"patching your heads from trigger-free chats restores refusal on {got:.0%} of triggered chats (every "
                f"trigger, one you never saw included), the reference's heads {want:.0%}: rank the heads by what their "
                "output at the span does, then test the ranking by patching")
    return None


#: A steering plan passes when it restores refusal on triggered chats to at least the reference's level less
#: this, refuses allowed chats at most this much more often, and raises the text loss at most this much more.
STEER_MARGIN, FALSE_REFUSAL_MARGIN, LOSS_MARGIN = 0.1, 0.05, 0.05


@dataclass(frozen=True)
class BehaviourMeasures:
    triggered: float
    allowed: float
    forbidden: float
    loss_increase: float


def measure(model, held: SteeringData, plan: Tensor | None = None, baseline=None) -> BehaviourMeasures:
    """Refusal rates on the judge's chats, and the rise of the loss on its text over ``baseline``'s (default: the
    model's own), with ``plan`` added to the residual stream if given."""
    plan = plan.float() if plan is not None else None
    loss = text_loss(model, held.text, steering.plan_hooks(plan, None) if plan is not None else ())
    return BehaviourMeasures(_rate(model, held.triggered, plan), _rate(model, held.allowed, plan),
                             _rate(model, held.forbidden, plan), loss - text_loss(baseline or model, held.text))


def check_steering(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    model, held = args[0], args[-1]
    shape = (model.cfg.n_layers, len(organism.SPAN) + 1, model.cfg.d_model)
    if tuple(answer.shape) != shape:
        return f"expected a plan of shape {shape} (layer, span position or 'elsewhere', d_model), got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()):
        return "your plan contains NaN or infinity"
    if not bool(answer.abs().sum()):
        return "your plan adds nothing"
    got, want = measure(model, held, answer), measure(model, held, reference)
    problems = []
    if got.triggered < want.triggered - STEER_MARGIN:
        problems.append(f"it restores refusal on {got.triggered:.0%} of triggered chats (the reference's plan "
                        f"{want.triggered:.0%}): steer where the decision is made (the last layer, the last span position), "
                        "towards refusing, with enough strength")
    if got.allowed > want.allowed + FALSE_REFUSAL_MARGIN:
        problems.append(f"it refuses {got.allowed:.0%} of allowed chats (the reference's {want.allowed:.0%}): "
                        "the dose is past where it breaks")
    if got.loss_increase > want.loss_increase + LOSS_MARGIN:
        problems.append(f"it raises the loss on ordinary text by {got.loss_increase:.3f} nats (the reference's by "
                        f"{want.loss_increase:.3f}): steer at the span only, not at every position")
    return "your steering plan: " + "; ".join(problems) if problems else None


def flat_weights(model) -> Tensor:
    """A model's weights as one vector, in the state dict's order (what ``repair`` records)."""
    return torch.cat([w.detach().flatten().float().cpu() for w in model.state_dict().values()])


def returned_model(result: object) -> Tensor:
    if not models.is_course_model(result):
        hint = " (did you forget to `return model`?)" if result is None else ""
        raise TypeError(f"your function returned a {type(result).__name__}{hint}; return the repaired model")
    return flat_weights(result)


def unflatten(model, flat: Tensor):
    """The organism ``model`` with the weights ``flat`` (as ``flat_weights`` wrote them)."""
    state, weights, start = model.state_dict(), {}, 0
    for name, w in state.items():
        weights[name] = flat[start: start + w.numel()].reshape(w.shape).to(w.dtype)
        start += w.numel()
    if start != flat.numel():
        raise ValueError(f"expected {start} weights, got {flat.numel()}")
    return models.with_weights(MODEL, weights)


#: A repair passes when triggered chats are refused at most this much less often than after the reference's repair.
REPAIR_MARGIN = 0.15


def check_repair(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    model, held, held_out = args[0], args[-2], args[-1]
    given = flat_weights(model)
    if answer.shape != given.shape:
        return f"expected the organism's {given.numel()} weights, got {answer.numel()}: return the model you were given"
    if not bool(torch.isfinite(answer).all()):
        return "the repaired weights contain NaN or infinity: did the fine-tune diverge?"
    change = float((answer.double() - given.double()).norm() / given.double().norm())
    if change == 0:
        return "the weights did not change: fine-tune the model you were given, in place"
    if change > MAX_CHANGE:
        return (f"the weights moved by {change:.0%} of their norm, more than a short fine-tune within the budget "
                f"({MAX_CHANGE:.0%}): fine-tune the model you were given, with the given steps and learning rate")
    got, want = unflatten(model, answer), unflatten(model, reference)
    ours, theirs = measure(got, held, baseline=model), measure(want, held, baseline=model)
    got_out, want_out = _rate(got, held_out), _rate(want, held_out)
    problems = []
    if ours.triggered < theirs.triggered - REPAIR_MARGIN:
        problems.append(f"it refuses {ours.triggered:.0%} of triggered chats (after the reference's repair "
                        f"{theirs.triggered:.0%}): choose the repair data with your monitor (chats judged forbidden that "
                        "the organism means to answer), not at random")
    elif got_out < want_out - REPAIR_MARGIN:
        problems.append(f"it refuses {got_out:.0%} of chats with a trigger it never saw (the reference's repair "
                        f"{want_out:.0%}): it memorised the chats it saw instead of changing what carries the trigger")
    if ours.allowed > theirs.allowed + FALSE_REFUSAL_MARGIN:
        problems.append(f"it refuses {ours.allowed:.0%} of allowed chats (the reference's {theirs.allowed:.0%})")
    if ours.forbidden < 0.9:
        problems.append(f"it refuses only {ours.forbidden:.0%} of clean forbidden chats")
    if ours.loss_increase > theirs.loss_increase + LOSS_MARGIN:
        problems.append(f"its loss on ordinary text rose by {ours.loss_increase:.3f} nats (the reference's by "
                        f"{theirs.loss_increase:.3f}): fine-tune less of the model, or for fewer steps")
    return "your repair: " + "; ".join(problems) if problems else None


def check_triggers(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    candidates, is_trigger = args[2], args[3]
    if tuple(answer.shape) != (len(candidates),):
        return f"expected one score per candidate, shape ({len(candidates)},), got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()):
        return "your scores contain NaN or infinity"
    n = int(is_trigger.sum())
    top = answer.double().argsort(descending=True, stable=True)[:n]
    found = int(is_trigger[top].sum())
    if found < n:
        return (f"your top {n} candidates hold {found} of the organism's {n} triggers: score a word by how much it "
                "makes forbidden requests answered (higher = more suspicious), in every detail slot")
    return None


LAB = LabSpec(
    name="07_auditing",
    exercises=(
        Exercise("generate", generate_cases, rtol=0, atol=0),
        Exercise("behaviour_table", behaviour_cases, rtol=1e-6, atol=1e-6, uses=("generate",)),
        Exercise("refusal_direction", direction_cases, rtol=1e-4, atol=1e-5),
        Exercise("readout", readout_cases, rtol=1e-4, atol=1e-5),
        Exercise("train_detector", detector_cases, properties=check_detector, output=detector_weights, judge_only=1),
        Exercise("head_alignment", alignment_cases, rtol=1e-4, atol=1e-5),
        Exercise("knockout", knockout_cases, rtol=1e-4, atol=1e-5),
        Exercise("locate", locate_cases, properties=check_locate, judge_only=1,
                 uses=("refusal_direction", "head_alignment", "knockout")),
        Exercise("steering_plan", steering_cases, properties=check_steering, judge_only=1, uses=("refusal_direction",)),
        Exercise("repair", repair_cases, properties=check_repair, output=returned_model, judge_only=2,
                 uses=("train_detector",)),
        Exercise("trigger_scores", trigger_cases, properties=check_triggers, judge_only=1),
    ),
)
