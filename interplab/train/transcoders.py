"""Train the shipped transcoders: one TopK transcoder per MLP layer of tiny-lm, on the corpus's activations.

    python -m interplab.train.transcoders [--out DIR] [--steps N] [--seed S]

Each transcoder reads what its MLP reads (``blocks.L.ln2.hook_normalized``) and predicts what the MLP writes
(``blocks.L.hook_mlp_out``), as Dunefsky, Chlenski & Nanda 2024 train theirs; module 08 builds attribution graphs
from them (Ameisen et al. 2025). The loop is module 04's TopK loop with one change: the target is the MLP's
output, not the input. Choices, and why:

- TopK (Gao et al. 2024) rather than an L1 penalty: the sparsity is set directly (``K`` latents per token), so
  there is no penalty coefficient to tune and no shrinkage of the activations an attribution graph multiplies.
- Unit-norm decoder rows, renormalised after every step: a latent's activation is then the length of what it
  writes, so activations (and the edges an attribution graph reads from them) compare across latents.
- The decoder bias starts at the mean MLP output, so the latents spend themselves on what varies.
- Every position is trained on, BOS included: the replacement model swaps every MLP at every position, and a
  transcoder that never saw BOS's (constant) input would corrupt the attention sink every later token reads.

Quality is measured as the paper does, on held-out corpus documents (seed + 1): the fraction of the MLP output's
variance explained, the language model's loss with every MLP replaced at once (each transcoder reading the
replaced model's own activations) against the clean loss and the loss with every MLP mean-ablated, L0, and dead
(never active) and dense (active on more than ``DENSE`` of tokens) latents. Deterministic: fixed seeds and one
CPU thread give bit-identical weights run to run on one machine.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import TransformerBridge

from interplab.corpus import generate
from interplab.models import load
from interplab.train import progress_bar
from interplab.transcoder import MLP_IN_HOOK, MLP_OUT_HOOK, SHIPPED_TRANSCODERS, Transcoder, mlp_io, rewrite_mlp_hooks

D_TC, K = 512, 12
TRAIN_DOCS, EVAL_DOCS = 3000, 300
BATCH_SIZE, LR, STEPS = 1024, 2e-3, 1500
#: A latent active on more than this share of tokens is "dense" (what Anthropic's updates flag as uninterpretable).
DENSE = 0.1


def train_transcoder(
    x: Float[Tensor, "n d_model"], y: Float[Tensor, "n d_model"], layer: int, steps: int, seed: int,
    d_tc: int = D_TC, k: int = K, progress: bool = True,
) -> Transcoder:
    """Adam on the summed squared error of the predicted MLP output, over random batches of tokens."""
    generator = torch.Generator().manual_seed(seed * 1000 + layer)
    tc = Transcoder.init(x.shape[1], d_tc, k=k, layer=layer, generator=generator)
    with torch.no_grad():
        tc.b_dec.copy_(y.mean(0))
    optimizer = torch.optim.Adam(tc.parameters(), lr=LR)
    bar = progress_bar(range(steps), f"transcoder, layer {layer}", show=progress)
    for _ in bar:
        batch = torch.randint(len(x), (min(BATCH_SIZE, len(x)),), generator=generator)
        loss = ((tc(x[batch]) - y[batch]) ** 2).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            tc.W_dec /= tc.W_dec.norm(dim=1, keepdim=True)
    return tc.requires_grad_(False)


def replaced_loss(
    model: TransformerBridge, tokens: Int[Tensor, "doc pos"],
    replace: Callable[[int, Float[Tensor, "doc pos d_model"]], Float[Tensor, "doc pos d_model"]],
) -> float:
    """The LM's mean next-token loss with every MLP's output replaced by ``replace(layer, mlp_input)``; each
    layer reads the *replaced* model's input, so errors compound as they would in a full replacement."""
    hooks = rewrite_mlp_hooks(range(model.cfg.n_layers), lambda layer, x, out: replace(layer, x))
    with torch.no_grad():
        return model.run_with_hooks(tokens, return_type="loss", fwd_hooks=hooks).item()


@torch.no_grad()
def evaluate(
    model: TransformerBridge, transcoders: list[Transcoder], tokens: Int[Tensor, "doc pos"],
    mean_out: list[Float[Tensor, " d_model"]],
) -> dict:
    """The paper's quality measures on ``tokens``; ``mean_out`` is each MLP's mean output on training tokens."""
    layers = []
    for tc in transcoders:
        x, y = mlp_io(model, tokens, tc.layer)
        z = tc.encode(x)
        active = (z > 0).float()
        frequency = active.mean(0)
        layers.append(dict(
            layer=tc.layer,
            variance_explained=round(1 - ((tc.decode(z) - y) ** 2).sum().item() / ((y - y.mean(0)) ** 2).sum().item(),
                                     4),
            l0=round(active.sum(1).mean().item(), 3),
            dead=int((frequency == 0).sum()), dense=int((frequency > DENSE).sum()),
        ))
    clean = model(tokens, return_type="loss").item()
    replaced = replaced_loss(model, tokens, lambda layer, x: transcoders[layer](x))
    ablated = replaced_loss(model, tokens, lambda layer, x: mean_out[layer].expand_as(x))
    return dict(layers=layers, loss=dict(
        clean=round(clean, 4), replaced=round(replaced, 4), mean_ablated=round(ablated, 4),
        recovered=round((ablated - replaced) / (ablated - clean), 4)))


def train(steps: int = STEPS, seed: int = 0, train_docs: int = TRAIN_DOCS, eval_docs: int = EVAL_DOCS,
          d_tc: int = D_TC, k: int = K, progress: bool = True) -> tuple[list[Transcoder], dict]:
    """Train one transcoder per layer of tiny-lm; return them and the training log."""
    start = time.perf_counter()
    model = load("tiny-lm", device="cpu")
    tokens, held_out = generate(train_docs, seed).tokens, generate(eval_docs, seed + 1).tokens
    transcoders, mean_out = [], []
    for layer in range(model.cfg.n_layers):
        x, y = mlp_io(model, tokens, layer)
        mean_out.append(y.mean(0))
        transcoders.append(train_transcoder(x, y, layer, steps, seed, d_tc, k, progress))
    train_s = time.perf_counter() - start
    metrics = evaluate(model, transcoders, held_out, mean_out)
    return transcoders, dict(
        model="tiny-lm", n_layers=model.cfg.n_layers, d_tc=d_tc, k=k, seed=seed, steps=steps, batch_size=BATCH_SIZE,
        lr=LR, train=dict(docs=train_docs, seed=seed), held_out=dict(docs=eval_docs, seed=seed + 1), dense=DENSE,
        hooks=dict(mlp_in=MLP_IN_HOOK, mlp_out=MLP_OUT_HOOK), wall_time_s=round(time.perf_counter() - start, 1),
        train_time_s=round(train_s, 1), **metrics,
    )


def save(transcoders: list[Transcoder], log: dict, out: Path) -> None:
    """Write ``layer{L}.safetensors`` per transcoder, ``config.json`` and ``training_log.json``."""
    for tc in transcoders:
        tc.save(out / f"layer{tc.layer}.safetensors")
    config = {key: log[key] for key in ("model", "n_layers", "d_tc", "k", "hooks")}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_TRANSCODERS["tiny-lm"], help="output folder")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    transcoders, log = train(args.steps, args.seed)
    save(transcoders, log, args.out)
    for row in log["layers"]:
        print(f"layer {row['layer']}: variance explained {row['variance_explained']:.3f}, L0 {row['l0']:.1f}, "
              f"dead {row['dead']}, dense {row['dense']} of {log['d_tc']}")
    loss = log["loss"]
    print(f"loss: clean {loss['clean']:.3f}, every MLP replaced {loss['replaced']:.3f}, mean-ablated "
          f"{loss['mean_ablated']:.3f} ({loss['recovered']:.1%} recovered); {log['wall_time_s']} s")
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
