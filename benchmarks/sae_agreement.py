"""Do lab 04's SAE metrics agree with SAELens's own evaluation? On the same weights and the same activations.

    python benchmarks/sae_agreement.py [--steps 600]

Trains an L1 ReLU SAE and a TopK SAE (k=16) with the course's ``train_sae`` (the solution notebook's, as in
``sae_throughput.py``) on the tiny LM's ``blocks.0.hook_mlp_out`` activations (600 documents, BOS left
out), and measures them on 100 held-out documents (6,300 tokens) twice:

- the course's way, in this venv: L0 = mean over tokens of the number of non-zero latents; explained
  variance = the notebook's ``explained_variance``, 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over
  all tokens; MSE = mean over tokens of ||x - x_hat||^2 (the loss's reconstruction term); fire frequency
  = the notebook's ``fire_frequencies`` (fraction of tokens where a latent is > 0); dead = frequency 0;
- SAELens 6.54.12's way, in the side venv (``benchmarks/.saelens-venv``, built on first use, see
  ``sae_throughput.py``): the weights are saved in SAELens's own disk format (``cfg.json`` +
  ``sae_weights.safetensors``) and loaded with ``sae_lens.SAE.load_from_disk``, which gives a
  ``StandardSAE`` / ``TopKSAE``; the metrics are ``sae_lens.run_evals`` with
  ``compute_sparsity_metrics``, ``compute_variance_metrics`` and ``compute_featurewise_density_statistics``.
  ``run_evals`` gets the activations from a model by ``run_with_cache``; here a stand-in "model" returns
  the stored activations of the documents it is given (10 documents a batch, 10 batches), so SAELens's
  metric code itself runs unchanged on exactly the course's activations.

It asserts that SAELens's ``encode`` / ``decode`` give the course's ``encode`` / ``decode`` outputs on the
same weights, and that the metrics agree where the definitions match, within these tolerances:

- latents and reconstructions: ``torch.allclose(rtol=1e-5, atol=1e-5)``. Same float32 formula; SAELens
  subtracts ``b_dec * True`` and takes TopK before the ReLU (the course: ReLU, then TopK), which give the
  same values; only the order of float operations could differ (latents are O(1-10)).
- L0, fire frequencies, dead latents: exact (up to float32 rounding of a mean of 6,300 integers, 1e-4
  on L0, 1e-6 on a frequency): they count non-zero latents, and the latents agree, zeros included.
- explained variance: 1e-5 absolute. SAELens 6.54 (``ExplainedVarianceCalculator`` in
  ``sae_lens/evals.py``) computes 1 - E[||x - x_hat||^2] / (E[||x||^2] - ||E[x]||^2), which is the course's
  definition (sum ||x - mean||^2 = N (E||x||^2 - ||E x||^2)); it accumulates in float64 across batches,
  the course in float32 over all tokens at once, and float32's pairwise sums of ~8e5 terms err by ~1e-6
  relative.
- MSE: 1e-5 relative, for the same reason.

Where the definitions differ it prints by how much: SAELens's ``explained_variance_legacy`` (the mean
over tokens of 1 - ||x - x_hat||^2 / ||x - batch mean||^2, its old formula, which depends on the eval
batch) and its training-time notion of a dead latent (``SAETrainer.dead_neurons``: no firing for
``dead_feature_window`` = 1000 training steps), which an evaluation of frozen weights has no counterpart of.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sae_throughput import (D_IN, D_SAE, K, SAE_LENS_VERSION, ensure_side_venv,  # noqa: E402
                            load_course_functions, make_activations, thread_env)

TRAIN_DOCS, TEST_DOCS = 600, 100
EVAL_BATCH_DOCS = 10
HOOK = "blocks.0.hook_mlp_out"  # interplab.sae.LM_HOOK; the worker (side venv) cannot import interplab
TOLERANCE = {"allclose_rtol": 1e-5, "allclose_atol": 1e-5, "l0": 1e-4, "frequency": 1e-6,
             "explained_variance": 1e-5, "mse_relative": 1e-5}


# ----------------------------------------------------------------------------------------------------
# SAELens's side (runs in the side venv)


def saelens_worker(folder: Path) -> dict:
    import torch
    from safetensors.torch import load_file
    from sae_lens import SAE, StandardSAE, TopKSAE, run_evals
    from sae_lens.evals import EvalConfig
    from sae_lens.training.activation_scaler import ActivationScaler

    torch.set_num_threads(1)
    acts = load_file(str(folder / "acts.safetensors"))["acts"]  # [doc, pos, d_in]
    n_docs, n_pos, _ = acts.shape

    class StoredActivationsModel:
        """Stands in for the LM: "running" documents returns their stored activations at the hook."""

        def run_with_cache(self, tokens, names_filter, **kwargs):
            return None, {names_filter[0]: acts[tokens[:, 0]]}

    class DocumentStore:
        """Stands in for SAELens's ActivationsStore: hands out the test documents in order, once each."""

        context_size = n_pos
        store_batch_size_prompts = EVAL_BATCH_DOCS

        def __init__(self):
            self.next = 0

        def get_batch_tokens(self, n):
            docs = torch.arange(self.next, self.next + n)
            self.next += n
            return docs[:, None].expand(n, n_pos)  # "token ids": the document's index, at every position

    results = {}
    for kind, expected_class in (("l1", StandardSAE), ("topk", TopKSAE)):
        sae = SAE.load_from_disk(str(folder / kind))
        course = load_file(str(folder / kind / "course.safetensors"))
        with torch.no_grad():
            z = sae.encode(acts.flatten(0, 1))
            x_hat = sae.decode(z)
        # allclose is judged here; the course's side reads the verdicts
        close = dict(rtol=TOLERANCE["allclose_rtol"], atol=TOLERANCE["allclose_atol"])
        metrics, feature_metrics = run_evals(
            sae, DocumentStore(), StoredActivationsModel(), ActivationScaler(),
            EvalConfig(batch_size_prompts=EVAL_BATCH_DOCS, n_eval_sparsity_variance_batches=n_docs // EVAL_BATCH_DOCS,
                       compute_sparsity_metrics=True, compute_variance_metrics=True,
                       compute_featurewise_density_statistics=True),
            exclude_special_tokens=False,
        )
        density = torch.tensor(feature_metrics["feature_density"])
        results[kind] = {
            "class": type(sae).__name__,
            "expected_class": expected_class.__name__,
            "encode_allclose": torch.allclose(z, course["z"], **close),
            "encode_max_abs_diff": (z - course["z"]).abs().max().item(),
            "same_zero_pattern": bool(((z != 0) == (course["z"] != 0)).all()),
            "decode_allclose": torch.allclose(x_hat, course["x_hat"], **close),
            "decode_max_abs_diff": (x_hat - course["x_hat"]).abs().max().item(),
            "l0": metrics["sparsity"]["l0"],
            "explained_variance": metrics["reconstruction_quality"]["explained_variance"],
            "explained_variance_legacy": metrics["reconstruction_quality"]["explained_variance_legacy"],
            "mse": metrics["reconstruction_quality"]["mse"],
            "dead": int((density == 0).sum()),
            "frequency_max_abs_diff": (density - course["frequency"].double()).abs().max().item(),
            "tokens": n_docs * n_pos,
        }
    return results


# ----------------------------------------------------------------------------------------------------
# The course's side (this venv)


def course_side(folder: Path, steps: int) -> dict:
    import torch
    from safetensors.torch import save_file

    from interplab.sae import LM_HOOK, SAE

    assert LM_HOOK == HOOK
    ns = load_course_functions()
    acts = make_activations(TRAIN_DOCS + TEST_DOCS)
    train, test = acts[:TRAIN_DOCS].flatten(0, 1), acts[TRAIN_DOCS:].contiguous()
    save_file({"acts": test}, str(folder / "acts.safetensors"))
    x = test.flatten(0, 1)

    results = {}
    for kind, k, l1_coeff, architecture in (("l1", None, 0.3, "standard"), ("topk", K, 0.0, "topk")):
        sae = SAE.init(D_IN, D_SAE, k=k, generator=torch.Generator().manual_seed(1))
        ns["train_sae"](sae, train, steps, 512, 3e-3, l1_coeff, torch.Generator().manual_seed(0))
        with torch.no_grad():
            z = ns["encode"](sae, x)
            x_hat = ns["decode"](sae, z)
            frequency = ns["fire_frequencies"](z)
            results[kind] = {
                "l0": (z != 0).float().sum(-1).mean().item(),
                "explained_variance": ns["explained_variance"](x, x_hat).item(),
                "mse": (x - x_hat).pow(2).sum(-1).mean().item(),
                "dead": int((frequency == 0).sum()),
            }
        out = folder / kind
        out.mkdir()
        weights = {name: getattr(sae, name).detach().contiguous() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
        save_file(weights, str(out / "sae_weights.safetensors"))
        cfg = {"architecture": architecture, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
               "apply_b_dec_to_input": True, "normalize_activations": "none",
               # without sae_lens_version, load_from_disk reads the file as a pre-6.0 config
               "metadata": {"hook_name": HOOK, "sae_lens_version": SAE_LENS_VERSION}}
        if k is not None:  # the course's decoder rows are unit norm: nothing to rescale by
            cfg |= {"k": k, "rescale_acts_by_decoder_norm": False}
        (out / "cfg.json").write_text(json.dumps(cfg))
        save_file({"z": z.contiguous(), "x_hat": x_hat.contiguous(), "frequency": frequency.contiguous()},
                  str(out / "course.safetensors"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of each course SAE (batch 512)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(saelens_worker(Path(args.worker))))
        return

    start = time.perf_counter()
    side = ensure_side_venv()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        course = course_side(folder, args.steps)
        done = subprocess.run([str(side), str(Path(__file__).resolve()), "--worker", str(folder)],
                              env=thread_env(1), capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the SAELens side failed:\n{done.stderr[-4000:]}")
        lens = json.loads(done.stdout.strip().splitlines()[-1])

    failures = []

    def check(ok: bool, what: str) -> str:
        if not ok:
            failures.append(what)
        return "ok" if ok else "FAIL"

    for kind in ("l1", "topk"):
        c, s = course[kind], lens[kind]
        print(f"\n{kind} SAE (d_sae {D_SAE}{f', k {K}' if kind == 'topk' else ''}), {s['tokens']:,} held-out tokens; "
              f"SAELens loaded it as {s['class']}  {check(s['class'] == s['expected_class'], f'{kind} class')}")
        print(f"  encode: allclose {s['encode_allclose']}, max |diff| {s['encode_max_abs_diff']:.2e}, same zeros "
              f"{s['same_zero_pattern']}  {check(s['encode_allclose'] and s['same_zero_pattern'], f'{kind} encode')}")
        print(f"  decode: allclose {s['decode_allclose']}, max |diff| {s['decode_max_abs_diff']:.2e}  "
              f"{check(s['decode_allclose'], f'{kind} decode')}")
        print(f"  {'metric':28s} {'course':>12s} {'SAELens':>12s} {'|diff|':>10s} {'tolerance':>10s}")
        mse_tol = TOLERANCE["mse_relative"] * c["mse"]
        for name, label, tol in (("l0", "L0", TOLERANCE["l0"]),
                                 ("explained_variance", "explained variance", TOLERANCE["explained_variance"]),
                                 ("mse", "MSE (sum over d_in)", mse_tol),
                                 ("dead", "dead latents (frequency 0)", 0)):
            diff = abs(c[name] - s[name])
            print(f"  {label:28s} {c[name]:12.6f} {s[name]:12.6f} {diff:10.2e} {tol:10.1e}  "
                  f"{check(diff <= tol and not math.isnan(diff), f'{kind} {name}')}")
        frequency_ok = s["frequency_max_abs_diff"] <= TOLERANCE["frequency"]
        print(f"  {'fire frequency (per latent)':28s} {'':12s} {'':12s} {s['frequency_max_abs_diff']:10.2e} "
              f"{TOLERANCE['frequency']:10.1e}  {check(frequency_ok, f'{kind} frequency')}")
        legacy = s["explained_variance_legacy"]
        print(f"  differs by definition: SAELens explained_variance_legacy {legacy:.6f} "
              f"(course EV - legacy = {c['explained_variance'] - legacy:+.6f})")
    print("\nalso differs by definition: SAELens's trainer calls a latent dead after dead_feature_window (1000) "
          "training steps without firing; an evaluation of frozen weights has no such count.")
    verdict = "all agree" if not failures else "DISAGREE: " + ", ".join(failures)
    print(f"\n{verdict} ({time.perf_counter() - start:.0f} s)")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
