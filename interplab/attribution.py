"""Attribution graphs: which transcoder features, at which positions, carry a model's answer (module 08).

The method is Ameisen et al. 2025, "Circuit tracing: revealing computational graphs in language models", with the
per-layer transcoders of Dunefsky, Chlenski & Nanda 2024 in place of their cross-layer ones. For one prompt:

1. **The local replacement model** (``LocalReplacement``). Run the real model once and keep three things from that
   run: every attention pattern, every LayerNorm's scale (the denominator), and every MLP's *error*, the part of
   its output its transcoder misses (``mlp_out - transcoder(mlp_in)``). With those frozen (detached), every path
   from a transcoder feature to the logits is linear: attention only mixes positions by fixed weights, LayerNorm
   only centres and divides by a fixed number, and the error is a constant added to the residual stream. Swap each
   MLP for its transcoder plus its error and the logits come out exactly the model's own.
2. **The graph** (``attribution_graph``). Nodes are the token embeddings at each position, the transcoder
   features active at each position, one error node per (layer, position) and the target logit. The edge
   ``adjacency[target, source]`` is the source's *direct* effect on the target: the source's activation times the
   gradient of the target's pre-activation with respect to it, through the frozen linear model, with every other
   feature's activation held fixed (a stop-gradient), so an effect that passes through another feature is that
   feature's edge, not this one's. One backward pass per target node gives its row.
3. **Pruning** (``prune``). Most edges are tiny. Normalise ``|adjacency|`` so each node's incoming edges sum to one;
   the influence of a node on the logit is then the sum over paths of all lengths, ``A + A² + ...``; keep the
   features that together hold ``node_threshold`` of the influence, then the edges that hold ``edge_threshold``.
4. **Interventions** (``steer_features``, ``ablate_features``). A graph is a hypothesis about the replacement model;
   these test it on the *real* model, by scaling features' contributions to the MLP outputs with hooks.

Models come from ``interplab.models.load`` (compatibility mode: LayerNorm's weights and biases are folded into the
next layer, so a LayerNorm's output is its input centred and divided by its scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interplab.transcoder import MLP_IN_HOOK, MLP_OUT_HOOK, Transcoder, rewrite_mlp_hooks

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge

NodeKind = Literal["feature", "error", "embedding", "logit"]


@dataclass(frozen=True)
class Node:
    """One node of a graph. ``layer`` is -1 for embeddings and ``n_layers`` for the logit; ``feature`` is the
    transcoder latent's index (features only); ``activation`` the value the node had on the prompt (1 for the
    embedding and error nodes, whose edges carry their whole vector; the logit's value for the logit)."""

    kind: NodeKind
    layer: int
    pos: int
    feature: int = -1
    activation: float = 1.0


@dataclass
class Graph:
    """An attribution graph: ``adjacency[target, source]`` is the direct effect of node ``source`` on ``target``.

    Nodes are ordered features (by layer, position, index), errors (by layer, position), embeddings (by position),
    then the logit last. ``influence`` is filled in by ``prune``: each kept node's influence on the logit.
    """

    nodes: list[Node]
    adjacency: Float[Tensor, "n_nodes n_nodes"]
    tokens: Int[Tensor, " pos"]
    target: int
    str_tokens: list[str] = field(default_factory=list)
    influence: Float[Tensor, " n_nodes"] | None = None

    def index(self, kind: NodeKind) -> list[int]:
        """The indices of the nodes of one kind."""
        return [i for i, node in enumerate(self.nodes) if node.kind == kind]


class LocalReplacement:
    """The local replacement model of one prompt: frozen attention patterns and LayerNorm scales from the real
    model's run on ``tokens``, each MLP replaced by its transcoder plus a constant error term.

    ``forward`` takes the nodes' values as inputs (``features[L]``: the transcoder activations at every
    position, ``errors[L]``), so a caller can hold them fixed (direct effects), perturb one (finite differences)
    or recompute the features from the replacement's own residual stream (``live=True``).
    """

    def __init__(self, model: "TransformerBridge", transcoders: Sequence[Transcoder], tokens: Int[Tensor, " pos"]):
        if tokens.ndim != 1:
            raise ValueError(f"one prompt at a time: tokens must be 1-D, got shape {tuple(tokens.shape)}")
        self.model, self.transcoders, self.tokens = model, list(transcoders), tokens
        self.n_layers = model.cfg.n_layers
        with torch.no_grad():
            self.logits, cache = model.run_with_cache(tokens[None])
        self.logits = self.logits[0]
        self.patterns = [cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(self.n_layers)]
        self.scales = {name: cache[f"{name}.hook_scale"][0] for name in self._norms()}
        self.embedding: Float[Tensor, "pos d_model"] = (model.W_E[tokens] + model.W_pos[: len(tokens)]).detach()
        self.features, self.errors = [], []
        for layer, tc in enumerate(self.transcoders):
            x, y = cache[MLP_IN_HOOK.format(layer=layer)][0], cache[MLP_OUT_HOOK.format(layer=layer)][0]
            z = tc.encode(x).detach()
            self.features.append(z)
            self.errors.append((y - tc.decode(z)).detach())

    def _norms(self) -> list[str]:
        return [f"blocks.{layer}.ln{i}" for layer in range(self.n_layers) for i in (1, 2)] + ["ln_final"]

    def norm(self, name: str, x: Float[Tensor, "pos d_model"]) -> Float[Tensor, "pos d_model"]:
        """LayerNorm with its scale frozen: centring is linear, and the fixed denominator keeps it so."""
        return (x - x.mean(-1, keepdim=True)) / self.scales[name]

    def attention(self, layer: int, x: Float[Tensor, "pos d_model"]) -> Float[Tensor, "pos d_model"]:
        """An attention layer with its pattern frozen: a fixed mix of the positions' values, written out."""
        model = self.model
        values = torch.einsum("pd,hde->hpe", self.norm(f"blocks.{layer}.ln1", x), model.W_V[layer]) + \
            model.b_V[layer][:, None]
        mixed = torch.einsum("hqk,hke->hqe", self.patterns[layer], values)
        return torch.einsum("hqe,hed->qd", mixed, model.W_O[layer]) + model.b_O[layer]

    def forward(
        self,
        features: Sequence[Float[Tensor, "pos d_tc"]] | None = None,
        errors: Sequence[Float[Tensor, "pos d_model"]] | None = None,
        embedding: Float[Tensor, "pos d_model"] | None = None,
        live: bool = False,
        record: Callable[[int, Float[Tensor, "pos d_tc"]], None] | None = None,
    ) -> Float[Tensor, "pos d_vocab"]:
        """The replacement's logits from the nodes' values (default: the prompt's own).

        ``record(layer, pre)`` receives each transcoder's pre-activations, computed from this run's residual
        stream: what a feature node's incoming edges are gradients of. ``live=True`` feeds the features computed
        from them forward instead of ``features`` (a full replacement run, no stop-gradients).
        """
        features = self.features if features is None else features
        errors = self.errors if errors is None else errors
        resid = self.embedding if embedding is None else embedding
        for layer, tc in enumerate(self.transcoders):
            resid = resid + self.attention(layer, resid)
            pre = self.norm(f"blocks.{layer}.ln2", resid) @ tc.W_enc + tc.b_enc
            if record is not None:
                record(layer, pre)
            z = _top(pre, tc.k) if live else features[layer]
            resid = resid + tc.decode(z) + errors[layer]
        return self.norm("ln_final", resid) @ self.model.W_U + self.model.b_U


def _top(pre: Float[Tensor, "pos d_tc"], k: int | None) -> Float[Tensor, "pos d_tc"]:
    """A transcoder's activation from its pre-activation (ReLU, then TopK where ``k`` is set)."""
    z = torch.relu(pre)
    if k is None:
        return z
    top = z.topk(k, dim=-1)
    return torch.zeros_like(z).scatter(-1, top.indices, top.values)


def attribution_graph(
    model: "TransformerBridge", transcoders: Sequence[Transcoder], tokens: Int[Tensor, " pos"], target: int,
    pos: int = -1,
) -> Graph:
    """The attribution graph of ``target``'s logit at position ``pos`` (default: the last) on one prompt.

    Every node's value becomes a leaf that requires grad; the forward pass uses those leaves (never recomputed
    features), so each gradient is a direct effect. Row of a feature: the gradient of its pre-activation; row of
    the logit: the gradient of the logit. Edge = gradient · source's value (for a feature, its activation times
    its decoder row's path; for an embedding or error, its whole vector).
    """
    replacement = LocalReplacement(model, transcoders, tokens)
    pos = pos % len(tokens)
    feats = [z.clone().requires_grad_() for z in replacement.features]
    errs = [e.clone().requires_grad_() for e in replacement.errors]
    emb = replacement.embedding.clone().requires_grad_()
    pres: dict[int, Tensor] = {}
    with torch.enable_grad():
        logits = replacement.forward(feats, errs, emb, record=lambda layer, pre: pres.__setitem__(layer, pre))
    nodes: list[Node] = []
    for layer, z in enumerate(replacement.features):
        for p, f in (z > 0).nonzero().tolist():
            nodes.append(Node("feature", layer, p, f, z[p, f].item()))
    n_pos = len(tokens)
    nodes += [Node("error", layer, p) for layer in range(len(transcoders)) for p in range(n_pos)]
    nodes += [Node("embedding", -1, p) for p in range(n_pos)]
    nodes.append(Node("logit", len(transcoders), pos, target, logits[pos, target].item()))
    adjacency = torch.zeros(len(nodes), len(nodes))
    for row, node in enumerate(nodes):
        if node.kind == "feature":
            output = pres[node.layer][node.pos, node.feature]
        elif node.kind == "logit":
            output = logits[pos, target]
        else:
            continue
        grads = torch.autograd.grad(output, [*feats, *errs, emb], retain_graph=True, allow_unused=True)
        adjacency[row] = _edges(grads, replacement)
    return Graph(nodes, adjacency, tokens, target, model.to_str_tokens(tokens))


def _edges(grads: Sequence[Tensor | None], replacement: LocalReplacement) -> Float[Tensor, " n_nodes"]:
    """One row of the adjacency from one backward pass: gradient times value for every source node, in the
    graph's node order (active features as ``nonzero`` lists them, errors, embeddings, the logit)."""
    n_layers = len(replacement.features)
    values = [*replacement.features, *replacement.errors, replacement.embedding]
    grads = [torch.zeros_like(v) if g is None else g for g, v in zip(grads, values)]
    features = [(g * z)[z > 0] for g, z in zip(grads[:n_layers], replacement.features)]
    vectors = [(g * v).sum(-1) for g, v in zip(grads[n_layers:], values[n_layers:])]
    return torch.cat([*features, *vectors, torch.zeros(1)]).detach()


def influence(adjacency: Float[Tensor, "n n"], logit: int) -> Float[Tensor, " n"]:
    """Each node's influence on node ``logit``: the row-normalised ``|adjacency|`` summed over paths of every
    length, ``A + A² + A³ + ...`` (Ameisen et al. 2025), read off the logit's row. The graph is acyclic, so the
    series ends and equals ``(I - A)⁻¹ - I``."""
    a = adjacency.abs()
    a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
    eye = torch.eye(len(a))
    return (torch.linalg.solve(eye - a, eye) - eye)[logit]


def prune(graph: Graph, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Graph:
    """The graph with only its most influential features and edges (Ameisen et al. 2025, "Pruning").

    Features are ranked by their influence on the logit and kept until they hold ``node_threshold`` of the
    features' total; errors, embeddings and the logit always stay (an error node left out would hide what the
    replacement misses). Among the edges between kept nodes, each is scored by its normalised weight times its
    target's influence (the logit counting 1), and the highest are kept until they hold ``edge_threshold`` of the
    total. Kept features left with no edge to a kept node are dropped.
    """
    logit = len(graph.nodes) - 1
    scores = influence(graph.adjacency, logit)
    keep = torch.ones(len(graph.nodes), dtype=torch.bool)
    features = torch.tensor(graph.index("feature"), dtype=torch.long)
    keep[features] = _top_share(scores[features], node_threshold)
    sub = graph.adjacency.abs() * keep[:, None] * keep[None, :]
    weight = sub / sub.sum(1, keepdim=True).clamp_min(1e-12)
    target_influence = scores.clone()
    target_influence[logit] = 1.0
    edge_scores = weight * target_influence[:, None]
    edges = _top_share(edge_scores.flatten(), edge_threshold).view_as(edge_scores) & (sub > 0)
    connected = edges.any(0) | edges.any(1)
    keep &= connected | (torch.arange(len(keep)) >= len(features))
    kept = keep.nonzero().flatten()
    adjacency = (graph.adjacency * edges)[kept][:, kept]
    return Graph([graph.nodes[i] for i in kept], adjacency, graph.tokens, graph.target, graph.str_tokens,
                 scores[kept])


def _top_share(scores: Float[Tensor, " n"], threshold: float) -> Tensor:
    """The smallest set of the highest ``scores`` whose sum reaches ``threshold`` of the total, as a mask."""
    order = scores.argsort(descending=True)
    share = scores[order].cumsum(0) / scores.sum().clamp_min(1e-12)
    n_kept = int((share < threshold).sum()) + 1
    mask = torch.zeros(len(scores), dtype=torch.bool)
    mask[order[:n_kept]] = True
    return mask


def steer_features(
    model: "TransformerBridge", transcoders: Sequence[Transcoder], tokens: Int[Tensor, "... pos"],
    features: Sequence[tuple[int, int, int]], scale: float,
) -> Float[Tensor, "... pos d_vocab"]:
    """The *real* model's logits with each ``(layer, pos, feature)``'s contribution to its MLP's output multiplied
    by ``scale`` (0 ablates it, 2 doubles it). The feature's activation is read from the steered run's own MLP
    input, so a feature downstream of another steered one sees the change; the rest of the MLP output, the part
    the transcoder misses included, is left as the model computed it."""
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for layer, p, f in features:
        by_layer.setdefault(layer, []).append((p, f))

    def steer(layer: int, x: Tensor, out: Tensor) -> Tensor:
        tc, out = transcoders[layer], out.clone()
        z = tc.encode(x)
        for p, f in by_layer[layer]:
            out[..., p, :] += (scale - 1) * z[..., p, f, None] * tc.W_dec[f]
        return out

    hooks = rewrite_mlp_hooks(by_layer, steer)
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=hooks)


def ablate_features(
    model: "TransformerBridge", transcoders: Sequence[Transcoder], tokens: Int[Tensor, "... pos"],
    features: Sequence[tuple[int, int, int]],
) -> Float[Tensor, "... pos d_vocab"]:
    """The real model's logits with the features' contributions removed (``steer_features`` with scale 0)."""
    return steer_features(model, transcoders, tokens, features, 0.0)
