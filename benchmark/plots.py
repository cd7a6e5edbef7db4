"""Deterministic SVG plots for the leaderboard (matplotlib, Agg backend).

Fixed hash salt, no date metadata and text kept as text make the same data
give byte-identical SVG files, so a regenerated leaderboard does not change.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_RC: Any = {"svg.hashsalt": "serbench", "svg.fonttype": "none", "font.size": 9,
       "font.family": "DejaVu Sans"}


def _svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def heatmap(values: np.ndarray, rows: list[str], cols: list[str], title: str, *,
            fmt: str = "{:.3f}", xlabel: str = "", ylabel: str = "", cmap: str = "viridis") -> str:
    """Annotated heat map; NaN cells are drawn grey and labelled 'missing'."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(0.9 + 0.75 * len(cols), 0.7 + 0.5 * len(rows)))
        data = np.ma.masked_invalid(np.asarray(values, dtype=float))
        cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
        image = ax.imshow(data, cmap=cm, aspect="auto")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = values[i][j]
                text = "missing" if not np.isfinite(v) else fmt.format(v)
                r, g, b, _ = image.cmap(image.norm(v)) if np.isfinite(v) else (1, 1, 1, 1)
                color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
                ax.text(j, i, text, ha="center", va="center", color=color)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        return _svg(fig)


def grouped_bars(values: dict[str, list[float]], classes: list[str], title: str,
                 ylabel: str) -> str:
    """Bars per class, one colour per series (e.g. per submission)."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(classes), 2.8))
        n = max(1, len(values))
        width = 0.8 / n
        x = np.arange(len(classes))
        for i, (name, v) in enumerate(sorted(values.items())):
            ax.bar(x + (i - (n - 1) / 2) * width, v, width, label=name)
        ax.set_xticks(x, classes, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7, frameon=False)
        return _svg(fig)


def interval_bars(panels: list[dict]) -> str:
    """Side-by-side bar panels with interval whiskers.

    Each panel: ``title``, ``ylabel``, ``labels``, ``means``, ``ci`` ([(low, high)]) and
    ``colours``.  A percentile interval need not contain its point (UAR on small test sets
    whose resamples lose a class), so each whisker is drawn on its side only, never negative.
    """
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
        for ax, panel in zip(axes[0], panels, strict=True):
            means = panel["means"]
            err = np.array([[max(m - lo, 0.0), max(hi - m, 0.0)]
                            for m, (lo, hi) in zip(means, panel["ci"], strict=True)]).T
            x = range(len(means))
            ax.bar(x, means, yerr=err, capsize=3, color=panel["colours"])
            ax.set_xticks(x, panel["labels"], rotation=45, ha="right", fontsize=8)
            ax.set_ylabel(panel["ylabel"])
            ax.set_title(panel["title"])
        fig.tight_layout()
        return _svg(fig)


def difference_dots(panels: list[dict], labels: list[str], groups: list[str],
                    legend: str = "") -> str:
    """Side-by-side panels of paired differences: a dot and its interval per label and group.

    Each panel: ``title`` and ``values`` {group: [(diff, (low, high)) or None per label]};
    the groups are drawn side by side around each label, and a grey line marks 0.
    Whiskers are drawn on each side only, never negative (see :func:`interval_bars`).
    """
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), sharey=True,
                                 squeeze=False)
        for ax, panel in zip(axes[0], panels, strict=True):
            for j, group in enumerate(groups):
                y = np.arange(len(labels)) + (j - (len(groups) - 1) / 2) * 0.22
                cells = panel["values"].get(group, [None] * len(labels))
                d = np.array([c[0] if c else np.nan for c in cells])
                lo = np.array([c[1][0] if c else np.nan for c in cells])
                hi = np.array([c[1][1] if c else np.nan for c in cells])
                err = np.array([np.maximum(d - lo, 0.0), np.maximum(hi - d, 0.0)])
                ax.errorbar(d, y, xerr=err, fmt="o", ms=4, capsize=2, label=group)
            ax.axvline(0.0, color="grey", lw=0.8)
            ax.set_title(panel["title"], fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_yticks(np.arange(len(labels)), labels, fontsize=7)
        axes[0][0].legend(title=legend, fontsize=7, title_fontsize=7)
        fig.tight_layout()
        return _svg(fig)
