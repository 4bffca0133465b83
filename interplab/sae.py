"""Sparse autoencoders: the weights lab 04 trains, and the activations it trains them on.

The lab's students write the SAE's maths themselves (encode, decode, loss, training loop); this
module holds only what the lab *gives* them:

- ``SAE``, a plain container for the four weights, named as in SAELens (``W_enc``, ``b_enc``,
  ``W_dec``, ``b_dec``), with the usual initialisation: unit-norm decoder rows and the encoder
  set to the decoder's transpose (Conerly et al. 2024; Gao et al. 2024). ``k`` set makes it a
  TopK SAE; ``k=None`` an L1 ReLU SAE;
  ``batch_topk=True`` with ``k`` a BatchTopK SAE.
- ``toy_features`` / ``toy_activations``: data whose true features are known, a simplified
  version of Sharkey et al. 2022's: each activation is a sparse, non-negative mix of fixed unit
  directions, more directions than dimensions, so recovering them is the superposition problem.
  (Theirs also has correlated features, feature frequencies that decay, and noise; here every
  feature is independent, equally frequent, and there is no noise.)
- ``lm_activations``: the shipped tiny LM's activations on the synthetic corpus, where every
  token's ground-truth features are known too.

Rows are examples everywhere: activations are ``[batch, d_in]`` and latents ``[batch, d_sae]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:  # the toy data needs no TransformerLens; only lm_activations runs a model
    from transformer_lens import TransformerBridge


@dataclass
class SAE:
    """An SAE's weights: ``z = ReLU((x - b_dec) W_enc + b_enc)``, ``x̂ = z W_dec + b_dec``."""

    W_enc: Float[Tensor, "d_in d_sae"]
    b_enc: Float[Tensor, " d_sae"]
    W_dec: Float[Tensor, "d_sae d_in"]
    b_dec: Float[Tensor, " d_in"]
    #: Latents kept per example by a TopK SAE; ``None`` for an L1 ReLU SAE.
    k: int | None = None
    #: A BatchTopK SAE (Bussmann et al. 2024): keep the ``k × batch`` largest latents of a whole batch,
    #: so ``k`` per example on average, more for busy examples and fewer for quiet ones.
    batch_topk: bool = False

    @classmethod
    def init(
        cls,
        d_in: int,
        d_sae: int,
        k: int | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        batch_topk: bool = False,
    ) -> "SAE":
        """Fresh trainable weights: random unit-norm decoder rows, encoder = their transpose, zero biases.

        Starting the encoder at the decoder's transpose makes each latent begin by detecting its
        own decoder direction, which trains faster and leaves fewer latents dead.
        """
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"d_in and d_sae must be positive; got d_in={d_in}, d_sae={d_sae}")
        if k is not None and not 1 <= k <= d_sae:
            raise ValueError(f"a TopK SAE keeps 1 to d_sae={d_sae} latents per example; got k={k}")
        if batch_topk and k is None:
            raise ValueError("a BatchTopK SAE needs k, the number of latents it keeps per example on average")
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        weights = (W_dec.T.clone(), torch.zeros(d_sae), W_dec, torch.zeros(d_in))
        return cls(*(w.to(device).requires_grad_() for w in weights), k=k, batch_topk=batch_topk)

    @property
    def d_in(self) -> int:
        return self.W_dec.shape[1]

    @property
    def d_sae(self) -> int:
        return self.W_dec.shape[0]

    def parameters(self) -> list[Tensor]:
        """The four weights, for an optimiser."""
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]

    def flat(self) -> Float[Tensor, " n"]:
        """Every weight in one CPU tensor: how a trained SAE is recorded for grading."""
        return torch.cat([w.detach().to("cpu", torch.float32).flatten() for w in self.parameters()])

    @classmethod
    def from_flat(
        cls, flat: Float[Tensor, " n"], d_in: int, d_sae: int, k: int | None = None, batch_topk: bool = False
    ) -> "SAE":
        """The SAE that ``flat()`` recorded; a recording of the wrong size is refused."""
        sizes = [d_in * d_sae, d_sae, d_sae * d_in, d_in]
        if flat.ndim != 1 or flat.numel() != sum(sizes):
            raise ValueError(f"expected {sum(sizes)} numbers for an SAE of d_in={d_in}, d_sae={d_sae}; "
                             f"got a tensor of shape {tuple(flat.shape)}")
        W_enc, b_enc, W_dec, b_dec = flat.to(torch.float32).split(sizes)
        return cls(W_enc.view(d_in, d_sae), b_enc, W_dec.view(d_sae, d_in), b_dec, k=k, batch_topk=batch_topk)


def toy_features(n_features: int, d: int, generator: torch.Generator) -> Float[Tensor, "n_features d"]:
    """``n_features`` random unit directions in ``d`` dimensions: the true features to recover."""
    directions = torch.randn(n_features, d, generator=generator)
    return directions / directions.norm(dim=1, keepdim=True)


def toy_activations(
    features: Float[Tensor, "n_features d"], n: int, feature_probability: float, generator: torch.Generator
) -> Float[Tensor, "n d"]:
    """``n`` activations, each a sparse mix of the true features.

    Each feature is present independently with ``feature_probability``, with a coefficient
    uniform on [0, 1] (as in Elhage et al. 2022); the activation is the coefficient-weighted sum of
    the present features' directions. Sharkey et al. 2022 built their data this way too, but with
    correlated features, frequencies that decay from feature to feature, and noise: this is the
    simplest version of it.
    """
    shape = (n, features.shape[0])
    coefficients = torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) < feature_probability)
    return coefficients @ features


#: Where lab 04 reads the tiny LM: what its first MLP writes to the residual stream. Its
#: features are computed there (the layer-0 MLP matters most to the model's loss).
LM_HOOK = "blocks.0.hook_mlp_out"


@torch.no_grad()
def lm_activations(
    model: "TransformerBridge", tokens: Int[Tensor, "doc pos"], hook: str = LM_HOOK, batch_size: int = 200
) -> Float[Tensor, "doc pos d"]:
    """The activations at ``hook`` for every token, run ``batch_size`` documents at a time to bound memory."""
    parts = []
    for start in range(0, tokens.shape[0], batch_size):
        _, cache = model.run_with_cache(tokens[start:start + batch_size], names_filter=lambda name: name == hook)
        parts.append(cache[hook])
    return torch.cat(parts)
