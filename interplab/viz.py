"""Figures that work offline: circuitsvis without its CDN, and small matplotlib helpers."""

from __future__ import annotations

import circuitsvis as cv
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML
from jaxtyping import Float


def attention_heads(
    pattern: Float[torch.Tensor, "head query key"], tokens: list[str], names: list[str] | None = None
) -> HTML:
    """Interactive attention patterns that render with no internet.

    circuitsvis's own object loads its JavaScript from a CDN and shows a blank cell offline;
    its ``local_src`` inlines the bundle (about 1.3 MB), so we always use that.
    """
    pattern = pattern.detach().float().cpu()
    rendered = cv.attention.attention_heads(attention=pattern, tokens=tokens, attention_head_names=names)
    return HTML(rendered.local_src)


def heatmap(
    values: Float[torch.Tensor, "rows cols"], title: str, xlabel: str, ylabel: str,
    cmap: str = "RdBu", centre: bool = True, **labels,
):
    """A labelled heatmap; diverging and centred on zero unless ``centre`` is False."""
    values = values.detach().float().cpu()
    limit = float(values.abs().max()) or 1.0
    fig, ax = plt.subplots(figsize=(min(12, 1 + 0.5 * values.shape[1]), min(8, 1 + 0.5 * values.shape[0])))
    image = ax.imshow(values, cmap=cmap, vmin=-limit if centre else None, vmax=limit if centre else None, aspect="auto")
    fig.colorbar(image, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if "xticklabels" in labels:
        ax.set_xticks(range(values.shape[1]), labels["xticklabels"], rotation=90)
    if "yticklabels" in labels:
        ax.set_yticks(range(values.shape[0]), labels["yticklabels"])
    fig.tight_layout()
    return fig
