"""Value types passed between the model runtimes, the steering core and the ROS adapters.

Frozen dataclasses so that an observation or an action chunk handed to another thread cannot be
mutated under it; arrays inside are not copied, callers must not write to them after handing over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

#: Names of the model parts that carry FFN layers a direction can live in.
COMPONENTS: tuple[str, ...] = ("backbone", "action_expert")


@dataclass(frozen=True, order=True)
class NeuronRef:
    """One FFN hidden neuron: its component, its layer and its index in that layer's MLP.

    The neuron's activation is the input of `down_proj` at `index`; its value vector is column
    `index` of `down_proj.weight`. Layer width always comes from `down_proj.in_features`.
    """

    component: str
    layer: int
    index: int

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}; valid: {', '.join(COMPONENTS)}")
        if self.layer < 0 or self.index < 0:
            raise ValueError(f"negative layer/neuron index in {self}")

    def __str__(self) -> str:
        return f"{self.component}/L{self.layer}/N{self.index}"


@dataclass(frozen=True)
class Observation:
    """What a policy sees at one control step.

    images: camera key -> uint8 array (H, W, 3), RGB, upright as a person would view it.
    instruction: the natural-language task.
    state: proprioceptive state (joint positions, gripper, ...), float32 (D,); may be empty.
    stamp_s: acquisition time of the newest input, seconds (for latency accounting).
    """

    images: Mapping[str, np.ndarray]
    instruction: str
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    stamp_s: float = 0.0


@dataclass(frozen=True)
class ActionChunk:
    """A policy's output for one inference.

    actions: float32 (horizon, action_dim), in the units of `action_space`.
    action_space: e.g. "ee_delta_7d" (LIBERO: dx dy dz droll dpitch dyaw gripper).
    inference_s: wall time of the model call.
    """

    actions: np.ndarray
    action_space: str
    inference_s: float = 0.0
    model_id: str = ""
    steered: bool = False

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])
