"""Matplotlib figures for the compliance report, returned as inline PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def _data_uri(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def curves(
    series: Mapping[str, Sequence[float]],
    title: str,
    target: float | None = None,
    target_label: str = "target",
) -> str:
    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.0), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items(), strict=True):
        ax.plot(range(1, len(values) + 1), list(values), color="#1f5f8b")
        if target is not None and name.endswith(".kl"):
            ax.axhline(target, ls="--", color="#b03a2e", label=target_label)
            ax.legend(frameon=False)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _data_uri(fig)


def _yerr(values: Sequence[float], ci: Sequence[tuple[float, float]] | None) -> list[list[float]] | None:
    """Matplotlib's (2, n) error bars from (low, high) bounds; NaN bounds draw no bar."""
    if ci is None:
        return None
    return [
        [max(v - lo, 0.0) if lo == lo else 0.0 for v, (lo, _) in zip(values, ci, strict=True)],
        [max(hi - v, 0.0) if hi == hi else 0.0 for v, (_, hi) in zip(values, ci, strict=True)],
    ]


def before_after_bars(
    groups: list[str],
    before: list[float],
    after: list[float],
    metric: str,
    before_ci: Sequence[tuple[float, float]] | None = None,
    after_ci: Sequence[tuple[float, float]] | None = None,
) -> str:
    """Bars per group, supervised beside aligned, with 95% bootstrap intervals when given."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 2), 3.0))
    xs = range(len(groups))
    errors = {"elinewidth": 1, "ecolor": "#333333"}
    for offset, values, ci, label, color in (
        (-0.2, before, before_ci, "supervised", "#9aa5b1"),
        (0.2, after, after_ci, "aligned", "#1f5f8b"),
    ):
        ax.bar(
            [x + offset for x in xs],
            values,
            0.4,
            yerr=_yerr(values, ci),
            capsize=3,
            error_kw=errors,
            label=label,
            color=color,
        )
    ax.set_xticks(list(xs), groups, rotation=20)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))  # above the bars
    ax.grid(axis="y", alpha=0.3)
    return _data_uri(fig)


def lineage_graph(nodes: Mapping[str, tuple[str, float, float]], edges: Sequence[tuple[str, str]]) -> str:
    """Boxes at (x, y) joined by arrows from source to product: what was made from what."""
    fig, ax = plt.subplots(figsize=(9.0, 3.4))
    style = {"boxstyle": "round,pad=0.4", "fc": "#f1f4f7", "ec": "#1f5f8b"}
    for label, x, y in nodes.values():
        ax.text(x, y, label, ha="center", va="center", fontsize=7.5, bbox=style)
    for src, dst in edges:
        if src in nodes and dst in nodes:
            (_, x0, y0), (_, x1, y1) = nodes[src], nodes[dst]
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={"arrowstyle": "->", "color": "#5b6b7b", "shrinkA": 34, "shrinkB": 34},
            )
    xs, ys = [n[1] for n in nodes.values()], [n[2] for n in nodes.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    return _data_uri(fig)
