"""Input cases as data: how the grader hands a student's kernel its hidden inputs.

The hidden inputs of a lab are made from the instructor's secret seed. If the kernel built them
itself it would need the seed, and a student could read it there and rebuild every hidden input
(and the judge's held-out data) at home. So ``interplab references`` builds the hidden cases once,
in its own process, and saves them with this module; the kernel only ever *loads* them.

One file per exercise, ``<dir>/<exercise>.safetensors``: every tensor of every case, and in the
metadata a JSON skeleton saying how to put the arguments back together. A case's arguments may be

- tensors (``requires_grad`` kept), Python bools, ints, floats, strings and None;
- ``torch.Generator`` (its state), lists, tuples, and dicts with string keys of these;
- models from ``interplab.models`` (the shipped architecture's name, and the weights unless they are
  the shipped model's own);
- dataclasses defined in the ``interplab`` package whose fields are of these kinds.

An object that appears twice (one model in two cases, one tensor in two arguments) comes back as
one object, as it was built. Nothing is unpickled: a file names only classes of this package.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "interplab-cases-1"


class CaseFileError(ValueError):
    """A case file that cannot be read back (or an argument that cannot be saved)."""


def path_of(directory: Path, exercise: str) -> Path:
    return Path(directory) / f"{exercise}.safetensors"


def save(directory: Path, exercise: str, cases: list[tuple]) -> Path:
    """Write the argument tuples of one exercise's cases; returns the file."""
    encoder = _Encoder()
    skeleton = [encoder.encode(tuple(case)) for case in cases]
    path = path_of(directory, exercise)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(encoder.tensors, str(path), metadata={"format": FORMAT, "cases": json.dumps(skeleton)})
    return path


def load(directory: Path, exercise: str, device: str = "cpu") -> list[tuple]:
    """The argument tuples saved for one exercise (raises CaseFileError if none or unreadable)."""
    path = path_of(directory, exercise)
    if not path.is_file():
        raise CaseFileError(f"no input cases for {exercise} in {directory}")
    with safe_open(str(path), framework="pt", device=device) as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise CaseFileError(f"{path} is not an input-case file of this version of interplab")
        decoder = _Decoder({key: f.get_tensor(key) for key in f.keys()})
    return [tuple(decoder.decode(node)) for node in json.loads(metadata["cases"])]


class _Encoder:
    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self._seen: dict[int, str] = {}  # id of an object already saved -> its reference
        self._keep: list[Any] = []  # keeps encoded objects alive, so ids stay unique

    def _shared(self, value: Any, kind: str) -> tuple[str, bool]:
        """A reference for ``value``; True if it was saved before."""
        if id(value) in self._seen:
            return self._seen[id(value)], True
        ref = f"{kind}{len(self._seen)}"
        self._seen[id(value)] = ref
        self._keep.append(value)
        return ref, False

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return {"value": value}
        if isinstance(value, float):
            return {"float": repr(value)} if not math.isfinite(value) else {"value": value}
        if isinstance(value, torch.Tensor):
            ref, seen = self._shared(value, "t")
            if not seen:
                self.tensors[ref] = value.detach().to("cpu").clone().contiguous()
            return {"tensor": ref, "grad": value.requires_grad}
        if isinstance(value, torch.Generator):
            ref, seen = self._shared(value, "g")
            if not seen:
                self.tensors[ref] = value.get_state()
            return {"generator": ref}
        if isinstance(value, (list, tuple)):
            return {type(value).__name__: [self.encode(v) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"dict": {k: self.encode(v) for k, v in value.items()}}
        if _is_model(value):
            from interplab.models import has_shipped_weights

            ref, seen = self._shared(value, "m")
            if has_shipped_weights(value):  # the kernel loads those itself: no need to copy them
                return {"model": ref, "name": value.cfg.model_name, "shipped": True}
            if not seen:
                for name, weight in value.state_dict().items():
                    self.tensors[f"{ref}/{name}"] = weight.detach().to("cpu").clone().contiguous()
            return {"model": ref, "name": value.cfg.model_name}
        if dataclasses.is_dataclass(value) and not isinstance(value, type) and _ours(type(value)):
            ref, seen = self._shared(value, "d")
            fields = {} if seen else {f.name: self.encode(getattr(value, f.name))
                                      for f in dataclasses.fields(value) if f.init}
            return {"dataclass": ref, "class": f"{type(value).__module__}:{type(value).__qualname__}", "fields": fields}
        raise CaseFileError(
            f"an input case holds a {type(value).__name__}, which cannot be handed to a kernel as data: "
            "use tensors, numbers, strings, generators, models from interplab.models, or interplab dataclasses"
        )


def _is_model(value: Any) -> bool:
    """A model of the course; asked without importing TransformerLens when no model was ever made."""
    if "transformer_lens" not in sys.modules:
        return False
    from interplab.models import is_course_model

    return is_course_model(value)


def _ours(cls: type) -> bool:
    return cls.__module__ == "interplab" or cls.__module__.startswith("interplab.")


class _Decoder:
    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self._made: dict[str, Any] = {}

    def _tensor(self, key: str) -> torch.Tensor:
        if key not in self.tensors:
            raise CaseFileError(f"the case file lacks tensor {key!r}")
        return self.tensors[key]

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict) or not 1 <= len(node) <= 3:
            raise CaseFileError(f"not a case node: {str(node)[:80]}")
        if "value" in node:
            return node["value"]
        if "float" in node:
            return float(node["float"])
        if "list" in node or "tuple" in node:
            items = [self.decode(v) for v in node.get("list", node.get("tuple"))]
            return items if "list" in node else tuple(items)
        if "dict" in node:
            return {k: self.decode(v) for k, v in node["dict"].items()}
        ref = next(node[k] for k in ("tensor", "generator", "model", "dataclass") if k in node)
        if ref not in self._made:
            self._made[ref] = self._make(node, ref)
        return self._made[ref]

    def _make(self, node: dict, ref: str) -> Any:
        if "tensor" in node:
            return self._tensor(ref).clone().requires_grad_(bool(node["grad"]))
        if "generator" in node:
            generator = torch.Generator()
            generator.set_state(self._tensor(ref))
            return generator
        if "model" in node:
            from interplab.models import load, with_weights

            if node.get("shipped"):
                return load(node["name"], device="cpu")
            prefix = f"{ref}/"
            weights = {k.removeprefix(prefix): v for k, v in self.tensors.items() if k.startswith(prefix)}
            return with_weights(node["name"], weights)
        module, _, qualname = node["class"].partition(":")
        if not (module == "interplab" or module.startswith("interplab.")):
            raise CaseFileError(f"a case file may only name interplab's classes, not {node['class']!r}")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not dataclasses.is_dataclass(cls):
            raise CaseFileError(f"{node['class']} is not a dataclass")
        return cls(**{name: self.decode(v) for name, v in node["fields"].items()})
