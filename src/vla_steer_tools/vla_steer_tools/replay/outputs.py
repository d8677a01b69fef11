"""What a replay writes and how it is read back: predictions.parquet (any Arrow/parquet reader),
replay.json (metadata, per-variant metrics, paired comparisons), replay.md and actions.png.

predictions.parquet is long format, one row per (variant, observation, chunk step): variant, kind,
concept, alpha, seed, obs_index, stamp_ns (the observation's camera header stamp), step, a0..a{D-1}.
The recorded commands go in as variant "recorded" (step 0 only, NaN where none was recorded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.stats import paired_comparison
from ..atomic import atomic_path, atomic_write_text
from ..errors import ConfigError
from .action_metrics import action_metrics, translation_speed
from .observations import RecordedEpisode
from .runner import ReplayRun
from .variants import UNSTEERED

PREDICTIONS = "predictions.parquet"
META = "replay.json"
RECORDED = "recorded"
FORMAT = "vla-steer replay"


def _rows(name: str, variant, chunks: np.ndarray, stamps: np.ndarray) -> dict[str, np.ndarray]:
    n, h, d = chunks.shape
    cols = {"variant": np.repeat(name, n * h), "kind": np.repeat(variant["kind"], n * h),
            "concept": np.repeat(variant["concept"], n * h), "alpha": np.full(n * h, variant["alpha"], np.float64),
            "seed": np.full(n * h, variant["seed"], np.int32), "obs_index": np.repeat(np.arange(n, dtype=np.int32), h),
            "stamp_ns": np.repeat(stamps, h), "step": np.tile(np.arange(h, dtype=np.int16), n)}
    for j in range(d):
        cols[f"a{j}"] = chunks[:, :, j].reshape(-1).astype(np.float32)
    return cols


def write_predictions(path: Path, episode: RecordedEpisode, run: ReplayRun) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for v in run.variants:
        parts.append(_rows(v.name, {"kind": v.kind, "concept": v.concept, "alpha": v.alpha, "seed": v.seed},
                           run.predictions[v.name], episode.stamps_ns))
    rec = episode.recorded_action_per_observation()
    dim = next(iter(run.predictions.values())).shape[2]
    rec = rec[:, :dim] if rec.shape[1] >= dim else np.pad(rec, ((0, 0), (0, dim - rec.shape[1])), constant_values=np.nan)
    parts.append(_rows(RECORDED, {"kind": RECORDED, "concept": "", "alpha": 0.0, "seed": -1}, rec[:, None, :], episode.stamps_ns))
    table = pa.table({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


@dataclass(frozen=True)
class ReplayData:
    """A replay read back: chunks per variant (N, H, D), the recorded actions (N, D), metadata."""

    chunks: dict[str, np.ndarray]
    recorded: np.ndarray
    stamps_ns: np.ndarray
    meta: dict


def read_replay(directory: str | Path) -> ReplayData:
    import pyarrow.parquet as pq

    directory = Path(directory)
    if not (directory / PREDICTIONS).is_file() or not (directory / META).is_file():
        raise ConfigError(f"{directory} is not a replay output (no {PREDICTIONS} / {META}); make one with vla-steer replay")
    meta = json.loads((directory / META).read_text())
    cols = pq.read_table(directory / PREDICTIONS).to_pydict()
    variant = np.asarray(cols["variant"])
    obs, step = np.asarray(cols["obs_index"]), np.asarray(cols["step"])
    dims = sorted((k for k in cols if k[0] == "a" and k[1:].isdigit()), key=lambda k: int(k[1:]))
    values = np.stack([np.asarray(cols[k], dtype=np.float32) for k in dims], axis=1)
    chunks: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(variant.tolist()):
        sel = variant == name
        n, h = int(obs[sel].max()) + 1, int(step[sel].max()) + 1
        arr = np.full((n, h, len(dims)), np.nan, np.float32)
        arr[obs[sel], step[sel]] = values[sel]
        chunks[name] = arr
    recorded = chunks.pop(RECORDED)[:, 0, :] if RECORDED in chunks else np.zeros((0, len(dims)))
    stamps = np.asarray(cols["stamp_ns"])[(variant == next(iter(chunks))) & (step == 0)]
    return ReplayData(chunks, recorded, stamps, meta)


def variant_metrics(run: ReplayRun, episode: RecordedEpisode) -> tuple[dict, dict]:
    """(metrics per variant + "recorded", paired comparison of each variant's speed vs unsteered)."""
    metrics = {name: action_metrics(chunks[:, 0, :], chunks) for name, chunks in run.predictions.items()}
    metrics[RECORDED] = action_metrics(episode.recorded_action_per_observation())
    comparisons = {}
    if UNSTEERED in run.predictions:
        ref = translation_speed(run.predictions[UNSTEERED][:, 0, :])
        for name, chunks in run.predictions.items():
            if name != UNSTEERED:
                comparisons[name] = paired_comparison(translation_speed(chunks[:, 0, :]), ref).as_dict()
    return metrics, comparisons


def write_meta(out: Path, meta: dict) -> Path:
    return atomic_write_text(out / META, json.dumps({"format": FORMAT, **meta}, indent=1, default=float))


def format_summary(meta: dict) -> str:
    """The per-variant table printed and written to replay.md."""
    lines = [f"# Open-loop replay of `{meta['bag']}`", "",
             f"model: {meta['model_id']}" + ("  **RANDOM WEIGHTS (test fixture): no meaning**" if meta["random_weights"] else ""),
             f"{meta['observations']} observations x {len(meta['variants'])} variants; cameras {meta['cameras']}; "
             f"state {meta['state_source']}; actions {meta['action_space']} (units of the policy; speed = |a[:3]| of "
             "each chunk's first action). Paired over observations vs unsteered, 95% bootstrap CI (BCa).", "",
             "| variant | speed | vs unsteered (95% CI) | d_z | mean dx | mean dy | mean dz | gripper closed | ms/inference |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in meta["metrics"].items():
        c = meta["comparisons"].get(name)
        vs = (f"{100 * c['relative']:+.1f}% ({c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f})" if c else "")
        dz = f"{c['d_z']:+.2f}" if c else ""
        ms = meta["inference_ms"].get(name)
        lines.append(f"| {name} | {m['speed']:.4f} | {vs} | {dz} | {m['mean_dx']:+.4f} | {m['mean_dy']:+.4f} | "
                     f"{m['mean_dz']:+.4f} | {m['gripper_closed_fraction']:.2f} | {'' if ms is None else f'{ms:.1f}'} |")
    lines += ["", "`recorded` is what the robot was actually commanded in the bag (closed loop, the policy that ran then)."]
    return "\n".join(lines) + "\n"
