"""Figures for reading a model: per-layer shares (layer report) and what changed between two
projections (diff). Styled after the paper's figures: one bar per layer, share on the y axis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_path  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from ..interp.layer_report import LayerReport
    from ..interp.projection_diff import ProjectionDiff

ACTION_COLOR = "#2a6f97"
MEANINGFUL_COLOR = "#6a994e"
CATEGORY_COLORS = ("#e76f51", "#f4a261", "#2a9d8f", "#264653", "#9b5de5", "#e9c46a", "#8d99ae", "#ef476f")


def _save(fig, out: Path) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out


def _title(model_id: str, random_weights: bool, what: str) -> str:
    return f"{what}: {model_id}" + ("  [RANDOM WEIGHTS]" if random_weights else "")


def plot_layer_report(report: "LayerReport", out: str | Path) -> Path:
    """Three panels per component: action-token share, category shares, meaningful share."""
    comps = list(dict.fromkeys(r.component for r in report.rows))
    fig, axes = plt.subplots(3, len(comps), figsize=(max(8, 0.32 * len(report.rows) + 4), 9),
                             squeeze=False, constrained_layout=True)
    for col, comp in enumerate(comps):
        rows = [r for r in report.rows if r.component == comp]
        x = np.array([r.layer for r in rows])
        ax = axes[0, col]
        ax.bar(x, [r.action for r in rows], color=ACTION_COLOR, width=0.8)
        ax.set(ylabel="share of neurons", title=f"{comp}: top-{report.top_k} mostly action tokens", ylim=(0, 1))
        if report.n_action_tokens == 0:
            ax.text(0.5, 0.5, "no action tokens in this vocabulary", transform=ax.transAxes, ha="center", color="gray")
        ax = axes[1, col]
        width = 0.8 / max(1, len(report.category_names))
        for i, name in enumerate(report.category_names):
            ax.bar(x - 0.4 + (i + 0.5) * width, [r.categories[name] for r in rows], width=width,
                   color=CATEGORY_COLORS[i % len(CATEGORY_COLORS)], label=name)
        ax.set(ylabel="share of neurons", title=f"{comp}: token categories ({report.criteria['category'].split(' are')[0]})")
        ax.legend(fontsize=7, ncol=min(6, len(report.category_names)), loc="upper left")
        ax = axes[2, col]
        ax.bar(x, [r.meaningful for r in rows], color=MEANINGFUL_COLOR, width=0.8)
        ax.set(xlabel="layer", ylabel="share of neurons", title=f"{comp}: meaningful", ylim=(0, 1))
    fig.suptitle(_title(report.model_id, report.random_weights, "Layer report"), fontsize=11)
    return _save(fig, Path(out))


def plot_layer_heatmap(report: "LayerReport", out: str | Path) -> Path:
    """Heat map: rows = action / categories / meaningful, columns = (component, layer)."""
    names = ["action", *report.category_names, "meaningful"]
    data = np.array([[r.action, *(r.categories[c] for c in report.category_names), r.meaningful] for r in report.rows]).T
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(report.rows) + 3), 0.45 * len(names) + 1.8), constrained_layout=True)
    im = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(names)), names)
    multi = len({r.component for r in report.rows}) > 1
    ax.set_xticks(range(len(report.rows)), [f"{r.component[:1]}{r.layer}" if multi else str(r.layer) for r in report.rows],
                  fontsize=7, rotation=90 if len(report.rows) > 40 else 0)
    ax.set_xlabel("layer")
    fig.colorbar(im, ax=ax, label="share of neurons")
    ax.set_title(_title(report.model_id, report.random_weights, "Share of neurons per layer"), fontsize=10)
    return _save(fig, Path(out))


def plot_token_zscores(diff: "ProjectionDiff", out: str | Path, n: int = 20) -> Path:
    """Horizontal bars: the n most gained and n most lost tokens (token-count z-score)."""
    gained, lost = diff.top_tokens(n, gained=True), diff.top_tokens(n, gained=False)
    items = list(reversed(lost)) + list(reversed(gained))
    fig, ax = plt.subplots(figsize=(8, max(4, 0.22 * len(items) + 1)), constrained_layout=True)
    y = np.arange(len(items))
    ax.barh(y, [t.z for t in items], color=["#d62828" if t.z < 0 else "#2a9d8f" for t in items])
    ax.set_yticks(y, [f"{t.text!r} ({t.count_a}->{t.count_b})" for t in items], fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="token-count z-score (B - A)", title=f"Top-{diff.top_k} presence gained / lost: {diff.model_b} vs {diff.model_a}")
    return _save(fig, Path(out))


def plot_layer_change(diff: "ProjectionDiff", out: str | Path) -> Path:
    """Per layer: mean top-k turnover and, when weights were given, mean (1 - cosine)."""
    rows = diff.layers
    has_cos = any(r.mean_cosine is not None for r in rows)
    fig, axes = plt.subplots(2 if has_cos else 1, 1, figsize=(max(8, 0.3 * len(rows) + 3), 6 if has_cos else 3.5),
                             squeeze=False, constrained_layout=True)
    x = np.arange(len(rows))
    labels = [f"{r.component[:1]}{r.layer}" if len({q.component for q in rows}) > 1 else str(r.layer) for r in rows]
    ax = axes[0, 0]
    ax.bar(x, [r.mean_turnover for r in rows], color="#e76f51")
    ax.set(ylabel="mean top-k turnover", title="Share of each neuron's top-k tokens that changed", ylim=(0, 1))
    ax.set_xticks(x, labels, fontsize=7)
    if has_cos:
        ax = axes[1, 0]
        ax.bar(x, [1.0 - (r.mean_cosine if r.mean_cosine is not None else 1.0) for r in rows], color="#264653")
        ax.set(xlabel="layer", ylabel="mean 1 - cos(w_A, w_B)", title="Value-vector change per layer")
        ax.set_xticks(x, labels, fontsize=7)
    else:
        ax.set_xlabel("layer")
    fig.suptitle(f"What changed: {diff.model_b} vs {diff.model_a}", fontsize=11)
    return _save(fig, Path(out))
