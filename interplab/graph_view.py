"""Drawing a pruned attribution graph (``interplab.attribution``): a static figure and an interactive HTML page.

The layout is the one Ameisen et al. 2025's graphs use: prompt positions left to right, depth bottom to top
(token embeddings at the bottom, each layer's features and error node above, the target logit on top). Edges are
drawn blue where the source pushes its target up and red where it pushes it down, as thick as their weight.

A node's label is its token (embeddings), ``L{layer} #{feature}`` with the feature's best-matching corpus label
where the caller gives ``feature_labels`` (e.g. ``{(0, 95): "number"}``), ``err L{layer}``, or the target token.

The HTML view is one self-contained file (no CDN, no fetch): an inline SVG drawn here plus a few lines of script
that highlight a node's edges on hover and show its details in a panel. Token strings and labels are data, never
markup: they are escaped in the SVG, and the script writes them with ``textContent`` only, so a token such as
``<img src=x onerror=alert(1)>`` is shown as text and runs nothing.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from interplab.attribution import Graph, Node

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FeatureLabels = dict[tuple[int, int], str]
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"
KIND_COLOURS = {"embedding": "#9ecae1", "feature": "#fdd49e", "error": "#d9d9d9", "logit": "#a1d99b"}


def label(graph: Graph, node: Node, feature_labels: FeatureLabels | None = None) -> str:
    """What a node is called in a drawing."""
    if node.kind == "embedding":
        return graph.str_tokens[node.pos] if graph.str_tokens else f"token {node.pos}"
    if node.kind == "error":
        return f"err L{node.layer}"
    if node.kind == "logit":
        return f"logit {node.feature}"
    name = f"L{node.layer} #{node.feature}"
    matched = (feature_labels or {}).get((node.layer, node.feature))
    return f"{name} {matched}" if matched else name


def layout(graph: Graph) -> list[tuple[float, float]]:
    """Each node's (x, y): x its position (nodes sharing a position and row spread across it), y its depth."""
    rows: dict[tuple[int, int], list[int]] = {}
    for i, node in enumerate(graph.nodes):
        rows.setdefault((node.pos, node.layer), []).append(i)
    xy = [(0.0, 0.0)] * len(graph.nodes)
    for (pos, layer), members in rows.items():
        for j, i in enumerate(members):
            offset = 0.0 if len(members) == 1 else (j / (len(members) - 1) - 0.5) * 0.8
            xy[i] = (pos + offset, layer + 1.0)
    return xy


def _edges(graph: Graph) -> list[tuple[int, int, float]]:
    """(source, target, weight) for every nonzero edge, strongest first."""
    targets, sources = graph.adjacency.nonzero(as_tuple=True)
    edges = [(int(s), int(t), float(graph.adjacency[t, s])) for t, s in zip(targets, sources)]
    return sorted(edges, key=lambda e: -abs(e[2]))


def draw(graph: Graph, feature_labels: FeatureLabels | None = None, width: float = 12.0) -> "Figure":
    """A static matplotlib drawing of the (pruned) graph."""
    import matplotlib.pyplot as plt

    xy, edges = layout(graph), _edges(graph)
    n_rows = max(node.layer for node in graph.nodes) + 2
    fig, ax = plt.subplots(figsize=(width, 1.6 * n_rows + 1))
    biggest = max((abs(w) for *_, w in edges), default=1.0)
    for s, t, w in reversed(edges):
        ax.plot(*zip(xy[s], xy[t]), color=POSITIVE if w > 0 else NEGATIVE, alpha=0.6,
                linewidth=0.3 + 3 * abs(w) / biggest, zorder=1)
    for i, node in enumerate(graph.nodes):
        ax.scatter(*xy[i], s=120, color=KIND_COLOURS[node.kind], edgecolor="black", zorder=2)
        ax.annotate(label(graph, node, feature_labels), xy[i], textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=7, rotation=30 if node.kind == "feature" else 0)
    ax.set_yticks(range(n_rows + 1), ["embeddings", *(f"layer {layer}" for layer in range(n_rows - 1)), "logit"])
    ax.set_xticks(range(len(graph.tokens)), graph.str_tokens or range(len(graph.tokens)), rotation=45, fontsize=7)
    ax.set_xlabel("position")
    ax.set_title(f"attribution graph of the logit of {label(graph, graph.nodes[-1])}")
    fig.tight_layout()
    return fig


def _svg(graph: Graph, feature_labels: FeatureLabels | None, scale: tuple[float, float]) -> str:
    """The graph as SVG markup, every string escaped."""
    xy, edges = layout(graph), _edges(graph)
    top = max(y for _, y in xy)
    point = [(40 + x * scale[0], 30 + (top - y) * scale[1]) for x, y in xy]
    biggest = max((abs(w) for *_, w in edges), default=1.0)
    parts = []
    for s, t, w in reversed(edges):
        (x1, y1), (x2, y2) = point[s], point[t]
        parts.append(f'<line class="edge" data-source="{s}" data-target="{t}" x1="{x1:.1f}" y1="{y1:.1f}" '
                     f'x2="{x2:.1f}" y2="{y2:.1f}" stroke="{POSITIVE if w > 0 else NEGATIVE}" '
                     f'stroke-width="{0.5 + 4 * abs(w) / biggest:.2f}" stroke-opacity="0.6"/>')
    for i, node in enumerate(graph.nodes):
        x, y = point[i]
        text = html.escape(label(graph, node, feature_labels))
        parts.append(f'<g class="node" data-node="{i}"><circle cx="{x:.1f}" cy="{y:.1f}" r="7" '
                     f'fill="{KIND_COLOURS[node.kind]}" stroke="black"/><title>{text}</title>'
                     f'<text x="{x:.1f}" y="{y - 10:.1f}" font-size="9" text-anchor="middle">{text}</text></g>')
    width = 80 + max(x for x, _ in point)
    height = 60 + max(y for _, y in point)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}">'
            + "".join(parts) + "</svg>")


_SCRIPT = """
const nodes = JSON.parse(document.getElementById("graph-data").textContent);
const panel = document.getElementById("details");
function show(i) {
  for (const e of document.querySelectorAll(".edge")) {
    const on = i === null || e.dataset.source == i || e.dataset.target == i;
    e.setAttribute("stroke-opacity", on ? "0.8" : "0.05");
  }
  panel.textContent = i === null ? "hover over a node" : nodes[i].label + " | " + nodes[i].detail;
}
for (const g of document.querySelectorAll(".node")) {
  g.addEventListener("mouseenter", () => show(Number(g.dataset.node)));
  g.addEventListener("mouseleave", () => show(null));
}
show(null);
"""


def to_html(graph: Graph, feature_labels: FeatureLabels | None = None, scale: tuple[float, float] = (90.0, 120.0)
            ) -> str:
    """A self-contained interactive page of the graph. Node data travels as JSON in a non-executable script
    element, with ``<``, ``>`` and ``&`` written as ``\\u`` escapes so no string can close that element."""
    data = [dict(label=label(graph, node, feature_labels),
                 detail=f"{node.kind}, layer {node.layer}, position {node.pos}, activation {node.activation:.3f}"
                 + ("" if graph.influence is None else f", influence {float(graph.influence[i]):.3f}"))
            for i, node in enumerate(graph.nodes)]
    payload = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = html.escape(f"attribution graph: {label(graph, graph.nodes[-1])}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family: sans-serif'><h3>{title}</h3><div id='details'></div>"
            f"{_svg(graph, feature_labels, scale)}"
            f"<script type='application/json' id='graph-data'>{payload}</script><script>{_SCRIPT}</script>"
            "</body></html>")


def save_html(graph: Graph, path: str | Path, feature_labels: FeatureLabels | None = None) -> Path:
    """Write ``to_html``'s page to ``path``."""
    path = Path(path)
    path.write_text(to_html(graph, feature_labels), encoding="utf-8")
    return path
