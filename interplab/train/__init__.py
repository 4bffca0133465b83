"""Training scripts for the models the course ships (deterministic, a few minutes on a CPU each)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from tqdm import tqdm
from transformer_lens import TransformerBridge

from interplab.models import SHIPPED, save


def progress_bar(iterable: Iterable, desc: str, show: bool = True, **kwargs) -> tqdm:
    """A progress bar over ``iterable``. ``show=False`` hides it, and so does ``TQDM_DISABLE=1``:
    tqdm reads its environment only for keywords not passed, so ``disable`` is passed only to hide."""
    return tqdm(iterable, desc=desc, **kwargs, **({} if show else {"disable": True}))


def train_and_save(
    argv: list[str] | None,
    doc: str,
    name: str,
    steps: int,
    train: Callable[[int, int], tuple[TransformerBridge, dict]],
    probe_table: Callable[[TransformerBridge, TransformerBridge, int], dict] | None = None,
    build_model: Callable[[int], TransformerBridge] | None = None,
) -> tuple[dict, Path]:
    """What every training script's ``main`` does: read ``--out --steps --seed``, train on one thread
    (bit-identical weights run to run on one machine, and no thrashing on a shared CPU), save the model beside its
    ``training_log.json``. Where the script has a ``probe_table``, the log holds it: the trained model read beside an
    untrained one of the next seed (``build_model``), the baseline a probe must beat. Returns the log and the
    folder, for the script to print its summary."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED[name], help="output folder")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, log = train(args.steps, args.seed)
    if probe_table is not None:
        log["probes"] = probe_table(model, build_model(args.seed + 1).eval(), args.seed)
    save(model, args.out)
    (args.out / "training_log.json").write_text(json.dumps(log) + "\n")
    return log, args.out
