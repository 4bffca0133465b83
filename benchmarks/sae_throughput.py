"""SAE training throughput: the course's ``train_sae`` against SAELens's trainer, on the same activations.

    python benchmarks/sae_throughput.py [--steps 50] [--batch 4096] [--repeats 5] [--threads 1 2]
    python benchmarks/sae_throughput.py --build-venv      # only build the SAELens side venv

Both sides train an SAE of the same size (d_in 128, d_sae 512) on the same activations (the tiny LM's
``blocks.0.hook_mlp_out`` on 600 corpus documents, BOS left out: 37,800 activations), with the same batch
size (default 4096, SAELens's default ``train_batch_size_tokens``), the same number of steps and Adam at
the same lr (default 3e-4, SAELens's default), as an L1 ReLU SAE and as a TopK SAE (k=16), with 1 and then
2 torch threads. The figure is training activations per second over the optimisation steps only.

The two sides run in different environments, because SAELens 6.54 requires ``transformer-lens<4`` and the
course pins 4.3.0 (TL4 has no ``transformer_lens.HookedTransformer``, which ``import sae_lens`` needs):

- the course side runs in this venv, with the functions students write taken from the solution notebook
  (``solutions/04_sae/sparse_autoencoders.ipynb``: its ``solution: true`` cells, and the locked cells that
  only define functions, such as ``encode``);
- the SAELens side runs in a side venv, ``benchmarks/.saelens-venv`` (git-ignored), built on the first
  run (about 2 minutes) or with ``--build-venv``. ``SAELENS_VENV`` moves it and ``SAELENS_TORCH`` changes
  its torch requirement (default ``torch==2.13.0``, the CPU wheel).

This process makes the activations with the course's tiny LM and writes them to a safetensors file in a
temporary directory; one worker process per implementation (this venv's python for the course, the side
venv's for SAELens) reads that file and then trains what it is told, one job at a time.

What is timed. The first job of each (kind, threads) trains 3 steps to warm up. Each job then builds a
fresh SAE and times (a) the training call with ``steps=0`` (set-up only: for the course, b_dec's mean
initialisation and building Adam; for SAELens, ``fit()``'s pre- and post-loop work) and (b) the same call
with ``--steps`` steps; steps time = (b) - (a). The two workers take turns, repeat after repeat (course
first, then SAELens first, ...), so both see the same machine load. The table gives activations per
second of wall-clock for the best and the median repeat, and per CPU-second (``time.process_time`` of
the worker, all its threads; median repeat): on a shared machine other processes stretch the wall clock
but hardly the CPU time, so with 1 thread the CPU figure is the one to compare.

- course: ``train_sae(sae, acts, steps, batch, lr, l1_coeff, generator)``, the notebook's own loop:
  sample a batch with ``torch.randint``, loss, backward, drop the decoder gradient's parallel part, Adam
  step, renormalise the decoder rows.
- SAELens: ``SAETrainer.fit()`` (``sae_lens.training.sae_trainer``, the trainer that
  ``LanguageModelSAETrainingRunner`` runs) on a ``StandardTrainingSAE`` / ``TopKTrainingSAE`` with
  SAELens's defaults, fed by an in-memory ``DataProvider`` (an iterator of batches, sampled with
  ``torch.randint`` exactly like the course). Per step that is ``training_forward_pass`` (MSE summed over
  d_in, mean over batch; L1 weighted by decoder-row norms / TopK with ``rescale_acts_by_decoder_norm``;
  TopK's AuxK term only once latents have been dead for ``dead_feature_window`` = 1000 steps), the
  firing statistics, ``backward``, ``clip_grad_norm_(1.0)``, ``Adam.step``, ``zero_grad``, the lr and
  coefficient schedulers. SAELens 6 normalises no decoder rows and removes no parallel gradient (it puts
  the decoder norm in the penalty instead), so neither is timed on its side. No wandb, no checkpoints;
  tqdm is silenced with ``TQDM_DISABLE=1`` (its bar updates every 100 steps).

Run it on an otherwise idle machine if you can; the 1-minute load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDE_VENV = Path(os.environ.get("SAELENS_VENV", ROOT / "benchmarks" / ".saelens-venv"))
SAE_LENS_VERSION = "6.54.12"
# transformer-lens 3.9.0 is what pip resolved sae-lens 6.54.12's "transformer-lens>=2.16.1,<4.0.0" to
SIDE_REQUIREMENTS = [os.environ.get("SAELENS_TORCH", "torch==2.13.0"), f"sae-lens=={SAE_LENS_VERSION}",
                     "transformer-lens==3.9.0"]
BUILD_COMMAND = "python benchmarks/sae_throughput.py --build-venv"

D_IN, D_SAE, K = 128, 512, 16
TRAIN_DOCS, CORPUS_SEED = 600, 404
WARMUP_STEPS = 3


# ----------------------------------------------------------------------------------------------------
# The side venv


def side_python() -> Path:
    return SIDE_VENV / "bin" / "python"


def ensure_side_venv(build: bool = True) -> Path:
    """The side venv's python, building the venv first if it is missing (or half-built)."""
    ready = SIDE_VENV / ".ready"
    if ready.exists():
        return side_python()
    if not build:
        sys.exit(f"the SAELens side venv {SIDE_VENV} is missing; build it with:\n    {BUILD_COMMAND}")
    print(f"building the SAELens side venv {SIDE_VENV} ({', '.join(SIDE_REQUIREMENTS)}) ...", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SIDE_VENV)], check=True)
    pip = [str(side_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # torch first and on its own, as the Makefile does, so that pip never picks a CUDA build for sae-lens
    subprocess.run([*pip, SIDE_REQUIREMENTS[0]], check=True)
    subprocess.run([*pip, *SIDE_REQUIREMENTS[1:]], check=True)
    ready.write_text(" ".join(SIDE_REQUIREMENTS) + "\n")
    print(f"built the side venv in {time.perf_counter() - start:.0f} s", flush=True)
    return side_python()


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TQDM_DISABLE="1", WANDB_MODE="disabled", PYTHONPATH=str(ROOT))
    return env


# ----------------------------------------------------------------------------------------------------
# The course's functions, from the solution notebook


def load_course_functions() -> dict:
    """The functions lab 04 has students write, as the solution notebook defines them (its answer
    cells and the cells that only define functions, such as ``encode``), via the tests' loader."""
    sys.path.insert(0, str(ROOT / "tests"))
    from course import solution_functions

    from interplab.sae import SAE

    return solution_functions("04_sae", SAE=SAE)


def make_activations(n_docs: int = TRAIN_DOCS, seed: int = CORPUS_SEED):
    """The tiny LM's ``LM_HOOK`` activations on ``n_docs`` corpus documents, BOS dropped: ``[doc, pos, 128]``."""
    import torch

    from interplab import corpus, models
    from interplab.sae import lm_activations

    model = models.load("tiny-lm", "cpu")
    with torch.no_grad():
        return lm_activations(model, corpus.generate(n_docs, seed=seed).tokens)[:, 1:].contiguous()


# ----------------------------------------------------------------------------------------------------
# Workers: one per implementation, kept alive, told what to train one line of JSON at a time


class Stopwatch:
    """Wall-clock and CPU seconds (this process, all its threads) spent inside ``with``."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


def _recon_mse(encode, decode, acts) -> float:
    import torch

    with torch.no_grad():
        return (acts - decode(encode(acts))).pow(2).sum(-1).mean().item()


def course_trainer(acts):
    """``train(job, steps)``: a fresh course SAE trained for ``steps``; returns (seconds in train_sae, MSE after)."""
    import torch

    from interplab.sae import SAE

    ns = load_course_functions()

    def train(job: dict, steps: int) -> tuple[Stopwatch, float]:
        k = K if job["kind"] == "topk" else None
        l1 = job["l1"] if job["kind"] == "l1" else 0.0
        sae = SAE.init(D_IN, D_SAE, k=k, generator=torch.Generator().manual_seed(1))
        generator = torch.Generator().manual_seed(0)
        with Stopwatch() as watch:
            ns["train_sae"](sae, acts, steps, job["batch"], job["lr"], l1, generator)
        return watch, _recon_mse(lambda x: ns["encode"](sae, x), lambda z: ns["decode"](sae, z), acts)

    return train


def saelens_trainer(acts):
    """``train(job, steps)``: a fresh SAELens training SAE put through ``SAETrainer.fit()``; (seconds in fit, MSE)."""
    import torch
    from sae_lens import (SAETrainer, StandardTrainingSAE, StandardTrainingSAEConfig, TopKTrainingSAE,
                          TopKTrainingSAEConfig)
    from sae_lens.config import SAETrainerConfig

    def batches(batch: int, generator: torch.Generator):
        while True:
            yield acts[torch.randint(0, acts.shape[0], (batch,), generator=generator)]

    def train(job: dict, steps: int) -> tuple[Stopwatch, float]:
        torch.manual_seed(1)
        if job["kind"] == "topk":
            sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))
        else:
            sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=job["l1"]))
        with torch.no_grad():  # as the course does (and SAELens 5's b_dec_init_method="mean"); not timed
            sae.b_dec.copy_(acts.mean(0))
        trainer = SAETrainer(
            cfg=SAETrainerConfig(total_training_samples=steps * job["batch"], train_batch_size_samples=job["batch"],
                                 lr=job["lr"], lr_end=job["lr"] / 10, device="cpu"),  # lr_end: the runner's default
            sae=sae,
            data_provider=batches(job["batch"], torch.Generator().manual_seed(0)),
        )
        # only fit() is timed: building the trainer (and its Adam) is set-up, as building the SAE is
        with Stopwatch() as watch:
            trainer.fit()
        sae.eval()
        return watch, _recon_mse(sae.encode, sae.decode, acts)

    return train


def worker(impl: str, acts_path: str) -> None:
    """Reads jobs from stdin, one JSON line each; answers each with one JSON line on stdout."""
    import torch
    from safetensors.torch import load_file

    acts = load_file(acts_path)["acts"]
    train = (course_trainer if impl == "course" else saelens_trainer)(acts)
    warm = set()
    print(json.dumps({"ready": impl}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        torch.set_num_threads(job["threads"])
        if (job["kind"], job["threads"]) not in warm:
            train(job, WARMUP_STEPS)
            warm.add((job["kind"], job["threads"]))
        setup, _ = train(job, 0)
        total, mse = train(job, job["steps"])
        print(json.dumps({"step_seconds": total.wall - setup.wall, "step_cpu_seconds": total.cpu - setup.cpu,
                          "setup_seconds": setup.wall, "mse": mse}), flush=True)


class Worker:
    def __init__(self, python: Path, impl: str, acts: Path, threads: int):
        self.impl = impl
        self.process = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker", impl, "--acts", str(acts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=thread_env(threads))
        self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            sys.exit(f"the {self.impl} worker died (exit {self.process.returncode}); its error is above")
        return json.loads(line)

    def run(self, job: dict) -> dict:
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# ----------------------------------------------------------------------------------------------------
# The driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kinds", nargs="+", default=["l1", "topk"], choices=["l1", "topk"])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--l1", type=float, default=0.3, help="L1 coefficient of the L1 ReLU SAE (both sides)")
    parser.add_argument("--build-venv", action="store_true", help="only build the SAELens side venv")
    parser.add_argument("--worker", choices=["course", "saelens"], help=argparse.SUPPRESS)
    parser.add_argument("--acts", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(args.worker, args.acts)
        return
    if args.build_venv:
        ensure_side_venv()
        return

    side = ensure_side_venv()
    from safetensors.torch import save_file

    load_course_functions()  # fail early, before the slow part, if the notebook is not usable
    results: dict[tuple[str, str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        acts_path = Path(tmp) / "acts.safetensors"
        acts = make_activations().flatten(0, 1)
        save_file({"acts": acts.contiguous()}, str(acts_path))
        print(f"{acts.shape[0]:,} activations of d_in {acts.shape[1]}; d_sae {D_SAE}, k {K}; batch {args.batch}; "
              f"{args.repeats} repeats of {args.steps} timed steps, the two implementations taking turns; "
              f"Adam lr {args.lr}, L1 coefficient {args.l1}")
        print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} CPUs", flush=True)
        workers = {impl: Worker(python, impl, acts_path, max(args.threads))
                   for impl, python in (("course", Path(sys.executable)), ("saelens", side))}
        try:
            for threads in args.threads:
                for kind in args.kinds:
                    job = {"kind": kind, "threads": threads, "steps": args.steps, "batch": args.batch,
                           "lr": args.lr, "l1": args.l1}
                    for repeat in range(args.repeats):
                        order = ("course", "saelens") if repeat % 2 == 0 else ("saelens", "course")
                        for impl in order:
                            results.setdefault((impl, kind, threads), []).append(workers[impl].run(job))
                    for impl in ("course", "saelens"):
                        runs = results[(impl, kind, threads)]
                        steps = ", ".join(f"{r['step_seconds']:.2f}" for r in runs)
                        print(f"  {impl:8s} {kind:5s} {threads} thr: steps {steps} s; set-up "
                              f"{statistics.median(r['setup_seconds'] for r in runs) * 1e3:.1f} ms; "
                              f"recon MSE after {runs[-1]['mse']:.2f}", flush=True)
        finally:
            for w in workers.values():
                w.close()
        print(f"load after: {os.getloadavg()[0]:.2f} (1-min average)\n")

    # wall: activations per second of wall-clock (best and median repeat); cpu: per CPU-second of the worker's
    # threads (median), which other processes on a shared machine disturb far less than the wall clock
    n = args.steps * args.batch
    print(f"{'implementation':14s} {'kind':5s} {'threads':>7s} {'acts/s best':>12s} {'acts/s median':>14s} "
          f"{'acts/CPU-s':>11s}   course/SAELens: {'best':>5s} {'median':>7s} {'CPU':>6s}")
    for (impl, kind, threads), runs in results.items():
        wall = [r["step_seconds"] for r in runs]
        cpu = statistics.median(r["step_cpu_seconds"] for r in runs)
        ratios = ""
        if impl == "course":
            other = results[("saelens", kind, threads)]
            other_wall = [r["step_seconds"] for r in other]
            other_cpu = statistics.median(r["step_cpu_seconds"] for r in other)
            best_ratio = min(other_wall) / min(wall)
            median_ratio = statistics.median(other_wall) / statistics.median(wall)
            ratios = f"{'':17s}{best_ratio:5.2f}x {median_ratio:6.2f}x {other_cpu / cpu:5.2f}x"
        print(f"{impl:14s} {kind:5s} {threads:7d} {n / min(wall):12,.0f} {n / statistics.median(wall):14,.0f} "
              f"{n / cpu:11,.0f} {ratios}")


if __name__ == "__main__":
    main()
