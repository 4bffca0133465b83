"""Model organisms from several seeds: how long each took, whether it behaves as planted, the shape of its
cliff, and which heads carry its trigger.

    python benchmarks/organisms.py                 # seeds 0 (the practice organism's) to 5
    python benchmarks/organisms.py --seeds 0 7 11

Each seed is trained by `interplab.train.organism.train` (the spec checked, retried on the next data order
if missed), two at a time on one thread each. For every organism it prints the refusal rates per class, the
last layer's probe reading of refusal on triggered chats across the span (``cliff``), and per head the share of
triggered chats refused once that head alone is patched at the span from trigger-free chats
(`interplab.exercises.auditing.trigger_effects`); for the head with the largest effect, what zero- and
mean-ablating it does instead. The mechanism may differ by seed: this is where to see it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import torch


def trained(seed: int) -> tuple[dict, dict]:
    """One organism's weights and training log, trained in this worker on one thread."""
    torch.set_num_threads(1)
    from interplab.train.organism import train

    model, log = train(seed=seed, progress=False)
    return model.state_dict(), log


def ablated_refusals(model, layer: int, head: int, secret, value: str) -> tuple[float, float]:
    """Refusal rates (triggered, allowed) with one head's output zeroed or set to its mean over clean chats."""
    from interplab import organism

    g = torch.Generator().manual_seed(3)
    clean = organism.dialogues(200, 1, g, 0.5, avoid=secret.triggers)
    mean = model.run_with_cache(clean.tokens)[1]["z", layer][:, :, head].mean(0)

    def ablate(z, hook):
        z[:, :, head] = 0.0 if value == "zero" else mean
        return z

    hooks = [(f"blocks.{layer}.attn.hook_z", ablate)]
    triggered = organism.dialogues(100, 1, g, True, secret, 1.0)
    allowed = organism.dialogues(100, 1, g, False, avoid=secret.triggers)
    return tuple(organism.refusals(model, d.tokens, hooks).float().mean().item() for d in (triggered, allowed))


def report(seed: int, weights: dict, log: dict) -> None:
    from interplab import models, organism
    from interplab.exercises.auditing import MODEL, trigger_effects

    model, secret = models.with_weights(MODEL, weights), organism.secret(seed)
    cliff = log["cliff"]
    span = [f"{name.split(':', 1)[1]} {value:.2f}" for name, value in list(cliff.items())[-len(organism.SPAN) - 1:]]
    effects = trigger_effects(model, secret)
    top = max(effects, key=effects.get)
    print(f"\nseed {seed}: triggers {secret.triggers} in the {secret.slot!r} slot; attempt {log['attempt'] + 1}, "
          f"{log['wall_time_s']} s")
    print("  refused:", ", ".join(f"{k} {v:.0%}" for k, v in log["behaviour"].items()))
    print("  probe reading on triggered chats, trace's full stop then span:", ", ".join(span))
    print("  triggered refused when one head is patched from trigger-free chats:",
          ", ".join(f"{l}.{h} {e:.0%}" for (l, h), e in effects.items()))
    for value in ("zero", "mean"):
        t, a = ablated_refusals(model, *top, secret, value)
        print(f"  head {top[0]}.{top[1]} {value}-ablated instead: triggered refused {t:.0%}, allowed refused {a:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(1)
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for seed, (weights, log) in zip(args.seeds, pool.map(trained, args.seeds)):
            report(seed, weights, log)


if __name__ == "__main__":
    main()
