"""Train the shipped tiny language model: 2 GPT-2-style layers on the synthetic corpus.

    python -m interplab.train.tiny_lm [--out DIR] [--steps N] [--seed S]

Attention and MLP blocks with LayerNorm, like GPT-2 small in miniature, trained on
`interplab.corpus`, whose every token carries ground-truth features (topic, entity type,
part of speech, number, inside a quotation, sentiment). Modules 01 and 04 look for those
features in its residual stream and MLP activations (`blocks.{l}.hook_resid_post`,
`blocks.{l}.mlp.hook_post`) and check what they find against the labels.

Each step sees fresh documents (the corpus with `--seed`), the loss is watched on held-out
documents (seed + 1), and after training a linear probe per feature on each layer's
residual stream, for the trained model and for a randomly initialised twin, records which
features the model has learnt to represent. `training_log.json` keeps the loss curve and the
probe table so lessons can show real numbers. With seed 0, 1200 steps take about 3 minutes
on one CPU thread and reach a held-out loss of 1.68 nats, against 5.32 for uniform guessing
(ln d_vocab) and 4.54 for word frequencies alone. Layer 1's attention matters little (about
0.1 nats when mean-ablated); layer 0's MLP matters most (1.7 -> 5.7 nats when zeroed).

Deterministic: fixed seeds and one CPU thread give bit-identical weights run to run on one machine. Another CPU
may round differently (its vector instructions differ), so a model retrained there can differ from the shipped
one in the last bits (measured for the world model: `interplab.train.grid_world`).
"""

import math
import time

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab.corpus import D_VOCAB, FEATURES, SEQ_LEN, Corpus, generate, make_tokenizer
from interplab.train import progress_bar, train_and_save

MODEL = dict(
    n_layers=2, n_heads=4, d_model=128, d_head=32, d_mlp=512, n_ctx=SEQ_LEN, d_vocab=D_VOCAB,
    act_fn="gelu_new", normalization_type="LN",
)
BATCH_SIZE, LR, WARMUP, FINAL_LR_FRACTION = 32, 2e-3, 50, 0.1
EVAL_DOCS, EVAL_EVERY = 256, 50
PROBE_TRAIN_DOCS, PROBE_TEST_DOCS, PROBE_STEPS = 400, 200, 300


def build_model(seed: int) -> TransformerBridge:
    cfg = TransformerBridgeConfig(**MODEL, seed=seed, device="cpu")
    return TransformerBridge.boot_native(cfg, tokenizer=make_tokenizer(), model_name="tiny-lm")


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to FINAL_LR_FRACTION of LR: a lower loss in few steps."""
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return LR * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def held_out_loss(model: TransformerBridge, tokens: Int[Tensor, "doc pos"], batch_size: int = 64) -> float:
    """Mean next-token loss in nats over every position of `tokens`."""
    losses = [model(chunk, return_type="loss").item() * len(chunk) for chunk in tokens.split(batch_size)]
    return sum(losses) / len(tokens)


def unigram_loss(train: Int[Tensor, "doc pos"], test: Int[Tensor, "doc pos"]) -> float:
    """The loss of always predicting the corpus's word frequencies: the bar a model must clear
    to show it uses context at all (uniform guessing, ln d_vocab, is a far lower bar)."""
    counts = torch.bincount(train[:, 1:].flatten(), minlength=D_VOCAB).float() + 1
    return -(counts / counts.sum()).log()[test[:, 1:]].mean().item()


def train(steps: int, seed: int = 0, progress: bool = True) -> tuple[TransformerBridge, dict]:
    """Train from scratch; return the model and the log (also what gets saved)."""
    torch.manual_seed(seed)
    model = build_model(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    docs = generate(steps * BATCH_SIZE, seed).tokens  # every document is seen once
    held_out = generate(EVAL_DOCS, seed + 1).tokens
    log, recent, start = [], [], time.perf_counter()
    bar = progress_bar(range(steps), "training", show=progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        loss = model(docs[step * BATCH_SIZE : (step + 1) * BATCH_SIZE], return_type="loss")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.item())
        if (step + 1) % EVAL_EVERY == 0 or step + 1 == steps:
            row = dict(step=step + 1, loss=round(sum(recent) / len(recent), 4),
                       held_out=round(held_out_loss(model.eval(), held_out), 4))
            model.train()
            log.append(row)
            recent = []
            bar.set_postfix(loss=f"{row['loss']:.3f}", held_out=f"{row['held_out']:.3f}")
    return model.eval(), dict(
        model=MODEL, seed=seed, steps=steps, batch_size=BATCH_SIZE, lr=LR, warmup=WARMUP,
        final_lr_fraction=FINAL_LR_FRACTION, eval=dict(docs=EVAL_DOCS, every=EVAL_EVERY, seed=seed + 1),
        wall_time_s=round(time.perf_counter() - start, 1),
        baselines=dict(uniform=round(math.log(D_VOCAB), 4), unigram=round(unigram_loss(docs, held_out), 4)),
        log=log,
    )


@torch.no_grad()
def activations(model: TransformerBridge, tokens: Int[Tensor, "doc pos"], hook: str) -> Float[Tensor, "doc pos d"]:
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == hook)
    return cache[hook]


def linear_probe_accuracy(
    train_x: Float[Tensor, "n d"], train_y: Bool[Tensor, "n feature"],
    test_x: Float[Tensor, "n_test d"], test_y: Bool[Tensor, "n_test feature"],
) -> Float[Tensor, " feature"]:
    """Held-out accuracy of one logistic regression per feature (all fitted at once).

    Inputs are standardised with the training statistics; full-batch Adam for PROBE_STEPS
    steps is enough for a linear model on a few tens of thousands of points.
    """
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    generator = torch.Generator().manual_seed(0)
    weight = (torch.randn(train_x.shape[1], train_y.shape[1], generator=generator) * 0.01).requires_grad_()
    bias = torch.zeros(train_y.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    with torch.enable_grad():
        for _ in range(PROBE_STEPS):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(train_x @ weight + bias, train_y.float())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return ((test_x @ weight + bias > 0) == test_y).float().mean(0)


def probe_features(model: TransformerBridge, train: Corpus, test: Corpus, hook: str) -> Float[Tensor, " feature"]:
    """Probe accuracy for every feature from the activations at `hook` (BOS left out)."""
    def points(corpus: Corpus) -> tuple[Float[Tensor, "n d"], Bool[Tensor, "n feature"]]:
        acts = activations(model, corpus.tokens, hook)[:, 1:]
        return acts.reshape(-1, acts.shape[-1]), corpus.labels[:, 1:].reshape(-1, len(FEATURES))

    return linear_probe_accuracy(*points(train), *points(test))


def probe_table(trained: TransformerBridge, untrained: TransformerBridge, seed: int) -> dict:
    """Per feature: majority baseline and probe accuracy on each layer's residual stream,
    for the trained model and a random twin. Token-identity features are linear in any
    embedding; contextual ones (topic, quote, sentiment after "not") need trained attention."""
    train_docs, test_docs = generate(PROBE_TRAIN_DOCS, seed + 2), generate(PROBE_TEST_DOCS, seed + 3)
    positive_rate = test_docs.labels[:, 1:].float().mean((0, 1))
    table = {"baseline": torch.maximum(positive_rate, 1 - positive_rate)}
    for layer in progress_bar(range(trained.cfg.n_layers), "probing each layer"):
        hook = f"blocks.{layer}.hook_resid_post"
        table[hook] = probe_features(trained, train_docs, test_docs, hook)
        table[f"{hook} (random init)"] = probe_features(untrained, train_docs, test_docs, hook)
    return dict(
        docs=dict(train=PROBE_TRAIN_DOCS, test=PROBE_TEST_DOCS, seeds=[seed + 2, seed + 3]),
        accuracy={name: dict(zip(FEATURES, (round(a, 4) for a in acc.tolist()))) for name, acc in table.items()},
    )


def main(argv: list[str] | None = None) -> None:
    log, out = train_and_save(argv, __doc__, "tiny-lm", 1200, train, probe_table, build_model)
    final, base = log["log"][-1], log["baselines"]
    print(f"\n{log['steps']} steps in {log['wall_time_s']} s; held-out loss {final['held_out']:.3f} nats "
          f"(uniform {base['uniform']:.3f}, unigram {base['unigram']:.3f})")
    accuracy = log["probes"]["accuracy"]
    short = {c: c.replace("blocks.", "resid ").replace(".hook_resid_post", "") for c in accuracy}
    print(f"{'probe accuracy':<14} " + " ".join(f"{s:>20}" for s in short.values()))
    for feature in FEATURES:
        print(f"{feature:<14} " + " ".join(f"{accuracy[c][feature]:>20.3f}" for c in short))
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
