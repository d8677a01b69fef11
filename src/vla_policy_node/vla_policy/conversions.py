"""Messages <-> core types: images, steering directions and state, action chunks, activations.

Kept apart from the node so that every conversion is a pure function a unit test can check without
DDS, and so that the node stays a thin adapter. Images are validated strictly (encoding, size, row
step, data length): a malformed frame must be rejected with a reason, never reshaped into garbage.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vla_steer_msgs.msg import ActionChunk as ActionChunkMsg
from vla_steer_msgs.msg import ConceptActivations, SteeringConcept, SteeringState

from vla_steer_tools.errors import DirectionError, ObservationError
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.steering.probe import ConceptStat
from vla_steer_tools.types import ActionChunk, NeuronRef

#: Encodings accepted from cameras -> channels. Everything is converted to RGB.
IMAGE_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1}


def image_to_rgb(msg: Image, expect_hw: tuple[int, int] | None = None) -> np.ndarray:
    """A sensor_msgs/Image as a uint8 (H, W, 3) RGB array; ObservationError says what is wrong.

    Rows may be padded (step > width * channels); the padding is dropped. The result owns its
    memory (the message buffer may be reused by the middleware).
    """
    channels = IMAGE_ENCODINGS.get(msg.encoding)
    if channels is None:
        raise ObservationError(f"image encoding {msg.encoding!r} not supported; valid: "
                               f"{', '.join(IMAGE_ENCODINGS)}")
    h, w = int(msg.height), int(msg.width)
    if expect_hw is not None and (h, w) != tuple(expect_hw):
        raise ObservationError(f"image is {w}x{h} (WxH), expected {expect_hw[1]}x{expect_hw[0]}")
    if h == 0 or w == 0:
        raise ObservationError(f"image has zero size ({w}x{h})")
    row = w * channels
    if msg.step < row:
        raise ObservationError(f"image step {msg.step} < width*channels = {row}")
    if len(msg.data) != msg.step * h:
        raise ObservationError(f"image data has {len(msg.data)} bytes, expected step*height = "
                               f"{msg.step * h}")
    flat = np.frombuffer(msg.data, dtype=np.uint8)  # (step * h,)
    pixels = flat.reshape(h, msg.step)[:, :row].reshape(h, w, channels)  # (H, W, C)
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if msg.encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    return pixels.copy()


def rgb_to_image(array: np.ndarray, encoding: str = "rgb8", stamp: Time | None = None,
                 frame_id: str = "") -> Image:
    """A uint8 (H, W, 3) RGB array (or (H, W) for mono8) as a sensor_msgs/Image in `encoding`."""
    if encoding not in IMAGE_ENCODINGS:
        raise ObservationError(f"image encoding {encoding!r} not supported; valid: "
                               f"{', '.join(IMAGE_ENCODINGS)}")
    if array.dtype != np.uint8:
        raise ObservationError(f"image dtype {array.dtype} is not uint8")
    if encoding == "mono8":
        pixels = array if array.ndim == 2 else array[:, :, 0]
    elif array.ndim != 3 or array.shape[2] != 3:
        raise ObservationError(f"image shape {array.shape} is not (H, W, 3)")
    else:
        pixels = array[:, :, ::-1] if encoding == "bgr8" else array
    pixels = np.ascontiguousarray(pixels)
    msg = Image(header=Header(stamp=stamp or Time(), frame_id=frame_id))
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.step = int(pixels.shape[1] * IMAGE_ENCODINGS[encoding])
    msg.data = pixels.tobytes()
    return msg


def direction_to_msg(direction: Direction) -> SteeringConcept:
    """A core Direction as a SteeringConcept (neurons split into parallel arrays)."""
    return SteeringConcept(
        name=direction.name,
        components=[n.component for n in direction.neurons],
        layers=[n.layer for n in direction.neurons],
        neurons=[n.index for n in direction.neurons],
        alpha=float(direction.alpha),
        mode=direction.mode,
        signs=[float(s) for s in direction.signs],
        provenance=direction.provenance,
    )


def msg_to_direction(msg: SteeringConcept) -> Direction:
    """A SteeringConcept with explicit neurons as a core Direction; DirectionError if inconsistent."""
    n = len(msg.neurons)
    if not (len(msg.components) == len(msg.layers) == n):
        raise DirectionError(f"concept {msg.name!r}: components/layers/neurons have lengths "
                             f"{len(msg.components)}/{len(msg.layers)}/{n}; they must be equal")
    if msg.signs and len(msg.signs) != n:
        raise DirectionError(f"concept {msg.name!r}: {len(msg.signs)} signs for {n} neurons")
    try:
        neurons = tuple(NeuronRef(c, int(l), int(i)) for c, l, i in zip(msg.components, msg.layers, msg.neurons))
    except ValueError as exc:
        raise DirectionError(f"concept {msg.name!r}: {exc}") from exc
    return Direction(name=msg.name, neurons=neurons, alpha=float(msg.alpha), mode=msg.mode or "override",
                     signs=tuple(float(s) for s in msg.signs), provenance=msg.provenance)


def steering_state_msg(config: SteeringConfig, *, model_id: str, random_weights: bool,
                       inference_count: int, stamp: Time | None = None,
                       position: str | None = None) -> SteeringState:
    """What the node steers with now, as a SteeringState.

    position: the policy that runs (the config's with "" resolved for the loaded model); None
    reports the config's own, "" (the family's own) while no model is loaded."""
    return SteeringState(
        header=Header(stamp=stamp or Time()),
        enabled=bool(config.enabled),
        concepts=[direction_to_msg(d) for d in config.directions],
        position_policy=config.position if position is None else position,
        model_id=model_id,
        random_weights=bool(random_weights),
        inference_count=int(inference_count),
    )


def action_chunk_msg(chunk: ActionChunk, index: int, stamp: Time | None = None) -> ActionChunkMsg:
    """A core ActionChunk as a message; actions flattened row-major (horizon, dim) -> (h*d,)."""
    actions = np.asarray(chunk.actions, dtype=np.float32)
    return ActionChunkMsg(
        header=Header(stamp=stamp or Time()),
        inference_index=int(index),
        horizon=chunk.horizon,
        action_dim=chunk.action_dim,
        data=actions.reshape(-1).tolist(),
        action_space=chunk.action_space,
        model_id=chunk.model_id,
        inference_time=float(chunk.inference_s),
        steered=bool(chunk.steered),
    )


def chunk_from_msg(msg: ActionChunkMsg) -> ActionChunk:
    """An ActionChunk message back as a core ActionChunk (for bag analysis and tests)."""
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size != msg.horizon * msg.action_dim:
        raise ObservationError(f"ActionChunk has {data.size} values, expected "
                               f"{msg.horizon}x{msg.action_dim}")
    return ActionChunk(actions=data.reshape(msg.horizon, msg.action_dim), action_space=msg.action_space,
                       inference_s=msg.inference_time, model_id=msg.model_id, steered=msg.steered)


def concept_activations_msg(activations: Mapping[str, ConceptStat], index: int,
                            stamp: Time | None = None) -> ConceptActivations:
    """Per-concept pre-edit activation stats (core ConceptStat) as a message, sorted by name."""
    names: Sequence[str] = sorted(activations)
    return ConceptActivations(
        header=Header(stamp=stamp or Time()),
        inference_index=int(index),
        concept_names=list(names),
        mean_activation=[float(activations[n].mean) for n in names],
        max_activation=[float(activations[n].max) for n in names],
        steered=[bool(activations[n].steered) for n in names],
    )
