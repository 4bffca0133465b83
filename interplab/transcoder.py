"""Transcoders: sparse stand-ins for a transformer's MLPs, the building block of module 08's attribution graphs.

A sparse autoencoder (module 04) reconstructs an activation from itself. A **transcoder** (Dunefsky, Chlenski &
Nanda 2024, "Transcoders find interpretable LLM feature circuits") reads what an MLP reads and predicts what it
writes: ``z = topk(ReLU(x W_enc + b_enc))``, ``ŷ = z W_dec + b_dec``, with ``x`` the MLP's input and ``y`` its
output. Because ``ŷ`` is a sparse, *linear* function of the features ``z``, a model whose MLPs are replaced by
transcoders can be read as a graph of features (Ameisen et al. 2025, "Circuit tracing"; ``interplab.attribution``).

Where the MLP's input and output are, in TransformerBridge's hook names (checked on tiny-lm in compatibility
mode, where LayerNorm's weights are folded into the next layer, so the MLP reads exactly the normalised residual):

    MLP_IN_HOOK   blocks.{layer}.ln2.hook_normalized   (equal to blocks.{layer}.mlp.hook_in)
    MLP_OUT_HOOK  blocks.{layer}.hook_mlp_out

These are also the hook points of the published GPT-2 small transcoders (``load_transcoders("gpt2-small")``).
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge

MLP_IN_HOOK = "blocks.{layer}.ln2.hook_normalized"
MLP_OUT_HOOK = "blocks.{layer}.hook_mlp_out"

#: Transcoders the course ships, trained by ``python -m interplab.train.transcoders``.
SHIPPED_TRANSCODERS: dict[str, Path] = {"tiny-lm": Path(__file__).parent / "shipped" / "tiny-lm-transcoders"}
#: The published GPT-2 small transcoders of Dunefsky et al. 2024 (24,576 ReLU latents per layer, GPU tier).
GPT2_REPO = "pchlenski/gpt2-transcoders"
GPT2_FILE = "final_sparse_autoencoder_gpt2-small_blocks.{layer}.ln2.hook_normalized_24576.pt"



def rewrite_mlp_hooks(
    layers: Iterable[int],
    rewrite: Callable[[int, Float[Tensor, "... pos d_model"], Float[Tensor, "... pos d_model"]],
                      Float[Tensor, "... pos d_model"]],
) -> list[tuple[str, Callable]]:
    """Hooks that replace each layer's MLP output by ``rewrite(layer, mlp_input, mlp_output)``. The input is the
    hooked run's own, so a rewrite in one layer reaches every later layer's input, as in a full replacement."""
    inputs: dict[int, Tensor] = {}

    def keep(layer: int) -> Callable:
        return lambda x, hook: inputs.__setitem__(layer, x)

    def swap(layer: int) -> Callable:
        return lambda out, hook: rewrite(layer, inputs[layer], out)

    layers = list(layers)
    return ([(MLP_IN_HOOK.format(layer=layer), keep(layer)) for layer in layers]
            + [(MLP_OUT_HOOK.format(layer=layer), swap(layer)) for layer in layers])

@dataclass
class Transcoder:
    """One MLP layer's transcoder: ``z = topk(ReLU(x W_enc + b_enc))``, ``ŷ = z W_dec + b_dec``."""

    W_enc: Float[Tensor, "d_model d_tc"]
    b_enc: Float[Tensor, " d_tc"]
    W_dec: Float[Tensor, "d_tc d_model"]
    b_dec: Float[Tensor, " d_model"]
    #: Latents kept per token (TopK, Gao et al. 2024); ``None`` keeps every positive one (a ReLU transcoder).
    k: int | None = None
    #: Which MLP it replaces.
    layer: int = 0

    @classmethod
    def init(
        cls, d_model: int, d_tc: int, k: int | None = None, layer: int = 0, generator: torch.Generator | None = None
    ) -> "Transcoder":
        """Fresh trainable weights: unit-norm decoder rows, an encoder of unit-norm columns, zero biases.

        Unlike an SAE's, a transcoder's encoder and decoder live in different spaces (MLP input, MLP output), so
        the encoder is not tied to the decoder's transpose; unit-norm columns give every latent a pre-activation
        of the input's own scale, so none starts dead or dominant.
        """
        if d_model < 1 or d_tc < 1:
            raise ValueError(f"d_model and d_tc must be positive; got d_model={d_model}, d_tc={d_tc}")
        if k is not None and not 1 <= k <= d_tc:
            raise ValueError(f"a TopK transcoder keeps 1 to d_tc={d_tc} latents per token; got k={k}")
        W_enc = torch.randn(d_model, d_tc, generator=generator)
        W_dec = torch.randn(d_tc, d_model, generator=generator)
        weights = (W_enc / W_enc.norm(dim=0), torch.zeros(d_tc), W_dec / W_dec.norm(dim=1, keepdim=True),
                   torch.zeros(d_model))
        return cls(*weights, k=k, layer=layer).requires_grad_()

    @property
    def d_model(self) -> int:
        return self.W_enc.shape[0]

    @property
    def d_tc(self) -> int:
        return self.W_enc.shape[1]

    def encode(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_tc"]:
        """The features: ReLU of the pre-activations, then (TopK) all but the ``k`` largest per token zeroed."""
        z = torch.relu(x @ self.W_enc + self.b_enc)
        if self.k is None:
            return z
        top = z.topk(self.k, dim=-1)
        return torch.zeros_like(z).scatter(-1, top.indices, top.values)

    def decode(self, z: Float[Tensor, "... d_tc"]) -> Float[Tensor, "... d_model"]:
        """The predicted MLP output: a sum of decoder rows weighted by the features, plus the bias."""
        return z @ self.W_dec + self.b_dec

    def __call__(self, x: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
        return self.decode(self.encode(x))

    def parameters(self) -> list[Tensor]:
        """The four weights, for an optimiser."""
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]

    def requires_grad_(self, requires_grad: bool = True) -> "Transcoder":
        for weight in self.parameters():
            weight.requires_grad_(requires_grad)
        return self

    def save(self, path: str | Path) -> Path:
        """Write the weights as safetensors, with ``k`` and ``layer`` as JSON in the file's own metadata:
        one plain, unpicklable file per transcoder."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = dict(zip(("W_enc", "b_enc", "W_dec", "b_dec"), self.parameters()))
        save_file({n: w.detach().cpu().contiguous() for n, w in tensors.items()}, path,
                  metadata={"config": json.dumps({"k": self.k, "layer": self.layer})})
        path.chmod(0o644)  # safetensors writes 0600; graders' sandboxes must read it
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "Transcoder":
        """A transcoder that ``save`` wrote."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            config = json.loads(f.metadata()["config"])
        weights = load_file(path, device=str(device))
        return cls(weights["W_enc"], weights["b_enc"], weights["W_dec"], weights["b_dec"], **config)


@torch.no_grad()
def mlp_io(
    model: "TransformerBridge", tokens: Int[Tensor, "doc pos"], layer: int, batch_size: int = 200
) -> tuple[Float[Tensor, "n d_model"], Float[Tensor, "n d_model"]]:
    """The MLP's input and output at every token of ``tokens``, rows flattened doc-major (``doc * pos + p``).

    Run ``batch_size`` documents at a time to bound memory; only the two hooks are cached.
    """
    names = (MLP_IN_HOOK.format(layer=layer), MLP_OUT_HOOK.format(layer=layer))
    ins, outs = [], []
    for chunk in tokens.split(batch_size):
        _, cache = model.run_with_cache(chunk, names_filter=lambda name: name in names)
        ins.append(cache[names[0]].flatten(0, 1))
        outs.append(cache[names[1]].flatten(0, 1))
    return torch.cat(ins), torch.cat(outs)


def load_transcoders(model_name: str = "tiny-lm", device: str | torch.device = "cpu") -> list[Transcoder]:
    """One transcoder per layer: the shipped ones for ``tiny-lm`` (CPU tier, offline), or Dunefsky et al.'s
    published ones for ``gpt2-small`` (GPU tier: downloads about 3.5 GB from the Hugging Face Hub once)."""
    if model_name in SHIPPED_TRANSCODERS:
        folder = SHIPPED_TRANSCODERS[model_name]
        n_layers = json.loads((folder / "config.json").read_text())["n_layers"]
        return [Transcoder.load(folder / f"layer{layer}.safetensors", device) for layer in range(n_layers)]
    if model_name in ("gpt2-small", "gpt2"):
        return [_gpt2_transcoder(layer, device) for layer in range(12)]
    raise ValueError(f"no transcoders for {model_name!r}: there are {[*SHIPPED_TRANSCODERS, 'gpt2-small']}")


class _Placeholder:
    """Stands in for any class a published checkpoint pickled (its training config): only tensors are kept."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _TensorsOnly(pickle.Unpickler):
    """An unpickler that builds torch's tensors and plain containers and nothing else, so loading a published
    checkpoint runs none of its code (``torch.load(weights_only=True)`` refuses the file's config object)."""

    def find_class(self, module: str, name: str) -> object:
        if module.startswith(("torch", "collections")) or module == "builtins" and name in ("set", "frozenset"):
            return super().find_class(module, name)
        return _Placeholder


class _TensorsOnlyModule:
    Unpickler = _TensorsOnly
    load = pickle.load


def _gpt2_transcoder(layer: int, device: str | torch.device) -> Transcoder:
    """Dunefsky et al.'s layer-``layer`` transcoder, converted to this module's form.

    Theirs subtract an input bias first, ``z = ReLU((x - b_dec) W_enc + b_enc)``, ``ŷ = z W_dec + b_dec_out``;
    folding it into the encoder's bias (``b_enc - b_dec W_enc``) gives the same ``z`` exactly.
    """
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(GPT2_REPO, GPT2_FILE.format(layer=layer))
    with open(path, "rb") as f:
        state = torch.load(io.BytesIO(f.read()), map_location=device, pickle_module=_TensorsOnlyModule,
                           weights_only=False)["state_dict"]
    b_enc = state["b_enc"] - state["b_dec"] @ state["W_enc"]
    return Transcoder(state["W_enc"], b_enc, state["W_dec"], state["b_dec_out"], k=None, layer=layer)
