"""Recorded answers: what a notebook's checks save, and what the trusted grader reads back.

A graded cell never decides pass or fail inside the student's kernel, where the student can
redefine anything. It only *records* what the student's function returned on each input case.
The recording is plain data, safetensors plus strings, so the grader can read it without
running any of the student's code: no pickle, bounded sizes, checked types.

One file per exercise: ``<dir>/<exercise>.safetensors`` with a tensor ``case<i>`` for each
case that returned a value, and metadata ``case<i>.error`` for each case that raised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

#: A recorded answer file larger than this is not read: no exercise needs more.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: The dtypes a recorded answer may hold: what exercises return. Others (float8, complex,
#: unsigned beyond uint8) are refused on reading, as some comparisons are not implemented for
#: them and would crash the grader, and complex values would be compared by real part only.
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint8, torch.bool)
#: Error messages are cut to this many characters before they are stored.
MAX_ERROR_CHARS = 2000
_EXERCISE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class AnswerError(ValueError):
    """A recorded answer that the grader refuses to read."""


@dataclass(frozen=True)
class Case:
    """What one call of the student's function gave: a tensor, or the error it raised."""

    value: torch.Tensor | None
    error: str | None = None


def as_tensor(value: Any) -> torch.Tensor:
    """Turn what an exercise returned into a CPU tensor, or say plainly why it can't be stored.

    Exercises return tensors, numbers or lists of numbers; anything else (a FactoredMatrix,
    a string, a custom object whose ``__eq__`` lies) is refused, because the grader compares
    numbers and never calls a method of a student's object.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().contiguous()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(value.copy())
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return torch.tensor(value.item() if isinstance(value, (np.number, np.bool_)) else value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (bool, int, float, np.number)) for v in value
    ):
        return torch.tensor([float(v) for v in value])
    kind = type(value).__name__
    hint = " (did you forget to `return` it?)" if value is None else ""
    raise TypeError(f"returned a {kind}{hint}; expected a tensor or a number")


def _path(directory: Path, exercise: str) -> Path:
    if not _EXERCISE_NAME.match(exercise):
        raise AnswerError(f"not an exercise name: {exercise!r}")
    return Path(directory) / f"{exercise}.safetensors"


def save_cases(directory: Path, exercise: str, cases: list[Case]) -> None:
    """Write one exercise's cases, replacing what an earlier run of the cell wrote."""
    tensors = {f"case{i}": c.value for i, c in enumerate(cases) if c.value is not None}
    metadata = {"n_cases": str(len(cases))}
    for i, c in enumerate(cases):
        if c.error is not None:
            metadata[f"case{i}.error"] = c.error[:MAX_ERROR_CHARS]
    path = _path(directory, exercise)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


def load_cases(directory: Path, exercise: str) -> list[Case] | None:
    """Read one exercise's cases back; ``None`` when nothing was recorded for it.

    Raises AnswerError on a file that is too big, unreadable or inconsistent, so that a
    tampered recording costs its author the exercise and never crashes the grader.
    """
    path = _path(directory, exercise)
    if any(p.is_symlink() for p in (path, path.parent, path.parent.parent)):
        raise AnswerError("the recorded answer is a symbolic link, which the grader does not follow")
    if not path.exists():
        return None
    if not path.is_file():
        raise AnswerError("the recorded answer is not a regular file")
    if path.stat().st_size > MAX_ANSWER_BYTES:
        raise AnswerError(f"the recorded answer is {path.stat().st_size} bytes, over the limit")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            n_cases = int(metadata.get("n_cases", "-1"))
            if not 0 < n_cases <= 1000:
                raise AnswerError("the recorded answer has no valid case count")
            cases = []
            for i in range(n_cases):
                error = metadata.get(f"case{i}.error")
                error = None if error is None else error[:MAX_ERROR_CHARS]  # the kernel may have written any length
                key = f"case{i}"
                value = f.get_tensor(key) if key in f.keys() else None
                if (value is None) == (error is None):
                    raise AnswerError(f"case {i} must hold exactly one of a value or an error")
                if value is not None and value.dtype not in DTYPES:
                    raise AnswerError(f"case {i} holds a tensor of dtype {value.dtype}; expected real numbers")
                cases.append(Case(value, error))
    except AnswerError:
        raise
    except Exception as exc:  # a corrupt file: whatever safetensors raised
        raise AnswerError(f"the recorded answer could not be read ({exc.__class__.__name__})")
    return cases


def is_finite(t: torch.Tensor) -> bool:
    """True when a tensor holds no NaN or infinity (integers and bools always do)."""
    if t.is_floating_point() or t.is_complex():
        return bool(torch.isfinite(t).all())
    return True


def close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    """Same shape and values within tolerance, compared in float64 on plain tensors."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    if a.numel() == 0:
        return True
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    return bool(torch.allclose(a64, b64, rtol=rtol, atol=atol)) and is_finite(a)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest elementwise gap relative to the reference's scale (for messages only)."""
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    scale = max(float(b64.abs().max()), 1e-12) if b64.numel() else 1.0
    gap = float((a64 - b64).abs().max()) if b64.numel() else 0.0
    return gap / scale if math.isfinite(gap) else math.inf
