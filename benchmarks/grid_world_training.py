"""How long the shipped world model takes to train here, without training it all.

    python benchmarks/grid_world_training.py [--steps 100]

Times ``--steps`` training steps and the probe table of ``interplab.train.grid_world`` on one thread,
and prints the projected time of the full run (its default steps plus the probe table). The full run
(`python -m interplab.train.grid_world`) writes its own wall time into ``training_log.json``; this is the
quick check that it stays within its budget (5 minutes on a 2-core machine under light load). The load
average is printed too: on a shared machine the same run can take several times longer.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from interplab.train import grid_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    model, _ = grid_world.train(args.steps, progress=False)
    per_step = (time.perf_counter() - start) / args.steps
    start = time.perf_counter()
    grid_world.probe_table(model, grid_world.build_model(1).eval(), seed=0)
    table = time.perf_counter() - start
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"{per_step * 1000:.0f} ms per training step (batch {grid_world.BATCH_SIZE}), probe table {table:.0f} s")
    print(f"projected full run: {grid_world.STEPS} steps + probe table = {(grid_world.STEPS * per_step + table) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
