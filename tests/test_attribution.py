"""Module 08's library: transcoders, the local replacement model, attribution graphs, pruning, interventions, drawing.

Each claim is checked against a computation that does not share the code under test: the replacement against the
real model's logits, edges against finite differences and forward-mode derivatives of the replacement, the shipped
transcoders' logged quality against a float64 recomputation with other hooks, the interventions against the
graph's own prediction, and the HTML view in the real headless browser with hostile labels.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from browser import browser_page

from interplab.attribution import LocalReplacement, ablate_features, attribution_graph, influence, prune, \
    steer_features
from interplab.corpus import generate
from interplab.graph_view import draw, to_html
from interplab.models import load
from interplab.train import transcoders as trainer
from interplab.transcoder import SHIPPED_TRANSCODERS, load_transcoders


@pytest.fixture(scope="module")
def model():
    return load("tiny-lm", device="cpu")


@pytest.fixture(scope="module")
def transcoders():
    return load_transcoders("tiny-lm")


@pytest.fixture(scope="module")
def tokens():
    return generate(1, 7).tokens[0, :20]


@pytest.fixture(scope="module")
def replacement(model, transcoders, tokens):
    return LocalReplacement(model, transcoders, tokens)


@pytest.fixture(scope="module")
def graph(model, transcoders, tokens, replacement):
    return attribution_graph(model, transcoders, tokens, int(replacement.logits[-1].argmax()))


def test_replacement_reproduces_the_logits_and_needs_its_error_nodes(replacement):
    assert (replacement.forward() - replacement.logits).abs().max() < 1e-4
    assert (replacement.forward(live=True) - replacement.logits).abs().max() < 1e-4
    no_errors = [torch.zeros_like(e) for e in replacement.errors]
    assert (replacement.forward(errors=no_errors, live=True) - replacement.logits).abs().max() > 0.1


def _target_value(replacement, graph, row, feats, errs, emb):
    """The target node's value (a feature's pre-activation or the logit) in a replacement run from these leaves."""
    pres = {}
    logits = replacement.forward(feats, errs, emb, record=lambda layer, pre: pres.__setitem__(layer, pre))
    node = graph.nodes[row]
    return logits[node.pos, graph.target] if node.kind == "logit" else pres[node.layer][node.pos, node.feature]


def _without(replacement, graph, source):
    """The replacement's leaves with one source node's value set to zero."""
    feats = [z.clone() for z in replacement.features]
    errs = [e.clone() for e in replacement.errors]
    emb = replacement.embedding.clone()
    node = graph.nodes[source]
    if node.kind == "feature":
        feats[node.layer][node.pos, node.feature] = 0
    elif node.kind == "error":
        errs[node.layer][node.pos] = 0
    else:
        emb[node.pos] = 0
    return feats, errs, emb


def test_edges_are_finite_differences_and_forward_derivatives(replacement, graph):
    generator = torch.Generator().manual_seed(0)
    rows, cols = graph.adjacency.nonzero(as_tuple=True)
    picks = torch.randperm(len(rows), generator=generator)[:12].tolist()
    logit = len(graph.nodes) - 1
    picks += [i for i in (graph.adjacency[logit] != 0).nonzero().flatten()[:4].tolist()]
    leaves = (replacement.features, replacement.errors, replacement.embedding)
    for i in picks[:12]:
        row, source = int(rows[i]), int(cols[i])
        # removing a source changes its target by minus the edge: the frozen model is linear in its leaves
        change = _target_value(replacement, graph, row, *leaves) - \
            _target_value(replacement, graph, row, *_without(replacement, graph, source))
        torch.testing.assert_close(change, graph.adjacency[row, source], atol=1e-4, rtol=1e-3)
    for source in picks[12:]:
        node = graph.nodes[source]
        if node.kind != "feature":
            continue
        tangent = torch.zeros_like(replacement.features[node.layer])
        tangent[node.pos, node.feature] = node.activation

        def of_layer(z, layer=node.layer):
            feats = [*replacement.features[:layer], z, *replacement.features[layer + 1:]]
            return _target_value(replacement, graph, logit, feats, replacement.errors, replacement.embedding)

        _, jvp = torch.func.jvp(of_layer, (replacement.features[node.layer],), (tangent,))
        torch.testing.assert_close(jvp, graph.adjacency[logit, source], atol=1e-4, rtol=1e-3)


def test_graph_has_every_node_and_only_direct_edges(graph, replacement):
    n_pos, n_layers = len(graph.tokens), len(replacement.features)
    assert len(graph.index("feature")) == sum(int((z > 0).sum()) for z in replacement.features)
    assert len(graph.index("error")) == n_layers * n_pos and len(graph.index("embedding")) == n_pos
    for row, node in enumerate(graph.nodes):  # a feature hears only from earlier layers, at its position or before
        sources = [graph.nodes[s] for s in graph.adjacency[row].nonzero().flatten()]
        assert all(s.layer < node.layer and s.pos <= node.pos for s in sources)


def test_pruning_keeps_the_thresholds_share_of_influence(graph):
    logit = len(graph.nodes) - 1
    a = graph.adjacency.abs()
    a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
    series, power = torch.zeros_like(a), torch.eye(len(a))
    for _ in range(4):  # paths are at most embedding -> L0 -> L1 -> logit, three edges long
        power = power @ a
        series += power
    scores = influence(graph.adjacency, logit)
    torch.testing.assert_close(scores, series[logit], atol=1e-5, rtol=1e-4)
    features = graph.index("feature")
    total = scores[features].sum()
    for threshold in (0.5, 0.8):
        pruned = prune(graph, node_threshold=threshold)
        kept = [i for i, n in enumerate(pruned.nodes) if n.kind == "feature"]
        share = pruned.influence[kept].sum() / total
        assert threshold <= share < 1 and len(kept) < len(features)
        assert pruned.nodes[-1].kind == "logit" and (pruned.adjacency[-1] != 0).any()


def test_interventions_act_on_the_real_model(model, transcoders, tokens, graph):
    """Ablating a last-layer feature at the last position leaves every earlier computation as it was: the logits
    must be the final LayerNorm (live, unlike the graph's) of the clean residual less that feature's vector.
    Its effect need not be the graph's edge: LayerNorm's scale, frozen in the graph, moves with it here."""
    _, cache = model.run_with_cache(tokens[None])
    end = len(tokens) - 1
    last = [n for n in graph.nodes if n.kind == "feature" and n.layer == 1 and n.pos == end]
    node = max(last, key=lambda n: n.activation)
    resid = cache["blocks.1.hook_resid_post"][0].clone()
    resid[end] -= node.activation * transcoders[1].W_dec[node.feature]
    centred = resid - resid.mean(-1, keepdim=True)
    expected = centred / (centred.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt() @ model.W_U + model.b_U
    ablated = ablate_features(model, transcoders, tokens[None], [(1, end, node.feature)])[0]
    torch.testing.assert_close(ablated, expected, atol=1e-4, rtol=1e-4)
    doubled = steer_features(model, transcoders, tokens[None], [(1, end, node.feature)], 2.0)[0]
    resid[end] += 2 * node.activation * transcoders[1].W_dec[node.feature]
    centred = resid - resid.mean(-1, keepdim=True)
    expected = centred / (centred.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt() @ model.W_U + model.b_U
    torch.testing.assert_close(doubled, expected, atol=1e-4, rtol=1e-4)


def test_shipped_transcoders_logged_quality_is_reproduced(model, transcoders):
    """Variance explained, L0, dead latents and the replaced and mean-ablated losses, in float64 from
    ``mlp.hook_in`` / ``mlp.hook_out`` (other hook names than the trainer's) and cross-entropy from the logits."""
    log = json.loads((SHIPPED_TRANSCODERS["tiny-lm"] / "training_log.json").read_text())
    held_out = generate(log["held_out"]["docs"], log["held_out"]["seed"]).tokens
    names = [f"blocks.{layer}.mlp.hook_{io}" for layer in range(len(transcoders)) for io in ("in", "out")]
    _, cache = model.run_with_cache(held_out, names_filter=lambda name: name in names)
    for tc, row in zip(transcoders, log["layers"]):
        x, y = (cache[f"blocks.{tc.layer}.mlp.hook_{io}"].double().reshape(-1, tc.d_model) for io in ("in", "out"))
        z = torch.relu(x @ tc.W_enc.double() + tc.b_enc.double())
        z = z * (z >= z.topk(tc.k, dim=-1).values[:, -1:])
        fvu = ((z @ tc.W_dec.double() + tc.b_dec.double() - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()
        assert abs((1 - fvu).item() - row["variance_explained"]) < 2e-3
        assert abs((z > 0).sum(1).double().mean().item() - row["l0"]) < 0.01
        assert abs(int(((z > 0).sum(0) == 0).sum()) - row["dead"]) <= 2

    def loss(replace):
        def keep(layer):
            return lambda x, hook: hook_in.__setitem__(layer, x)

        def swap(layer):
            return lambda out, hook: replace(layer, hook_in[layer])

        layers = range(len(transcoders))
        hooks = [(f"blocks.{layer}.mlp.hook_in", keep(layer)) for layer in layers]
        hooks += [(f"blocks.{layer}.mlp.hook_out", swap(layer)) for layer in layers]
        with torch.no_grad():
            logits = model.run_with_hooks(held_out, fwd_hooks=hooks)
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), held_out[:, 1:].flatten()).item()

    hook_in = {}
    train_docs = generate(log["train"]["docs"], log["train"]["seed"]).tokens
    sums = torch.zeros(len(transcoders), transcoders[0].d_model, dtype=torch.float64)
    for chunk in train_docs.split(500):
        _, train_cache = model.run_with_cache(chunk, names_filter=lambda name: name.endswith("mlp.hook_out"))
        sums += torch.stack([train_cache[f"blocks.{layer}.mlp.hook_out"].double().sum((0, 1))
                             for layer in range(len(transcoders))])
    means = (sums / train_docs.numel()).float()
    assert abs(loss(lambda layer, x: transcoders[layer](x)) - log["loss"]["replaced"]) < 2e-3
    assert abs(loss(lambda layer, x: means[layer].expand_as(x)) - log["loss"]["mean_ablated"]) < 2e-3
    assert log["loss"]["replaced"] < log["loss"]["clean"] + 0.1 < log["loss"]["mean_ablated"]


def test_trainer_is_deterministic():
    tiny = dict(steps=5, train_docs=20, eval_docs=8, d_tc=32, k=4, progress=False)
    (first, log1), (second, log2) = trainer.train(**tiny), trainer.train(**tiny)
    assert all(torch.equal(a, b) for t1, t2 in zip(first, second) for a, b in zip(t1.parameters(), t2.parameters()))
    timeless = ("wall_time_s", "train_time_s")
    assert {k: v for k, v in log1.items() if k not in timeless} == {k: v for k, v in log2.items() if k not in timeless}
    other, _ = trainer.train(**tiny, seed=1)
    assert not torch.equal(first[0].W_enc, other[0].W_enc)


HOSTILE = '<img src=x onerror="window.pwned = 1">'


def test_graph_view_draws_and_its_page_runs_no_script_from_data(graph, tmp_path):
    pruned = prune(graph)
    pruned.str_tokens = list(pruned.str_tokens)
    pruned.str_tokens[1] = HOSTILE
    first = next(n for n in pruned.nodes if n.kind == "feature")
    labels = {(first.layer, first.feature): "</script><script>window.pwned = 2</script>"}
    fig = draw(pruned, labels)
    assert len(fig.axes[0].collections) == len(pruned.nodes)
    page_file = tmp_path / "graph.html"
    page_file.write_text(to_html(pruned, labels), encoding="utf-8")
    with browser_page() as page:
        page.goto(page_file.as_uri())
        assert page.evaluate("window.pwned") is None
        assert page.locator("circle").count() == len(pruned.nodes)
        assert HOSTILE in page.locator("svg").text_content()
        assert page.locator("#details").inner_text() == "hover over a node"
        page.locator(".node").last.hover()
        assert page.locator("#details").inner_text().startswith("logit")
        page.locator(".node").nth(pruned.nodes.index(first)).hover()
        assert "window.pwned = 2" in page.locator("#details").inner_text()
        assert page.evaluate("window.pwned") is None
