"""Train the shipped IOI model: a small attention-only transformer on the synthetic IOI task.

    python -m interplab.train.ioi [--out DIR] [--steps N] [--seed S]

The data are clean IOI prompts (`interplab.ioi`), every template and both name orders,
followed by their answer; the model learns next-token prediction on every position, so the
templates cost it nothing and the interesting prediction is the last one: which of the
first clause's two names is the indirect object. `training_log.json` keeps the loss, the
accuracy and the mean logit difference IO - S on held-out prompts of every template.

Three attention-only layers of four heads leave room for a circuit with parts to find. With
seed 0, 800 steps took 144-182 s on one CPU thread of a shared, loaded machine; accuracy on
held-out prompts passes 99% by step 300 and the final mean logit difference is 6.54. What the
model learns is not GPT-2's circuit: in every template S2 is also the last name before the
end, so it copies the first clause's names and suppresses the last name (lesson 06 shows it).

Deterministic: fixed seeds and one CPU thread give bit-identical weights run to run on one machine. Another CPU
may round differently (its vector instructions differ), so a model retrained there can differ from the shipped
one in the last bits (measured for the world model: `interplab.train.grid_world`).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Int
from torch import Tensor
from tqdm import tqdm
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab import ioi
from interplab.train import train_and_save

MODEL = dict(
    n_layers=3, n_heads=4, d_model=64, d_head=16, n_ctx=24, d_vocab=ioi.D_VOCAB,
    attn_only=True, normalization_type="LN",
)
BATCH_SIZE, LR, WARMUP, FINAL_LR_FRACTION = 64, 3e-3, 100, 0.05
EVAL_PROMPTS, EVAL_EVERY = 64, 100


def build_model(seed: int) -> TransformerBridge:
    cfg = TransformerBridgeConfig(**MODEL, seed=seed, device="cpu")
    return TransformerBridge.boot_native(cfg, tokenizer=ioi.make_tokenizer(), model_name="ioi-3l")


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to FINAL_LR_FRACTION of LR."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return LR * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def training_batch(generator: torch.Generator) -> tuple[Int[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Clean prompts of random templates followed by their answers, right-padded with BOS, and
    the mask of the tokens to predict (every real token but the first)."""
    counts = torch.bincount(torch.randint(len(ioi.TEMPLATES), (BATCH_SIZE,), generator=generator),
                            minlength=len(ioi.TEMPLATES))
    rows = []
    for template, count in enumerate(counts.tolist()):
        if count:
            p = ioi.prompts(count, template, generator)
            rows += list(torch.cat([p.clean, p.io[:, None]], dim=1))
    tokens = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=ioi.BOS_ID)
    lengths = torch.tensor([len(r) for r in rows])
    mask = (torch.arange(tokens.shape[1]) < lengths[:, None]) & (torch.arange(tokens.shape[1]) > 0)
    return tokens, mask


def loss_on(model: TransformerBridge, tokens: Tensor, mask: Tensor) -> Tensor:
    logits = model(tokens)[:, :-1]
    loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    return (loss * mask[:, 1:].flatten()).sum() / mask[:, 1:].sum()


@torch.no_grad()
def evaluate(model: TransformerBridge, generator_seed: int) -> dict:
    """Accuracy (IO ranked first among all tokens) and mean logit difference IO - S, per template."""
    per_template = []
    generator = torch.Generator().manual_seed(generator_seed)
    for template in range(len(ioi.TEMPLATES)):
        p = ioi.prompts(EVAL_PROMPTS, template, generator)
        logits = model(p.clean)[:, -1]
        corrupted = model(p.corrupted)[:, -1]
        rows = torch.arange(len(p))
        diff = logits[rows, p.io] - logits[rows, p.s]
        per_template.append(dict(
            accuracy=(logits.argmax(-1) == p.io).float().mean().item(),
            logit_diff=diff.mean().item(),
            corrupted_logit_diff=(corrupted[rows, p.io] - corrupted[rows, p.s]).mean().item(),
        ))
    return dict(
        accuracy=sum(t["accuracy"] for t in per_template) / len(per_template),
        logit_diff=sum(t["logit_diff"] for t in per_template) / len(per_template),
        per_template=per_template,
    )


def rounded(x, digits: int = 4):
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    return round(x, digits) if isinstance(x, float) else x


def train(steps: int, seed: int = 0, progress: bool = True) -> tuple[TransformerBridge, dict]:
    """Train from scratch; return the model and the log (also what gets saved)."""
    torch.manual_seed(seed)
    model = build_model(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    log, recent, start = [], [], time.perf_counter()
    bar = tqdm(range(steps), disable=not progress, desc="training")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = loss_on(model, *training_batch(generator))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.item())
        if (step + 1) % EVAL_EVERY == 0 or step + 1 == steps:
            scores = evaluate(model.eval(), seed + 1)
            model.train()
            log.append(rounded(dict(step=step + 1, loss=sum(recent) / len(recent), **scores)))
            recent = []
            bar.set_postfix(loss=f"{log[-1]['loss']:.3f}", acc=f"{scores['accuracy']:.3f}",
                            ld=f"{scores['logit_diff']:.2f}")
    return model.eval(), dict(
        model=MODEL, seed=seed, steps=steps, batch_size=BATCH_SIZE, lr=LR, warmup=WARMUP,
        final_lr_fraction=FINAL_LR_FRACTION, eval=dict(prompts_per_template=EVAL_PROMPTS, every=EVAL_EVERY,
                                                       seed=seed + 1),
        wall_time_s=round(time.perf_counter() - start, 1), log=log,
    )


def main(argv: list[str] | None = None) -> None:
    log, out = train_and_save(argv, __doc__, "ioi-3l", 800, train)
    final = log["log"][-1]
    print(f"\n{log['steps']} steps in {log['wall_time_s']} s; loss {final['loss']:.3f}, "
          f"IOI accuracy {final['accuracy']:.3f}, mean logit difference {final['logit_diff']:.2f}")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
