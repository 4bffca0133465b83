"""Probes: the weights lab 05 trains, and the activations (with labels) it trains them on.

The lab's students write the probe's maths themselves (its logits, the training loop, accuracy,
the control task); this module holds only what the lab *gives* them:

- ``Probe``, a plain container for a probe's weights: a linear probe (``W``, ``b``: logits
  ``x W + b``) or a one-hidden-layer MLP probe (``W_in``, ``b_in`` set as well: logits
  ``ReLU(x W_in + b_in) W + b``);
- ``POS``, the part-of-speech classes read off the corpus's labels, and ``word_activations``,
  a model's activations at every word of a corpus document at several hooks. The shipped tiny LM
  has one token per word; for GPT-2 (the GPU tier) a word is read at its last sub-word token,
  the first position where the model has seen all of it.

Rows are examples everywhere: activations ``[n, d]``, labels ``[n]`` (class numbers; -1 = no label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interplab import corpus

if TYPE_CHECKING:  # only word_activations runs a model
    from transformer_lens import TransformerBridge

#: Part-of-speech classes, in label order: class 0 is every token that is none of the others.
POS: tuple[str, ...] = ("other", "noun", "verb", "adjective")


@dataclass
class Probe:
    """A probe's weights. Linear: ``logits = x W + b``; MLP: ``logits = ReLU(x W_in + b_in) W + b``."""

    W: Float[Tensor, "d_hidden n_classes"]
    b: Float[Tensor, " n_classes"]
    W_in: Float[Tensor, "d_in d_hidden"] | None = None
    b_in: Float[Tensor, " d_hidden"] | None = None

    @classmethod
    def init(
        cls,
        d_in: int,
        n_classes: int,
        d_hidden: int | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
    ) -> "Probe":
        """Fresh trainable weights: a linear probe, or an MLP probe when ``d_hidden`` is given.

        Weights are drawn with standard deviation ``1/sqrt(fan-in)`` (biases zero), so logits start small
        whatever the width.
        """
        if d_in < 1 or n_classes < 2 or (d_hidden is not None and d_hidden < 1):
            raise ValueError(f"need d_in >= 1, n_classes >= 2 and d_hidden >= 1; got {d_in}, {n_classes}, {d_hidden}")
        if d_hidden is None:
            weights = [torch.randn(d_in, n_classes, generator=generator) / d_in**0.5, torch.zeros(n_classes)]
        else:
            weights = [torch.randn(d_hidden, n_classes, generator=generator) / d_hidden**0.5, torch.zeros(n_classes),
                       torch.randn(d_in, d_hidden, generator=generator) / d_in**0.5, torch.zeros(d_hidden)]
        return cls(*(w.to(device).requires_grad_() for w in weights))

    @property
    def is_mlp(self) -> bool:
        return self.W_in is not None

    @property
    def d_in(self) -> int:
        return (self.W_in if self.is_mlp else self.W).shape[0]

    @property
    def n_classes(self) -> int:
        return self.W.shape[1]

    @property
    def d_hidden(self) -> int | None:
        return self.W.shape[0] if self.is_mlp else None

    def parameters(self) -> list[Tensor]:
        """The weights, for an optimiser: W, b, then W_in, b_in for an MLP probe."""
        return [self.W, self.b] + ([self.W_in, self.b_in] if self.is_mlp else [])

    def flat(self) -> Float[Tensor, " n"]:
        """Every weight in one CPU tensor: how a trained probe is recorded for grading."""
        return torch.cat([w.detach().to("cpu", torch.float32).flatten() for w in self.parameters()])

    @classmethod
    def from_flat(cls, flat: Tensor, d_in: int, n_classes: int, d_hidden: int | None = None) -> "Probe":
        """The probe that ``flat()`` wrote, given its sizes."""
        rows = d_in if d_hidden is None else d_hidden
        shapes = [(rows, n_classes), (n_classes,)] + ([(d_in, d_hidden), (d_hidden,)] if d_hidden is not None else [])
        sizes = [int(torch.Size(s).numel()) for s in shapes]
        if flat.ndim != 1 or flat.numel() != sum(sizes):
            raise ValueError(f"expected {sum(sizes)} numbers for this probe's weights, got shape {tuple(flat.shape)}")
        return cls(*(part.reshape(s) for part, s in zip(flat.split(sizes), shapes)))


def pos_of(labels: torch.Tensor) -> Int[Tensor, "..."]:
    """Part-of-speech class (index into ``POS``) of every token, from the corpus's feature labels."""
    columns = [corpus.FEATURES.index(name) for name in POS[1:]]
    return (labels[..., columns].long() * torch.arange(1, len(POS))).sum(-1)


@torch.no_grad()
def word_activations(
    model: "TransformerBridge", docs: corpus.Corpus, hooks: list[str], batch_size: int = 32
) -> Float[Tensor, "hook doc word d"]:
    """Activations at ``hooks`` for every word of every document (BOS included, as word 0).

    With the corpus's own tokenizer (the tiny LM) words are tokens and this is one cached run. With
    any other tokenizer (GPT-2's byte-pair encoding) each word is tokenised after a space, as it
    appears in running text, and read at its last sub-word token.
    """
    if model.tokenizer.get_vocab() == dict(zip(docs.vocab, range(len(docs.vocab)))):
        tokens, where = docs.tokens, None
    else:
        tokens, where = _subword_tokens(model, docs)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start : start + batch_size].to(device)
        _, cache = model.run_with_cache(chunk, names_filter=lambda name: name in hooks)
        acts = torch.stack([cache[h] for h in hooks]).cpu()  # [hook, doc, token, d]
        if where is not None:
            index = where[start : start + batch_size]
            acts = acts.gather(2, index[None, :, :, None].expand(len(hooks), -1, -1, acts.shape[-1]))
        out.append(acts)
    return torch.cat(out, dim=1)


def _subword_tokens(model: "TransformerBridge", docs: corpus.Corpus) -> tuple[Int[Tensor, "doc tok"], Int[Tensor, "doc word"]]:
    """Each document as the model's own tokens, and where each word's last token is.

    Word 0 (the corpus's BOS) maps to the model's BOS; documents are padded with BOS to one length.
    """
    tokenizer = model.tokenizer
    bos = tokenizer.bos_token_id
    pieces = {w: tokenizer.encode(" " + w, add_special_tokens=False) for w in docs.vocab[2:]}
    rows, ends = [], []
    for doc in docs.tokens.tolist():
        ids, last = [bos], [0]
        for word in doc[1:]:
            ids += pieces[docs.vocab[word]]
            last.append(len(ids) - 1)
        rows.append(ids)
        ends.append(last)
    width = max(map(len, rows))
    tokens = torch.tensor([row + [bos] * (width - len(row)) for row in rows])
    return tokens, torch.tensor(ends)
