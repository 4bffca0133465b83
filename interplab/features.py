"""What module 01 gives its students: the labelled corpus in any model's tokens.

The corpus (`interplab.corpus`) is written in words and labels every word with its features.
`tiny-lm` (CPU tier) has one token per word, so its tokens are the corpus's own. GPT-2 (GPU
tier) splits some words into several tokens. `in_model_tokens` tokenizes word by word, so
each model token keeps the labels of the word it came from, whatever the tokenizer, and
`word_token_ids` finds the token a model predicts for a word: the first token of " word",
since the corpus writes a space before every word.

The maths of the module (difference of means, AUROC, the logit lens, steering, direct logit
attribution) is not here: the lab has students write it. `zero_ablation_effects` is the experiment
that direct logit attribution is checked against, in the lesson and in the lab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from interplab.corpus import FEATURES, SEQ_LEN, Corpus

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge


@dataclass(frozen=True)
class LabelledTokens:
    """Documents in a model's tokens, each token with the corpus word it came from and that word's labels."""

    tokens: Int[Tensor, "doc pos"]
    #: The corpus word (an index into ``corpus.VOCAB``) each token is part of.
    words: Int[Tensor, "doc pos"]
    #: ``labels[d, p, f]``: token ``p`` of document ``d`` is part of a word with feature ``FEATURES[f]``.
    labels: Bool[Tensor, "doc pos feature"]

    def feature(self, name: str) -> Bool[Tensor, "doc pos"]:
        """One feature's labels, by name."""
        if name not in FEATURES:
            raise KeyError(f"no feature {name!r}; the features are {', '.join(FEATURES)}")
        return self.labels[..., FEATURES.index(name)]


def _pieces(model: "TransformerBridge", words: Sequence[str]) -> list[list[int]]:
    """Each word's tokens in the model's tokenizer, written as it is in running text (" word")."""
    pieces = [model.tokenizer(" " + word, add_special_tokens=False).input_ids for word in words]
    empty = [w for w, p in zip(words, pieces) if not p]
    if empty:
        raise ValueError(f"the model's tokenizer gives no tokens for {empty[:5]}")
    return pieces


def in_model_tokens(model: "TransformerBridge", docs: Corpus, length: int = SEQ_LEN) -> LabelledTokens:
    """The documents in ``model``'s tokens, BOS first, cut at ``length`` tokens, labels carried over.

    For the shipped ``tiny-lm`` the result is the corpus itself (one token per word). Documents
    whose words split into several tokens are cut at ``length``; all of them are at least that long.
    """
    bos = model.tokenizer.bos_token_id
    if bos is None:
        raise ValueError("the model's tokenizer has no BOS token; the course's models all do")
    pieces = [[bos]] + _pieces(model, docs.vocab[1:])  # word 0 is BOS
    tokens, source = [], []
    for doc in docs.tokens.tolist():
        tokens.append([t for w in doc for t in pieces[w]][:length])
        source.append([i for i, w in enumerate(doc) for _ in pieces[w]][:length])
    if min(map(len, tokens)) < length:
        raise ValueError(f"some documents are shorter than {length} tokens: pass a smaller length")
    source = torch.tensor(source)
    rows = torch.arange(len(source))[:, None]
    return LabelledTokens(torch.tensor(tokens), docs.tokens[rows, source], docs.labels[rows, source])


def word_token_ids(model: "TransformerBridge", words: Sequence[str]) -> Int[Tensor, " n"]:
    """The token ``model`` would predict to start each word: the first token of " word"."""
    return torch.tensor([piece[0] for piece in _pieces(model, words)])


def zero_ablation_effects(
    model: "TransformerBridge",
    tokens: Int[Tensor, "batch pos"],
    targets: Int[Tensor, " batch"],
    others: Int[Tensor, " batch"],
    *,
    hold_scale: bool,
) -> Float[Tensor, "batch layer component"]:
    """How far ``logit[targets] - logit[others]`` at the last position falls when one part's output is zeroed there.

    The experiment that direct logit attribution predicts: a part's attribution is what the logit difference would
    lose without it, were nothing else to change. Columns as in lab 01's ``component_dla``: each of a layer's heads
    (its ``hook_z``, so ``b_O`` stays), then the layer's MLP. With ``hold_scale`` the final LayerNorm keeps each
    prompt's clean scale, so the loss is the part's direct path plus whatever it does through later blocks; without,
    the scale moves too. Zeroing, not mean ablation: a mean would also need its own direct attribution.
    """
    rows = torch.arange(len(tokens))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == "ln_final.hook_scale")
    scale = cache["ln_final.hook_scale"]
    held = [("ln_final.hook_scale", lambda act, hook: scale)] if hold_scale else []

    def difference(hooks: list) -> Float[Tensor, " batch"]:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=held + hooks)[:, -1]
        return logits[rows, targets] - logits[rows, others]

    def zero(column: int):
        def hook(act: Tensor, hook) -> Tensor:
            act = act.clone()
            if column < model.cfg.n_heads:
                act[:, -1, column] = 0  # hook_z: [batch, pos, head, d_head]
            else:
                act[:, -1] = 0  # hook_mlp_out: [batch, pos, d_model]
            return act
        return hook

    clean = difference([])
    return torch.stack([
        torch.stack([clean - difference([(_part_hook(model, layer, column), zero(column))])
                     for column in range(model.cfg.n_heads + 1)], dim=-1)
        for layer in range(model.cfg.n_layers)
    ], dim=1)


def _part_hook(model: "TransformerBridge", layer: int, column: int) -> str:
    """The hook of column ``column`` of layer ``layer``: a head's ``hook_z``, or the MLP's output."""
    return f"blocks.{layer}.attn.hook_z" if column < model.cfg.n_heads else f"blocks.{layer}.hook_mlp_out"
