"""Does module 08's attribution graph agree with Anthropic's circuit-tracer? Same tiny-lm weights, same transcoders.

    python benchmarks/circuit_tracer.py [--venv PATH]

circuit-tracer (PyPI) subclasses TransformerLens 3's ``HookedTransformer`` and pins an older ``transformers``, so it
cannot import beside the course's TransformerLens 4 (its issue #115). It runs here in a side venv outside the
repository (``--venv``, default ``$CIRCUIT_TRACER_VENV`` or ``~/.cache/interplab/circuit-tracer-venv``), built on
first use with ``python3 -m venv`` and ``pip install circuit-tracer``. The side venv cannot import ``interplab``, so:

1. this venv (TransformerLens 4) exports tiny-lm as the ``TransformerBridge`` computes it in compatibility mode
   (LayerNorm weights folded: ``W_E, W_pos, W_Q ... W_U`` in ``HookedTransformer``'s state-dict names, with
   ``normalization_type="LNPre"``), the shipped transcoders (``interplab/shipped/tiny-lm-transcoders``, TopK
   k=12) and, for each prompt, ``interplab.attribution.attribution_graph``'s nodes and adjacency;
2. the side venv loads them into ``circuit_tracer.ReplacementModel`` (TransformerLens backend, a ``TranscoderSet``
   of ``SingleLayerTranscoder`` with ``TopK`` reading ``ln2.hook_normalized`` and writing ``hook_mlp_out``),
   runs ``circuit_tracer.attribute`` on the same tokens and target and saves its ``Graph``;
3. this venv matches nodes (feature (layer, pos, index), error (layer, pos), token (pos), logit) and prints what
   agrees and by how much: the logits, the set of active features, the adjacency entries between matched nodes,
   each node's influence on the logit (both libraries' own formulas) and the top features by influence.

Known differences in definition, printed as such rather than hidden: circuit-tracer zeroes every feature at
position 0 (BOS) and its logit node is the target's logit minus the mean logit (its unembedding direction is
demeaned); the course keeps BOS features as nodes and attributes the raw logit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# This file's own name would shadow the circuit_tracer package: drop its folder from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
PROMPTS = ['anna said " i do not like the salty soup .', "the dog will eat a fresh", 'tom said " the cold rain']
DEFAULT_VENV = Path(os.environ.get("CIRCUIT_TRACER_VENV", Path.home() / ".cache/interplab/circuit-tracer-venv"))


# circuit-tracer's side (runs in the side venv; imports neither interplab nor TransformerLens 4)
def worker(folder: Path) -> None:
    from circuit_tracer import attribute
    from circuit_tracer.graph import compute_node_influence
    from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel
    from circuit_tracer.transcoder.activation_functions import TopK
    from circuit_tracer.transcoder.single_layer_transcoder import SingleLayerTranscoder, TranscoderSet
    from importlib.metadata import version

    from transformer_lens import HookedTransformerConfig
    from transformers import PreTrainedTokenizerFast

    torch.set_num_threads(1)
    exported = torch.load(folder / "model.pt")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(_tokenizer_for_transformers_4(folder))
    model = TransformerLensReplacementModel(HookedTransformerConfig(**exported["cfg"]), tokenizer=tokenizer)
    missing, unexpected = model.load_state_dict(exported["state"], strict=False)
    if unexpected or [k for k in missing if not k.endswith(("IGNORE", "mask"))]:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    layers = {}
    for layer, tc in enumerate(exported["transcoders"]):
        slt = SingleLayerTranscoder(tc["W_enc"].shape[0], tc["W_enc"].shape[1], TopK(tc["k"]), layer,
                                    device=torch.device("cpu"), dtype=torch.float32)
        slt.W_enc.data = tc["W_enc"].T.contiguous()  # circuit-tracer stores [d_tc, d_model]
        slt.W_dec.data, slt.b_enc.data, slt.b_dec.data = tc["W_dec"], tc["b_enc"], tc["b_dec"]
        layers[layer] = slt
    model._configure_replacement_model(TranscoderSet(layers, "ln2.hook_normalized", "hook_mlp_out"))
    results = []
    for case in exported["cases"]:
        tokens = torch.tensor(case["tokens"])
        start = time.perf_counter()
        graph = attribute(tokens, model, attribution_targets=torch.tensor([case["target"]]), batch_size=256)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            logits = model(tokens[None])[0, -1]
        logit_weights = torch.zeros(len(graph.adjacency_matrix))
        logit_weights[-1] = 1.0  # one target: its logit node is the last
        results.append(dict(influence=compute_node_influence(graph.adjacency_matrix.float(), logit_weights),
                            adjacency=graph.adjacency_matrix.float(), active=graph.active_features,
                            selected=graph.selected_features, activations=graph.activation_values,
                            logits=logits, seconds=seconds))
    torch.save(dict(results=results, versions=f"circuit-tracer {version('circuit-tracer')}, transformer-lens {version('transformer-lens')}"),
               folder / "circuit_tracer.pt")


def _tokenizer_for_transformers_4(folder: Path) -> Path:
    """tiny-lm's tokenizer, its class named as transformers 4 knows it: the shipped config says
    ``TokenizersBackend`` (transformers 5), which TransformerLens 3's ``AutoTokenizer`` call cannot find."""
    source, target = ROOT / "interplab/shipped/tiny-lm/tokenizer", folder / "tokenizer"
    shutil.copytree(source, target)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    return target


# The course's side (this venv)
def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"building {venv} (python3 -m venv; pip install circuit-tracer) ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "circuit-tracer"], check=True)
    return python


def export(folder: Path) -> list[dict]:
    """tiny-lm and its transcoders in HookedTransformer's form, and the course's graph of every prompt."""
    from interplab import models
    from interplab.attribution import attribution_graph
    from interplab.transcoder import load_transcoders

    model, transcoders = models.load("tiny-lm", device="cpu"), load_transcoders("tiny-lm")
    cfg = model.cfg
    state = {"embed.W_E": model.W_E, "pos_embed.W_pos": model.W_pos, "unembed.W_U": model.W_U,
             "unembed.b_U": model.b_U}
    for layer in range(cfg.n_layers):
        for name in ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O"):
            state[f"blocks.{layer}.attn.{name}"] = getattr(model, name)[layer]
        for name in ("W_in", "b_in", "W_out", "b_out"):
            state[f"blocks.{layer}.mlp.{name}"] = getattr(model, name)[layer]
    ht_cfg = dict(n_layers=cfg.n_layers, d_model=cfg.d_model, d_head=cfg.d_head, n_heads=cfg.n_heads,
                  d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx, act_fn=cfg.act_fn,
                  normalization_type="LNPre", positional_embedding_type="standard", model_name="tiny-lm",
                  device="cpu", dtype=torch.float32, eps=cfg.eps)
    cases, ours = [], []
    for prompt in PROMPTS:
        tokens = model.to_tokens(prompt)[0]
        with torch.no_grad():
            logits = model(tokens[None])[0, -1]
        target = int(logits.argmax())
        start = time.perf_counter()
        graph = attribution_graph(model, transcoders, tokens, target)
        ours.append(dict(graph=graph, logits=logits, seconds=time.perf_counter() - start, prompt=prompt,
                         target_str=model.to_string(target), positional=_positional_part(model, transcoders, graph)))
        cases.append(dict(tokens=tokens.tolist(), target=target))
    torch.save(dict(cfg=ht_cfg, state={k: v.detach().clone() for k, v in state.items()}, cases=cases,
                    transcoders=[dict(W_enc=t.W_enc, b_enc=t.b_enc, W_dec=t.W_dec, b_dec=t.b_dec, k=t.k)
                                 for t in transcoders]), folder / "model.pt")
    return ours


def _positional_part(model: object, transcoders: list, graph: object) -> torch.Tensor:
    """``[node, pos]``: the part of each embedding edge that comes from the positional embedding ``W_pos[pos]``
    (the gradient of the node's pre-activation or logit times ``W_pos[pos]``), to test whether circuit-tracer's
    token nodes are the token embedding alone."""
    from interplab.attribution import LocalReplacement

    replacement = LocalReplacement(model, transcoders, graph.tokens)
    emb = replacement.embedding.clone().requires_grad_()
    pres: dict[int, torch.Tensor] = {}
    with torch.enable_grad():
        logits = replacement.forward(embedding=emb, record=lambda layer, pre: pres.__setitem__(layer, pre))
        part = torch.zeros(len(graph.nodes), len(graph.tokens))
        for row, node in enumerate(graph.nodes):
            if node.kind not in ("feature", "logit"):
                continue
            output = logits[-1, graph.target] if node.kind == "logit" else pres[node.layer][node.pos, node.feature]
            (grad,) = torch.autograd.grad(output, emb, retain_graph=True)
            part[row] = (grad * model.W_pos[: len(graph.tokens)]).sum(-1).detach()
    return part


def compare(ours: dict, theirs: dict, n_layers: int) -> None:
    """Match the two graphs' nodes and print how far each quantity differs."""
    from interplab.attribution import influence

    graph, n_pos = ours["graph"], len(ours["graph"].tokens)
    print(f"\n{ours['prompt']!r} -> {ours['target_str']!r}: course {ours['seconds']:.2f} s, "
          f"circuit-tracer {theirs['seconds']:.2f} s")
    print(f"  final logits, max |difference| {(ours['logits'] - theirs['logits']).abs().max():.2e}")
    active = theirs["active"][theirs["selected"]].tolist()  # (layer, pos, feature) of each feature node
    theirs_index = {("feature", L, p, f): i for i, (L, p, f) in enumerate(active)}
    n_feat = len(active)
    for layer in range(n_layers):
        for p in range(n_pos):
            theirs_index[("error", layer, p, -1)] = n_feat + layer * n_pos + p
    for p in range(n_pos):
        theirs_index[("embedding", -1, p, -1)] = n_feat + n_layers * n_pos + p
    theirs_index[("logit", n_layers, n_pos - 1, graph.target)] = n_feat + (n_layers + 1) * n_pos
    keys = [(n.kind, n.layer, n.pos, n.feature) for n in graph.nodes]
    ours_features = {k for k in keys if k[0] == "feature"}
    theirs_features = {k for k in theirs_index if k[0] == "feature"}
    bos = {k for k in ours_features if k[2] == 0}
    print(f"  active features: course {len(ours_features)} ({len(bos)} at BOS), circuit-tracer "
          f"{len(theirs_features)}; in both {len(ours_features & theirs_features)}, only the course's "
          f"{len(ours_features - theirs_features)} (at BOS: {len((ours_features - theirs_features) & bos)}), "
          f"only circuit-tracer's {len(theirs_features - ours_features)}")
    shared = [i for i, k in enumerate(keys) if k in theirs_index]
    theirs_rows = torch.tensor([theirs_index[keys[i]] for i in shared])
    a_ours = graph.adjacency[shared][:, shared]
    a_theirs = theirs["adjacency"][theirs_rows][:, theirs_rows]
    not_logit = torch.ones(len(shared), dtype=torch.bool)
    not_logit[-1] = False
    at_bos = torch.tensor([keys[i][2] == 0 and keys[i][0] != "logit" for i in shared])
    embedding = torch.tensor([keys[i][0] == "embedding" for i in shared]) & ~at_bos
    scale = a_ours.abs().max()
    for name, rows in (("feature rows", not_logit), ("logit row", ~not_logit)):
        for where, cols in (("sources at BOS", at_bos), ("token embeddings", embedding),
                            ("features and errors", ~at_bos & ~embedding)):
            diff = (a_ours[rows][:, cols] - a_theirs[rows][:, cols]).abs()
            rel = diff.max() / a_ours[rows][:, cols].abs().max().clamp_min(1e-12)
            print(f"  adjacency, {name}, {where}: max |difference| {diff.max():.3e} ({rel:.1e} of the largest "
                  f"such entry); {int((diff > 1e-4 * scale).sum())} of {diff.numel()} differ by > 1e-4 x {scale:.2f}")
    columns = [keys[i][2] for i in shared]
    token_only = a_ours - ours["positional"][shared][:, columns] * embedding[None, :]
    rest = ~at_bos[:, None] & embedding[None, :]
    print(f"  token-embedding edges less their positional part (W_pos): max |difference| from circuit-tracer's "
          f"{(token_only - a_theirs)[rest.expand_as(a_ours)].abs().max():.3e}")
    diff = (a_ours - a_theirs).abs()
    for flat in diff.flatten().argsort(descending=True)[:3].tolist():
        t, src = divmod(flat, len(shared))
        print(f"    largest: target {keys[shared[t]]} <- source {keys[shared[src]]}: course "
              f"{a_ours[t, src]:+.3f}, circuit-tracer {a_theirs[t, src]:+.3f}")
    ours_influence = influence(graph.adjacency, len(graph.nodes) - 1)[shared]
    theirs_influence = theirs["influence"][theirs_rows]
    feature_mask = torch.tensor([keys[i][0] == "feature" for i in shared])
    oi, ti = ours_influence[feature_mask], theirs_influence[feature_mask]
    print(f"  feature influence: max |difference| {(oi - ti).abs().max():.3e}, correlation "
          f"{torch.corrcoef(torch.stack([oi, ti]))[0, 1]:.4f}")
    names = [keys[i] for i in shared if keys[i][0] == "feature"]
    top_ours = {names[i] for i in oi.argsort(descending=True)[:10].tolist()}
    top_theirs = {names[i] for i in ti.argsort(descending=True)[:10].tolist()}
    print(f"  top 10 features by influence: {len(top_ours & top_theirs)} in common")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    torch.set_num_threads(1)
    python = ensure_venv(args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("step 1: export tiny-lm, the shipped transcoders and the course's graphs", flush=True)
        ours = export(folder)
        print("step 2: circuit-tracer's graphs (side venv)", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": ""}
        done = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", str(folder)], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"circuit-tracer failed at step 2 (exit {done.returncode}):\n{done.stderr[-4000:]}")
            sys.exit(1)
        theirs = torch.load(folder / "circuit_tracer.pt")
        print(f"step 3: comparison ({theirs['versions']})")
        n_layers = json.loads((ROOT / "interplab/shipped/tiny-lm-transcoders/config.json").read_text())["n_layers"]
        for mine, other in zip(ours, theirs["results"]):
            compare(mine, other, n_layers)


if __name__ == "__main__":
    main()
