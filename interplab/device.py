"""Where tensors live: the fastest accelerator present, or the one you ask for."""

import torch


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return kind == "cpu"


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """cuda if present, else mps, else cpu; `preferred` (e.g. "cpu", "cuda:1") overrides.

    Asking for a device that is not there is an error rather than a silent fallback,
    so a notebook that meant to use the GPU cannot quietly run for hours on the CPU.
    """
    if preferred is None:
        return torch.device(next(k for k in ("cuda", "mps", "cpu") if _available(k)))
    device = torch.device(preferred)
    if not _available(device.type):
        raise RuntimeError(
            f"device {str(device)!r} was requested but is not available here. "
            "Pass device=None to use the best available one, or device='cpu'."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"device {str(device)!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist."
        )
    return device
