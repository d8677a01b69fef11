"""Per-layer readings of a projection: action-token neurons, token categories, "meaningful" neurons.

The paper reads its models layer by layer: the share of value vectors that promote action tokens
(OpenVLA: about 0.16-0.18 in early layers rising to about 0.49 at the last), and the share that are
interpretable. This module computes those shares from a finished projection directory alone (no
model), for every projected (component, layer).

Criteria (all on a neuron's *top* tokens by default; `sides="both"` also lets the bottom tokens
qualify a neuron, since a negative activation promotes them, see concepts.py):

* **action neuron**: at least `action_min` of its top-k tokens are action tokens (default: a
  majority, ceil(k / 2)). Action tokens: token_categories.action_mask.
* **category neuron** (direction, speed, ...): at least `category_min` (default 2) of its top-k
  tokens are words of that category (config/token_categories.yaml).
* **meaningful** (the paper's ">= 4 of the top 30 share a pattern", made concrete): among the first
  `window` (30) top tokens, at least `meaningful_min` (4) share one pattern, where a pattern is
    (a) one word category, or the action tokens, or
    (b) one word stem: the same letters-only word of >= 3 letters once the space marker, case and
        one inflection (-s -es -ed -ing -er -est -ly) are removed ('fast', ' Fast', 'faster').
  A projection that kept k < 30 tokens is judged on all k with the threshold scaled and rounded
  up: ceil(4 * k / 30), i.e. 2 of 10. The report states the criterion it actually applied.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..errors import ConfigError, UnknownChoiceError
from .projection import Projection
from .token_categories import TokenCategories, action_mask, load_categories, stem_ids

SIDES: tuple[str, ...] = ("top", "both")
ACTION = "action"  # the pattern / column name of action tokens


@dataclass(frozen=True)
class LayerReportOptions:
    """Thresholds of the criteria above; 0 means "the documented default for this projection"."""

    action_min: int = 0  # 0: ceil(k / 2)
    category_min: int = 2
    meaningful_window: int = 30
    meaningful_min: int = 4
    sides: str = "top"
    action_range: tuple[int, int] | None = None

    def check(self) -> None:
        if self.sides not in SIDES:
            raise UnknownChoiceError("sides", self.sides, SIDES)
        if self.action_min < 0 or self.category_min < 1 or self.meaningful_window < 1 or self.meaningful_min < 1:
            raise ConfigError(f"bad thresholds: {self}")


@dataclass
class LayerRow:
    """Shares (0-1) of one (component, layer)'s neurons meeting each criterion."""

    component: str
    layer: int
    n_neurons: int
    action: float
    categories: dict[str, float]
    meaningful: float
    meaningful_by: dict[str, float]  # which pattern made neurons meaningful (a neuron may count twice)


@dataclass
class LayerReport:
    """The whole reading, plus the exact criteria applied (for the markdown and for re-checking)."""

    projection_id: str
    model_id: str
    random_weights: bool
    top_k: int
    criteria: dict
    category_names: list[str]
    n_action_tokens: int
    rows: list[LayerRow]
    #: (component, layer) -> criterion name -> bool (n_neurons,); not serialised.
    flags: dict[tuple[str, int], dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    def row(self, component: str, layer: int) -> LayerRow:
        for r in self.rows:
            if (r.component, r.layer) == (component, layer):
                return r
        raise ConfigError(f"no row for {component} layer {layer}; the report covers {[(r.component, r.layer) for r in self.rows]}")

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "flags"}
        return d


def _max_run(values: torch.Tensor) -> torch.Tensor:
    """Per row of (n, w) int64 (-1 = no value), the largest count of one repeated value."""
    same = values.unsqueeze(2) == values.unsqueeze(1)  # (n, w, w)
    counts = same.sum(2)  # (n, w): how often each position's value occurs in its row
    counts = torch.where(values >= 0, counts, torch.zeros_like(counts))
    return counts.amax(1) if values.shape[1] else torch.zeros(values.shape[0], dtype=torch.int64)


def _side_flags(ids: torch.Tensor, masks: dict[str, torch.Tensor], stems: torch.Tensor,
                mins: dict[str, int], window: int, need: int) -> dict[str, torch.Tensor]:
    """Criterion -> bool (n,) for one side's token ids (n, k)."""
    out: dict[str, torch.Tensor] = {}
    win = ids[:, :window]  # (n, w)
    for name, mask in masks.items():
        out[f"n:{name}"] = mask[ids].sum(1)  # (n,) matching tokens, for picking examples
        out[name] = out[f"n:{name}"] >= mins[name]  # (n,)
        out[f"meaningful:{name}"] = mask[win].sum(1) >= need
    out["meaningful:word"] = _max_run(stems[win]) >= need
    out["meaningful"] = torch.stack([v for k, v in out.items() if k.startswith("meaningful:")]).any(0)
    out["side"] = torch.zeros_like(out["meaningful"], dtype=torch.int64)  # filled in by the caller
    return out


def layer_report(proj: Projection, categories: TokenCategories | None = None,
                 options: LayerReportOptions = LayerReportOptions()) -> LayerReport:
    """Compute the per-layer shares for every projected (component, layer)."""
    options.check()
    categories = categories or load_categories()
    if ACTION in categories.words:
        raise ConfigError(f"category name {ACTION!r} is reserved for action tokens ({categories.source})")
    k = int(proj.manifest["options"]["top_k"])
    action_min = options.action_min or math.ceil(k / 2)
    window = min(options.meaningful_window, k)
    need = math.ceil(options.meaningful_min * window / options.meaningful_window)
    act = action_mask(proj.vocab, options.action_range)
    masks = {ACTION: act, **categories.masks(proj.vocab)}
    mins = {name: (action_min if name == ACTION else options.category_min) for name in masks}
    stems = stem_ids(proj.vocab)
    sides = ("top",) if options.sides == "top" else ("top", "bottom")
    rows: list[LayerRow] = []
    flags: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    pairs = [(c, layer) for c in proj.components for layer in proj.layers(c)]
    for comp, layer in tqdm(pairs, desc="layer report", unit="layer", disable=len(pairs) < 4):
        per_side = [_side_flags(proj.get(comp, layer, f"{s}_ids").long(), masks, stems, mins, window, need) for s in sides]
        f = {key: torch.stack([p[key] for p in per_side]).amax(0) if key.startswith("n:")
             else torch.stack([p[key] for p in per_side]).any(0) for key in per_side[0] if key != "side"}
        flags[(comp, layer)] = f
        n = int(f["meaningful"].numel())

        def share(key: str) -> float:
            return float(f[key].float().mean()) if n else 0.0

        rows.append(LayerRow(
            component=comp, layer=layer, n_neurons=n, action=share(ACTION),
            categories={c: share(c) for c in categories.names}, meaningful=share("meaningful"),
            meaningful_by={key.split(":", 1)[1]: share(key) for key in f if key.startswith("meaningful:")},
        ))
    criteria = {
        "sides": options.sides,
        "action": f">= {action_min} of the top {k} tokens are action tokens",
        "category": f">= {options.category_min} of the top {k} tokens are words of the category",
        "meaningful": f">= {need} of the top {window} tokens share one pattern (a word category, action tokens, or one word stem)"
        + (f" [the paper's {options.meaningful_min} of {options.meaningful_window}, scaled: this projection kept {k}]" if window < options.meaningful_window else ""),
        "action_tokens": (f"ids {options.action_range[0]}-{options.action_range[1]}" if options.action_range
                          else "tokens printed as [action: x] / [fast: N]"),
        "categories_file": categories.source,
    }
    return LayerReport(
        projection_id=proj.id, model_id=proj.model_id, random_weights=bool(proj.manifest.get("random_weights")),
        top_k=k, criteria=criteria, category_names=categories.names, n_action_tokens=int(act.sum()),
        rows=rows, flags=flags,
    )


def examples(proj: Projection, report: LayerReport, criterion: str, n: int = 3) -> list[tuple[str, int, int, list[str]]]:
    """Up to n (component, layer, neuron, tokens) meeting `criterion`: the neuron with the most
    matching tokens in each layer, from the n layers where that neuron is strongest."""
    found = []
    for (comp, layer), f in report.flags.items():
        hits = torch.nonzero(f[criterion]).flatten()
        if hits.numel():
            counts = f[f"n:{criterion}"][hits]
            best = int(hits[int(counts.argmax())])
            toks = [proj.vocab[i] for i in proj.get(comp, layer, "top_ids")[best].tolist()[:6]]
            if report.criteria["sides"] == "both":  # the matches may be on either side: show both
                toks += ["| bottom:"] + [proj.vocab[i] for i in proj.get(comp, layer, "bottom_ids")[best].tolist()[:6]]
            found.append((int(counts.max()), comp, layer, best, toks))
    found.sort(key=lambda x: (-x[0], x[2]))
    return sorted([x[1:] for x in found[:n]], key=lambda x: x[1])


def format_markdown(proj: Projection, report: LayerReport, figures: Sequence[str] = ()) -> str:
    """The summary a person reads: what was measured, how, the table, and examples."""
    cats = report.category_names
    lines = [f"# Layer report: {report.model_id}", ""]
    if report.random_weights:
        lines += ["**RANDOM-WEIGHT MODEL (a test fixture): these shares carry no meaning.**", ""]
    lines += [
        f"Projection `{report.projection_id}` (`{proj.path}`), top-k {report.top_k}, "
        f"{report.n_action_tokens} action tokens in a vocabulary of {len(proj.vocab)}.",
        "", "Criteria (a neuron counts when its tokens meet them; share = neurons counted / neurons in the layer):", "",
        f"- sides: `{report.criteria['sides']}` (top: the tokens a positive activation promotes)",
        f"- action: {report.criteria['action']} ({report.criteria['action_tokens']})",
        f"- category: {report.criteria['category']} (word lists: `{report.criteria['categories_file']}`)",
        f"- meaningful: {report.criteria['meaningful']}",
        "",
    ]
    lines += [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + ([""] if figures else [])
    head = ["component", "layer", "neurons", "action", *cats, "meaningful"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report.rows:
        vals = [r.action, *(r.categories[c] for c in cats), r.meaningful]
        lines.append(f"| {r.component} | {r.layer} | {r.n_neurons} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    lines += ["", "## Examples (the strongest neuron of the layers where it is strongest; its matching side's tokens)", ""]
    for crit in [ACTION, *cats]:
        ex = examples(proj, report, crit)
        if not ex:
            lines.append(f"- **{crit}**: no neuron")
            continue
        lines.append(f"- **{crit}**: " + "; ".join(
            f"{c}/L{layer}/N{n}: " + ", ".join(t if t == "| bottom:" else repr(t) for t in toks) for c, layer, n, toks in ex))
    return "\n".join(lines) + "\n"


def write_layer_report(proj: Projection, out_dir: str | Path, report: LayerReport) -> list[Path]:
    """OUT/layer_report.{md,json,csv} and the PNG figures; returns the files written."""
    from ..analysis.interp_plots import plot_layer_heatmap, plot_layer_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_layer_report(report, out / "layer_report.png"), plot_layer_heatmap(report, out / "layer_heatmap.png")]
    atomic_write_text(out / "layer_report.md", format_markdown(proj, report, [str(f) for f in figures]))
    atomic_write_text(out / "layer_report.json", json.dumps(report.to_json(), indent=1) + "\n")
    cats = report.category_names
    csv = ["component,layer,n_neurons,action," + ",".join(cats) + ",meaningful"]
    csv += [f"{r.component},{r.layer},{r.n_neurons},{r.action:.6f}," + ",".join(f"{r.categories[c]:.6f}" for c in cats)
            + f",{r.meaningful:.6f}" for r in report.rows]
    atomic_write_text(out / "layer_report.csv", "\n".join(csv) + "\n")
    return [out / "layer_report.md", out / "layer_report.json", out / "layer_report.csv", *figures]
