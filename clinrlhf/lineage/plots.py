"""Matplotlib figures for the compliance report, returned as inline PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def _data_uri(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def curves(
    series: dict[str, Sequence[float]], title: str, target: float | None = None, target_label: str = "target"
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


def before_after_bars(groups: list[str], before: list[float], after: list[float], metric: str) -> str:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 2), 3.0))
    xs = range(len(groups))
    ax.bar([x - 0.2 for x in xs], before, width=0.4, label="supervised", color="#9aa5b1")
    ax.bar([x + 0.2 for x in xs], after, width=0.4, label="aligned", color="#1f5f8b")
    ax.set_xticks(list(xs), groups, rotation=20)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _data_uri(fig)
