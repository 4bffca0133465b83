"""The one loader for every model in the course, on either tier.

    load("attn-only-2l")     the shipped 2-layer attention-only model (CPU tier, offline)
    load("ioi-3l")           the shipped 3-layer attention-only model of the IOI task (module 06)
    load("organism")         the shipped practice model organism, with its planted trigger (module 07)
    load("gpt2-small")       GPT-2 small from the Hugging Face Hub (GPU tier, needs internet once)
    load("qwen2.5-0.5b-instruct")  a small open chat model from the Hub (lesson 07's GPU tier)
    load("path/to/folder")   a folder in the shipped format, or `save_pretrained` output of a
                             Hugging Face model together with its tokenizer

Convention: every model comes back in eval mode with `enable_compatibility_mode()`
applied, i.e. in HookedTransformer's coordinates (LayerNorm weights folded into the
next layer, writing weights and unembedding centred, value biases folded into b_O).
The forward pass computes the same probabilities, but logits differ from the raw
model's by a constant per position, and W_E, W_U, OV, QK, direct logit attribution
and ablation numbers are those of the processed weights. We use it everywhere so
that the CPU and GPU tiers, reference solutions and students all see one set of
numbers, and so that published HookedTransformer analyses carry over unchanged.
"""

import copy
import functools
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from interplab.device import pick_device
from interplab.vocab import load_tokenizer

SHIPPED: dict[str, Path] = {
    "attn-only-2l": Path(__file__).parent / "shipped" / "attn-only-2l",
    "tiny-lm": Path(__file__).parent / "shipped" / "tiny-lm",
    "ioi-3l": Path(__file__).parent / "shipped" / "ioi-3l",
    "grid-world": Path(__file__).parent / "shipped" / "grid-world",
    "organism": Path(__file__).parent / "shipped" / "organism",
}
HUB: dict[str, str] = {"gpt2-small": "gpt2", "gpt2": "gpt2",
                       # a small open chat model, for lesson 07's refusal direction on the GPU tier
                       "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct"}


class ModelUnavailableError(RuntimeError):
    """A model that needs the Hugging Face Hub could not be fetched."""


def load(name: str | Path, device: str | torch.device | None = None) -> TransformerBridge:
    """Load a model by name or folder onto `device` (default: `pick_device()`)."""
    device = pick_device(device)
    if str(name) in SHIPPED:
        return copy.deepcopy(_shipped(str(name), str(device)))
    elif str(name) in HUB:
        model = _load_from_hub(HUB[str(name)], device)
    elif Path(name).is_dir():
        path = Path(name)
        if (path / "tokenizer").is_dir():
            model = _load_shipped_format(path, device)
        elif (path / "config.json").is_file():
            model = TransformerBridge.boot_transformers(str(path), device=device)
        else:
            raise ValueError(
                f"{str(path)!r} is a folder but holds neither the shipped format "
                "(config.json, model.safetensors, tokenizer/) nor Hugging Face save_pretrained "
                "output (config.json, weights and tokenizer files)."
            )
    else:
        raise ValueError(f"unknown model {str(name)!r}: use one of {known_models()} or a path to a model folder.")
    model.enable_compatibility_mode(disable_warnings=True)
    return model.eval()


def random_init(name: str, seed: int, device: str | torch.device | None = None) -> TransformerBridge:
    """A shipped model's architecture with fresh random weights (same convention as `load`).

    Graders call exercises on it too: an answer that only works for the trained weights,
    or that hard-codes what they look like, fails on an untrained twin.
    """
    if name not in SHIPPED:
        raise ValueError(f"random_init builds shipped architectures only: one of {list(SHIPPED)}, not {name!r}")
    return copy.deepcopy(_shipped(name, str(pick_device(device)), seed))


@functools.lru_cache(maxsize=8)
def _shipped(name: str, device: str, seed: int | None = None) -> TransformerBridge:
    """A shipped model (trained weights, or random ones from ``seed``), built once per process.

    Booting a bridge takes seconds and copying one a tenth of that; graders and labs load the same
    small models many times (every case of every exercise), so callers get copies of this one,
    which is never handed out itself.
    """
    model = _load_shipped_format(SHIPPED[name], torch.device(device), weights=seed is None, seed=seed)
    model.enable_compatibility_mode(disable_warnings=True)
    return model.eval()


def is_course_model(value: object) -> bool:
    """Whether ``value`` is a model of a shipped architecture (what exercises may pass as an argument)."""
    return isinstance(value, TransformerBridge) and getattr(value.cfg, "model_name", None) in SHIPPED


def has_shipped_weights(model: TransformerBridge) -> bool:
    """Whether a model of a shipped architecture holds exactly the shipped, trained weights."""
    shipped = _shipped_state(model.cfg.model_name)
    mine = model.state_dict()
    return mine.keys() == shipped.keys() and all(torch.equal(mine[k].cpu(), shipped[k]) for k in mine)


@functools.cache
def _shipped_state(name: str) -> dict[str, torch.Tensor]:
    return load(name, device="cpu").state_dict()


def with_weights(name: str, weights: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> TransformerBridge:
    """A shipped architecture holding ``weights``: a state dict taken from a model that `load` or
    `random_init` made (so already in compatibility mode's coordinates). How the grader hands a
    kernel a model as data (``interplab.casefile``)."""
    model = random_init(name, seed=0, device=device)
    model.load_state_dict(weights, strict=True)
    return model


def perturbed(model: TransformerBridge, generator: torch.Generator, scale: float = 0.1) -> TransformerBridge:
    """A copy of a shipped-architecture model with every weight moved by Gaussian noise of
    ``scale`` times that weight's own spread. It keeps what training made (its heads still do
    their jobs) while every number it gives changes with the generator: graders use it so that
    hidden answers on "the trained model" differ from the public ones."""
    weights = {}
    for name, weight in model.state_dict().items():
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        spread = weight.float().std() if weight.numel() > 1 else weight.float().abs()
        weights[name] = weight + scale * float(spread) * noise.to(weight.device)
    return with_weights(model.cfg.model_name, weights, device=model.cfg.device)


def known_models() -> list[str]:
    return [*SHIPPED, *HUB]


def save(model: TransformerBridge, out_dir: str | Path) -> Path:
    """Write a `boot_native` model in the shipped format: weights, config and tokenizer.

    safetensors and JSON rather than `torch.save`: a bridge cannot be pickled, and a
    course should never ask students to unpickle files.
    """
    if model.cfg.architecture != "TransformerLensNative":
        raise ValueError(
            f"save() writes models built with TransformerBridge.boot_native; this one is "
            f"{model.cfg.architecture!r}. Use model.original_model.save_pretrained(dir) and "
            "model.tokenizer.save_pretrained(dir) instead."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    (out / "model.safetensors").chmod(0o644)  # safetensors writes 0600; graders' sandboxes must read it
    config = {k: v for k, v in model.cfg.to_dict().items() if k != "device"}
    (out / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True, default=_to_json) + "\n")
    model.tokenizer.save_pretrained(out / "tokenizer")
    return out


def _to_json(value: object) -> object:
    """JSON for the config's few non-JSON values: numpy scalars and the torch dtype."""
    return value.item() if hasattr(value, "item") else str(value)


def _load_shipped_format(
    path: Path, device: torch.device, weights: bool = True, seed: int | None = None
) -> TransformerBridge:
    config = json.loads((path / "config.json").read_text()) | ({"seed": seed} if seed is not None else {})
    config["dtype"] = getattr(torch, config["dtype"].removeprefix("torch."))
    cfg = TransformerBridgeConfig.from_dict(config | {"device": str(device)})
    # The tokenizer must arrive by folder: one assigned after boot loses its BOS token.
    tokenizer = load_tokenizer(path / "tokenizer")
    model = TransformerBridge.boot_native(cfg, tokenizer=tokenizer, device=device, model_name=cfg.model_name)
    if weights:
        model.load_state_dict(load_file(path / "model.safetensors", device=str(device)))
    return model


def _load_from_hub(repo: str, device: torch.device) -> TransformerBridge:
    try:
        return TransformerBridge.boot_transformers(repo, device=device)
    except OSError as e:  # what transformers raises when the Hub is unreachable or HF_HUB_OFFLINE=1
        raise ModelUnavailableError(
            f"could not fetch {repo!r} from the Hugging Face Hub: this machine has no internet access "
            "(or HF_HUB_OFFLINE is set) and the model is not in the local cache. Run this on Colab or "
            "another machine with internet (the download is cached for later offline use), or use the "
            f"CPU tier model: load({next(iter(SHIPPED))!r})."
        ) from e
