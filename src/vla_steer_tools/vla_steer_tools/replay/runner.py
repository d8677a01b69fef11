"""Run a policy on every recorded observation once per steering variant (open loop).

Why not batched across variants: the steering hooks edit every row of a forward pass alike (one
`SteeringConfig` per inference, hooks.py), and `Policy.infer` takes one observation, so a batch of
variants would need per-row edits in every hook. Instead the variants run one after another and
each one's config is applied once (no hook re-registration per observation); on 2 CPU cores a batch
would gain little anyway. Each variant starts with `policy.reset()`, as an episode does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..errors import ObservationError
from ..policy import Policy, SteeredPolicy
from .observations import RecordedEpisode
from .variants import Variant


@dataclass(frozen=True)
class ReplayRun:
    """predictions: variant name -> (N, horizon, action_dim) float32, one chunk per observation.
    inference_s: variant name -> (N,) model wall time per call."""

    variants: tuple[Variant, ...]
    predictions: dict[str, np.ndarray]
    inference_s: dict[str, np.ndarray]
    action_space: str
    model_id: str
    random_weights: bool


def run_variants(policy: Policy, episode: RecordedEpisode, variants: Sequence[Variant], position: str = "",
                 progress: bool = True) -> ReplayRun:
    """Every observation of `episode` through `policy` under every variant."""
    from tqdm.auto import tqdm

    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique: {names}")
    steered = SteeredPolicy(policy)
    preds: dict[str, np.ndarray] = {}
    times: dict[str, np.ndarray] = {}
    space, model_id = "", ""
    total = len(variants) * len(episode.observations)
    try:
        with tqdm(total=total, unit="inference", desc="replay", disable=not progress) as bar:
            for variant in variants:
                steered.update(variant.steering_config(position))
                steered.reset()
                chunks, secs = [], []
                for i, obs in enumerate(episode.observations):
                    obs = replace(obs, instruction=variant.instruction(obs.instruction))
                    try:
                        result = steered.infer(obs)
                    except ObservationError as exc:
                        raise ObservationError(
                            f"observation {i} of the bag, variant {variant.name!r}: {exc}; replay built the state from "
                            f"{episode.state_source} and the cameras {dict(episode.cameras)} (see --state-source, "
                            "--camera; `vla-steer report BAG --topics` lists what the bag holds)") from exc
                    chunks.append(result.chunk.actions)
                    secs.append(result.chunk.inference_s)
                    space, model_id = result.chunk.action_space, result.chunk.model_id
                    bar.update(1)
                bar.set_postfix_str(variant.name)
                preds[variant.name] = np.stack(chunks).astype(np.float32)
                times[variant.name] = np.asarray(secs)
    finally:
        steered.close()
    adapter = policy.adapter
    return ReplayRun(tuple(variants), preds, times, space, model_id or getattr(adapter, "model_id", ""),
                     bool(getattr(adapter, "random_weights", False)))
