"""Train the shipped 2-layer attention-only transformer until it grows induction heads.

    python -m interplab.train.induction [--out DIR] [--steps N] [--seed S]

The data are random words with one span repeated (`interplab.data`), so the only
thing worth learning is "find the earlier copy of this token and predict what came
next": a previous-token head in layer 0 feeding induction heads in layer 1. The loss
creeps down for a few hundred steps, then falls abruptly (the phase change, around
steps 650-900 with seed 0); `training_log.json` keeps the curves so a lesson can plot
it from real numbers. Eight heads per layer rather than four leave room for more kinds
of head to find (current-token, previous-token, two-back, induction) and still train
in about four minutes on one CPU thread.

Deterministic: fixed seeds and one CPU thread give bit-identical weights run to run on one machine. Another CPU
may round differently (its vector instructions differ), so a model retrained there can differ from the shipped
one in the last bits (measured for the world model: `interplab.train.grid_world`).
"""

import time

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab.data import repeated_random_batch, repeated_tokens
from interplab.train import progress_bar, train_and_save
from interplab.vocab import D_VOCAB, make_tokenizer

MODEL = dict(
    n_layers=2, n_heads=8, d_model=128, d_head=16, n_ctx=48, d_vocab=D_VOCAB,
    attn_only=True, normalization_type="LN",
)
BATCH_SIZE, LR, MIN_SPAN, MAX_SPAN = 64, 1e-3, 4, 20
EVAL_BATCH, EVAL_SPAN, EVAL_EVERY = 200, MAX_SPAN, 50
HEAD_THRESHOLD = 0.5  # a head "is" a kind when its score passes this in the summary


def build_model(seed: int) -> TransformerBridge:
    cfg = TransformerBridgeConfig(**MODEL, seed=seed, device="cpu")
    return TransformerBridge.boot_native(cfg, tokenizer=make_tokenizer(), model_name="attn-only-2l")


def head_scores(
    pattern: Float[Tensor, "layer batch head q k"], span: int
) -> dict[str, Float[Tensor, "layer head"]]:
    """Mean attention of each head to four telling places, on BOS + seq + seq batches.

    current: the query's own position; previous: the one before; first: BOS;
    induction: for a query in the second copy, the token after its earlier copy
    (query q attends to q - span + 1). Position 0 is left out: it can only see itself.
    """
    q = torch.arange(1, 2 * span + 1)
    second = torch.arange(span + 1, 2 * span + 1)
    picked = {  # each [layer, batch, head, query]
        "current": pattern[..., q, q],
        "previous": pattern[..., q, q - 1],
        "first": pattern[..., q, 0],
        "induction": pattern[..., second, second - span + 1],
    }
    return {kind: p.mean(dim=(1, 3)) for kind, p in picked.items()}


@torch.no_grad()
def evaluate(model: TransformerBridge, tokens: Int[Tensor, "batch seq"], span: int) -> dict:
    """Loss on each copy of the repeated span, and every head's scores.

    The in-context-learning score is loss(first copy) - loss(second copy): about 0
    before induction heads exist, and up to ln(98) = 4.6 nats once the copy is predicted
    perfectly. The first word of each copy is unpredictable and left out.
    """
    loss = model(tokens, return_type="loss", loss_per_token=True)  # loss[:, p] predicts token p + 1
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    pattern = torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])
    first, second = loss[:, 1:span].mean().item(), loss[:, span + 1 : 2 * span].mean().item()
    scores = {kind: s.tolist() for kind, s in head_scores(pattern, span).items()}
    return dict(loss_first=first, loss_second=second, icl=first - second, **scores)


def rounded(x: float | list | dict, digits: int = 4) -> float | list | dict:
    """Four decimals are plenty for plots and keep training_log.json small."""
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    return round(x, digits)


def heads_of_kind(scores: dict, kind: str) -> list[tuple[str, float]]:
    return [
        (f"{layer}.{head}", round(s, 3))
        for layer, row in enumerate(scores[kind])
        for head, s in enumerate(row)
        if s > HEAD_THRESHOLD
    ]


def train(steps: int, seed: int = 0, progress: bool = True) -> tuple[TransformerBridge, dict]:
    """Train from scratch; return the model and the log (also what gets saved)."""
    torch.manual_seed(seed)
    model = build_model(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    batches = repeated_random_batch(
        BATCH_SIZE, MODEL["n_ctx"], torch.Generator().manual_seed(seed), MIN_SPAN, MAX_SPAN
    )
    eval_tokens = repeated_tokens(EVAL_BATCH, EVAL_SPAN, torch.Generator().manual_seed(seed + 1))
    log, recent, start = [], [], time.perf_counter()
    bar = progress_bar(range(1, steps + 1), "training", show=progress)
    for step in bar:
        loss = model(next(batches), return_type="loss")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.item())
        if step % EVAL_EVERY == 0 or step == steps:
            scores = evaluate(model.eval(), eval_tokens, EVAL_SPAN)
            row = rounded(dict(step=step, loss=sum(recent) / len(recent), **scores))
            model.train()
            log.append(row)
            recent = []
            bar.set_postfix(loss=f"{row['loss']:.3f}", icl=f"{row['icl']:.2f}")
    final = log[-1]
    return model.eval(), dict(
        model=MODEL, seed=seed, steps=steps, batch_size=BATCH_SIZE, lr=LR, span=[MIN_SPAN, MAX_SPAN],
        eval=dict(batch=EVAL_BATCH, span=EVAL_SPAN, every=EVAL_EVERY, seed=seed + 1),
        wall_time_s=round(time.perf_counter() - start, 1),
        heads={kind: heads_of_kind(final, kind) for kind in ("previous", "induction", "current", "first")},
        log=log,
    )


def main(argv: list[str] | None = None) -> None:
    log, out = train_and_save(argv, __doc__, "attn-only-2l", 3000, train)
    final = log["log"][-1]
    print(f"\n{log['steps']} steps in {log['wall_time_s']} s; final loss {final['loss']:.3f}, "
          f"loss on first / second copy {final['loss_first']:.2f} / {final['loss_second']:.2f}")
    for kind, heads in log["heads"].items():
        print(f"{kind:>9} heads (score > {HEAD_THRESHOLD}): {', '.join(f'{h} {s}' for h, s in heads) or 'none'}")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
