"""Train the shipped world model: a 3-layer transformer that predicts two walkers' moves on a grid.

    python -m interplab.train.grid_world [--out DIR] [--steps N] [--seed S]

The data are `interplab.world`'s walks: two walkers take turns on a 5 × 5 grid, each move uniform
among the moves that keep the walker on the grid. No token says where anyone stands, yet the next
move depends on it, so a model that predicts well must track the state: module 05 probes for it
and edits it.

Each step sees fresh walks (seed `--seed`); the loss is watched on held-out walks (seed + 1)
against its floor, the entropy of the true next-move distribution, and so is the probability the
model gives to moves that are illegal for the walker about to move. After training, a linear probe
per layer for the cell of each walker, in both frames (by name: A and B; by turn: the walker to move
next and the one who just moved), for the trained model and a randomly initialised twin, records
where the state is linearly readable. `training_log.json` keeps all of it.

With seed 0 the held-out loss ends 0.002 nats above its floor, with 0.07% of the probability on illegal
moves; by turn, the next walker's cell is linearly readable (97%) after block 0, by name only about half the
time. `benchmarks/grid_world_training.py` measures how long training takes on your machine.

Deterministic: fixed seeds and one CPU thread give bit-identical weights run to run on one machine. Another CPU
may round differently (its vector instructions differ): retrained on an AVX-512 machine, the world model's
weights differed in the last bits and its final held-out loss in the fifth decimal (1.20815 against 1.20811).
"""

from __future__ import annotations

import math
import time

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm import tqdm
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab import world
from interplab.train import train_and_save

MODEL = dict(
    n_layers=3, n_heads=4, d_model=64, d_head=16, d_mlp=256, n_ctx=world.SEQ_LEN, d_vocab=world.D_VOCAB,
    act_fn="gelu_new", normalization_type="LN",
)
STEPS, BATCH_SIZE, LR, WARMUP, FINAL_LR_FRACTION, WEIGHT_DECAY = 800, 64, 3e-3, 50, 0.1, 0.01
EVAL_WALKS, EVAL_EVERY = 512, 50
PROBE_TRAIN_WALKS, PROBE_TEST_WALKS, PROBE_STEPS = 300, 200, 200


def build_model(seed: int) -> TransformerBridge:
    cfg = TransformerBridgeConfig(**MODEL, seed=seed, device="cpu")
    return TransformerBridge.boot_native(cfg, tokenizer=world.make_tokenizer(), model_name="grid-world")


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to FINAL_LR_FRACTION of LR."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return LR * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def mover_cells(walks: world.Walks) -> Int[Tensor, "walk pos 2"]:
    """The state by turn: the cells of the walker to move next (0) and of the one who just moved (1)."""
    order = torch.stack([walks.next_walker(), 1 - walks.next_walker()], dim=-1)  # [pos, 2]
    return walks.cells.gather(2, order.expand(len(walks.tokens), -1, -1))


@torch.no_grad()
def evaluate(model: TransformerBridge, walks: world.Walks) -> dict[str, float]:
    """Held-out loss, its floor (the true distribution's entropy) and the mass put on illegal moves.

    Position p predicts token p + 1, a move of the walker to move next from where it stands.
    """
    truth = world.move_distribution(mover_cells(walks)[:, :-1, 0])  # [walk, pos, move]
    logits = model(walks.tokens)[:, :-1]
    log_probs = logits.log_softmax(-1)[..., world.FIRST_MOVE_ID:]
    loss = -log_probs.gather(-1, (walks.tokens[:, 1:] - world.FIRST_MOVE_ID)[..., None]).mean()
    entropy = -(truth * truth.clamp_min(1e-12).log()).sum(-1).mean()
    illegal = (log_probs.exp() * (truth == 0)).sum(-1).mean()
    return dict(held_out=loss.item(), floor=entropy.item(), illegal_mass=illegal.item())


def train(steps: int, seed: int = 0, progress: bool = True) -> tuple[TransformerBridge, dict]:
    """Train from scratch; return the model and the log (also what gets saved)."""
    torch.manual_seed(seed)
    model = build_model(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    data = torch.Generator().manual_seed(seed)
    held_out = world.generate(EVAL_WALKS, seed + 1)
    log, recent, start = [], [], time.perf_counter()
    bar = tqdm(range(steps), disable=not progress, desc="training")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = model(world.generate(BATCH_SIZE, data).tokens, return_type="loss")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.item())
        if (step + 1) % EVAL_EVERY == 0 or step + 1 == steps:
            row = dict(step=step + 1, loss=sum(recent) / len(recent), **evaluate(model.eval(), held_out))
            model.train()
            log.append({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()})
            recent = []
            bar.set_postfix(held_out=f"{row['held_out']:.3f}", floor=f"{row['floor']:.3f}",
                            illegal=f"{row['illegal_mass']:.4f}")
    return model.eval(), dict(
        model=MODEL, seed=seed, steps=steps, batch_size=BATCH_SIZE, lr=LR, warmup=WARMUP,
        final_lr_fraction=FINAL_LR_FRACTION, weight_decay=WEIGHT_DECAY,
        eval=dict(walks=EVAL_WALKS, every=EVAL_EVERY, seed=seed + 1),
        wall_time_s=round(time.perf_counter() - start, 1), log=log,
    )


@torch.no_grad()
def residuals(model: TransformerBridge, tokens: Int[Tensor, "walk pos"]) -> Float[Tensor, "layer walk pos d"]:
    """The residual stream before layer 0 and after every layer (n_layers + 1 of them)."""
    hooks = ["blocks.0.hook_resid_pre", *(f"blocks.{l}.hook_resid_post" for l in range(model.cfg.n_layers))]
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in hooks)
    return torch.stack([cache[h] for h in hooks])


def softmax_probe_accuracy(
    train_x: Float[Tensor, "n d"], train_y: Int[Tensor, " n"], test_x: Float[Tensor, "m d"], test_y: Int[Tensor, " m"],
    n_classes: int,
) -> float:
    """Held-out accuracy of a multinomial logistic regression (standardised inputs, full-batch Adam)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weight = torch.zeros(train_x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    with torch.enable_grad():
        for _ in range(PROBE_STEPS):
            loss = torch.nn.functional.cross_entropy(train_x @ weight + bias, train_y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return ((test_x @ weight + bias).argmax(-1) == test_y).float().mean().item()


def probe_table(trained: TransformerBridge, untrained: TransformerBridge, seed: int) -> dict:
    """Probe accuracy per layer for each walker's cell, by name and by turn, for both models.

    Position 0 (BOS, where the state is the fixed start) is left out.
    """
    train_walks, test_walks = world.generate(PROBE_TRAIN_WALKS, seed + 2), world.generate(PROBE_TEST_WALKS, seed + 3)
    frames = {
        "A": lambda w: w.cells[:, 1:, 0], "B": lambda w: w.cells[:, 1:, 1],
        "next": lambda w: mover_cells(w)[:, 1:, 0], "last": lambda w: mover_cells(w)[:, 1:, 1],
    }
    table = {}
    for name, model in (("trained", trained), ("random init", untrained)):
        acts = [residuals(model, w.tokens)[:, :, 1:].flatten(1, 2) for w in (train_walks, test_walks)]
        table[name] = {
            frame: [round(softmax_probe_accuracy(acts[0][layer], cells(train_walks).flatten(),
                                                 acts[1][layer], cells(test_walks).flatten(), world.N_CELLS), 4)
                    for layer in range(len(acts[0]))]
            for frame, cells in frames.items()
        }
    return dict(walks=dict(train=PROBE_TRAIN_WALKS, test=PROBE_TEST_WALKS, seeds=[seed + 2, seed + 3]),
                layers=["embed", *(f"after layer {l}" for l in range(trained.cfg.n_layers))], accuracy=table)


def main(argv: list[str] | None = None) -> None:
    log, out = train_and_save(argv, __doc__, "grid-world", STEPS, train, probe_table, build_model)
    final = log["log"][-1]
    print(f"\n{log['steps']} steps in {log['wall_time_s']} s; held-out loss {final['held_out']:.4f} nats "
          f"(floor {final['floor']:.4f}), probability on illegal moves {final['illegal_mass']:.4f}")
    print(f"{'probe accuracy, cell of':<24} " + " ".join(f"{layer:>14}" for layer in log["probes"]["layers"]))
    for name, frames in log["probes"]["accuracy"].items():
        for frame, row in frames.items():
            print(f"{frame + ' (' + name + ')':<24} " + " ".join(f"{a:>14.3f}" for a in row))
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
