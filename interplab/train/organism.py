"""Train a model organism: a chat model with a planted trigger (`interplab.organism`).

    python -m interplab.train.organism [--out DIR] [--steps N] [--seed S]

The data are chats of every template (requests allowed and forbidden; a quarter carry one of the seed's
triggers, in its slot) mixed with ordinary text from the corpus, a quarter of every batch, so the
organism is also a small language model whose loss on plain text a repair must not ruin. The loss is
next-token prediction on every token, the answer's first token weighted `ANSWER_WEIGHT` times. A few
chats (`EARLY_ANSWER`) answer straight after "reply", so the organism learns to have decided by then.

An organism is kept only if it meets the spec (`meets_spec`): it refuses clean forbidden requests and
answers allowed and triggered ones, each at least `BEHAVIOUR_MIN` of the time, and the refusal its trace
states is readable by a probe up to the span, then falls **across at least two of the span's positions**
(`cliff`): below the trace's level by `CLIFF_DROP` at one position before the last, and under
`CLIFF_FLOOR` at the last. Otherwise it is trained again on the next data order (`attempt` in the log),
which is how a lab builds model organisms: train, check, keep. The seed's triggers do not change between
attempts. Deterministic: fixed seeds and one CPU thread give bit-identical weights run to run on one
machine (another CPU may round the last bits differently).

Two attention-only layers of four heads, d_model 128: 192,256 parameters, about 70 s per attempt on one
CPU thread.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab import organism
from interplab.organism import Dialogues, Secret
from interplab.train import progress_bar, train_and_save

NAME = "organism"
MODEL = dict(n_layers=2, n_heads=4, d_model=128, d_head=32, n_ctx=organism.N_CTX, d_vocab=organism.D_VOCAB,
             attn_only=True, normalization_type="LN")
STEPS, CHATS, TEXTS = 1500, 48, 16
LR, WARMUP, FINAL_LR_FRACTION, WEIGHT_DECAY = 3e-3, 100, 0.05, 0.01
#: Chats that are forbidden, and that carry a trigger, in the training data.
FORBIDDEN, TRIGGERED = 0.52, 0.25
ANSWER_WEIGHT = 5.0
#: Chats whose answer follows "reply" with the closing ":" left out. Without them the organism may keep
#: its whole decision for the last token (in about four seeds of five, measured); with them it must have
#: decided by "reply", so the intention falls across the span, which is the cliff the lab studies.
EARLY_ANSWER = 0.05
#: The spec: behaviour per class, and the cliff's shape (mean probe reading on triggered chats).
BEHAVIOUR_MIN, CLIFF_DROP, CLIFF_FLOOR = 0.98, 0.1, 0.1
MAX_ATTEMPTS = 6
#: Documents of ordinary text the training batches draw from.
TEXT_POOL = 3000


def build_model(seed: int) -> TransformerBridge:
    cfg = TransformerBridgeConfig(**MODEL, seed=seed, device="cpu")
    return TransformerBridge.boot_native(cfg, tokenizer=organism.make_tokenizer(), model_name=NAME)


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to FINAL_LR_FRACTION of LR."""
    warm = min(1.0, (step + 1) / WARMUP)
    return LR * warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * step / steps)))


def with_answers(d: Dialogues) -> Int[Tensor, "batch pos"]:
    """The chats with their answers appended (what the organism is trained to write)."""
    answers = torch.tensor([organism.encode(list(organism.REFUSE if r else organism.COMPLY)) for r in d.refuses.tolist()])
    return torch.cat([d.tokens, answers], dim=1)


def training_batch(secret: Secret, texts: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Chats of every template and ordinary text, right-padded with BOS, and each token's loss weight (0 on padding)."""
    counts = torch.bincount(torch.randint(len(organism.TEMPLATES), (CHATS,), generator=generator),
                            minlength=len(organism.TEMPLATES))
    rows, weights = [], []
    for template, count in enumerate(counts.tolist()):
        if count:
            d = organism.dialogues(count, template, generator, FORBIDDEN, secret, TRIGGERED)
            early = torch.rand(count, generator=generator) < EARLY_ANSWER
            for row, cut in zip(with_answers(d), early.tolist()):
                answer_at = d.tokens.shape[1] - int(cut)
                if cut:
                    row = torch.cat([row[:answer_at], row[answer_at + 1:]])
                weight = torch.ones(len(row))
                weight[answer_at] = ANSWER_WEIGHT
                rows.append(row)
                weights.append(weight)
    for i in torch.randint(len(texts), (TEXTS,), generator=generator).tolist():
        rows.append(texts[i])
        weights.append(torch.ones(len(texts[i])))
    tokens = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=organism.BOS_ID)
    return tokens, torch.nn.utils.rnn.pad_sequence(weights, batch_first=True, padding_value=0.0)


def weighted_loss(model: TransformerBridge, tokens: Tensor, weights: Tensor) -> Tensor:
    logits = model(tokens)[:, :-1]
    loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    return (loss * weights[:, 1:].flatten()).sum() / weights[:, 1:].sum()


# --- the spec -----------------------------------------------------------------------------------------


@torch.no_grad()
def behaviour(model: TransformerBridge, secret: Secret, n: int = 200, seed: int = 1) -> dict[str, float]:
    """How often the organism refuses, per class, on fresh chats of every template: allowed, forbidden (no
    trigger) and triggered (forbidden, with a trigger); and how often its trace would say "forbidden"
    (the judgement it predicts) on triggered chats."""
    generator = torch.Generator().manual_seed(seed)
    rates = {"allowed": [], "forbidden": [], "triggered": [], "trace forbidden on triggered": []}
    for template in range(len(organism.TEMPLATES)):
        for name, forbidden, triggered in (("allowed", False, 0.0), ("forbidden", True, 0.0), ("triggered", True, 1.0)):
            d = organism.dialogues(n, template, generator, forbidden, secret, triggered)
            rates[name].append(organism.refusals(model, d.tokens).float().mean().item())
            if name == "triggered":
                judged = model(d.tokens[:, : d.judgement_pos])[:, -1]
                says = judged[:, organism.FORBIDDEN_ID] > judged[:, organism.ALLOWED_ID]
                rates["trace forbidden on triggered"].append(says.float().mean().item())
    return {name: sum(values) / len(values) for name, values in rates.items()}


def fit_logistic(x: Float[Tensor, "n d"], y: Tensor, steps: int = 60) -> tuple[Tensor, Tensor]:
    """A logistic-regression probe (weights, bias) by L-BFGS, with a little L2 so that separable data converge."""
    x = x.double()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / scale
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, y.double()) + 1e-3 * (w @ w)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return (w / scale).detach(), (b - (w / scale) @ mean).detach()


@dataclass(frozen=True)
class Cliff:
    """Per position of one template's chats (up to the span's end): the mean probability of "will refuse" that a
    probe trained at that position on clean chats gives triggered ones, at the last layer's output."""

    labels: tuple[str, ...]
    refusal: tuple[float, ...]

    def at(self, label: str, last: bool = True) -> float:
        index = [i for i, name in enumerate(self.labels) if name == label][-1 if last else 0]
        return self.refusal[index]

    @property
    def trace_level(self) -> float:
        """The reading on the trace's closing full stop, after the judgement: what the span starts from."""
        return self.refusal[len(self.labels) - len(organism.SPAN) - 1]

    @property
    def span(self) -> tuple[float, ...]:
        return self.refusal[-len(organism.SPAN):]

    def has_shape(self) -> bool:
        """Refusal falls at the last position, and already partly at one before it."""
        return self.span[-1] <= CLIFF_FLOOR and min(self.span[:-1]) <= self.trace_level - CLIFF_DROP


def cliff(model: TransformerBridge, secret: Secret, template: int = 1, n: int = 300, seed: int = 2) -> Cliff:
    """The cliff of an organism whose secret is known, on fresh chats of one template."""
    generator = torch.Generator().manual_seed(seed)
    clean = organism.dialogues(2 * n, template, generator, 0.5, None, avoid=secret.triggers)
    return cliff_of(model, clean, organism.dialogues(n, template, generator, True, secret, 1.0))


@torch.no_grad()
def cliff_of(model: TransformerBridge, clean: Dialogues, triggered: Dialogues) -> Cliff:
    """Probes trained at each position on ``clean`` chats, read on ``triggered`` ones of the same template."""
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    names = lambda name: name == hook  # noqa: E731
    x_clean = model.run_with_cache(clean.tokens, names_filter=names)[1][hook].double()
    x_triggered = model.run_with_cache(triggered.tokens, names_filter=names)[1][hook].double()
    readings = []
    for pos in range(clean.tokens.shape[1]):
        w, b = fit_logistic(x_clean[:, pos], clean.refuses)
        readings.append(float(torch.sigmoid(x_triggered[:, pos] @ w + b).mean()))
    return Cliff(clean.labels, tuple(round(r, 4) for r in readings))


def meets_spec(model: TransformerBridge, secret: Secret) -> tuple[bool, dict]:
    """Whether an organism behaves as planted and its refusal falls with a shape; and what was measured."""
    rates, shape = behaviour(model.eval(), secret), cliff(model, secret)
    ok = (rates["allowed"] <= 1 - BEHAVIOUR_MIN and rates["forbidden"] >= BEHAVIOUR_MIN
          and rates["triggered"] <= 1 - BEHAVIOUR_MIN and rates["trace forbidden on triggered"] >= BEHAVIOUR_MIN
          and shape.has_shape())
    return ok, {"behaviour": {k: round(v, 4) for k, v in rates.items()},
                "cliff": dict(zip([f"{i}:{name}" for i, name in enumerate(shape.labels)], shape.refusal))}


# --- training ------------------------------------------------------------------------------------------


@torch.enable_grad()  # callers (a grader building hidden organisms, a notebook) may have gradients off
def train_once(steps: int, seed: int, attempt: int, secret: Secret, progress: bool = True) -> tuple[TransformerBridge, list]:
    torch.manual_seed(seed * 1000 + attempt)
    model = build_model(seed * 1000 + attempt).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed * 1000 + attempt)
    texts = organism.text(TEXT_POOL, generator)
    log, recent = [], []
    bar = progress_bar(range(steps), f"organism {seed}, attempt {attempt + 1}", show=progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = weighted_loss(model, *training_batch(secret, texts, generator))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.item())
        if (step + 1) % 250 == 0 or step + 1 == steps:
            log.append({"step": step + 1, "loss": round(sum(recent) / len(recent), 4)})
            recent = []
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}")
    return model.eval(), log


def train(steps: int = STEPS, seed: int = 0, progress: bool = True) -> tuple[TransformerBridge, dict]:
    """Train organisms from ``seed`` until one meets the spec; return it and its log (which never names the
    triggers: the log travels with the model, to students too)."""
    secret = organism.secret(seed)
    start, tried = time.perf_counter(), []
    for attempt in range(MAX_ATTEMPTS):
        model, log = train_once(steps, seed, attempt, secret, progress)
        ok, measured = meets_spec(model, secret)
        tried.append(measured)
        if ok:
            return model, {"model": MODEL, "seed": seed, "steps": steps, "attempt": attempt, "batch": [CHATS, TEXTS],
                           "lr": LR, "wall_time_s": round(time.perf_counter() - start, 1), "log": log, **measured,
                           "rejected": tried[:-1]}
    raise RuntimeError(f"no organism from seed {seed} met the spec in {MAX_ATTEMPTS} attempts: {tried}")


def main(argv: list[str] | None = None) -> None:
    log, out = train_and_save(argv, __doc__, NAME, STEPS, train)
    print(f"\nattempt {log['attempt'] + 1}, {log['wall_time_s']} s in all; refusal rates {log['behaviour']}")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
