"""Shared test set-up, applied before any test module imports torch or transformers.

One passive CPU thread: the test machine is shared, and spinning OpenMP threads turn
20 ms steps into seconds. HF_HUB_OFFLINE: tests must never download anything.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
