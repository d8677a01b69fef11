"""Message <-> core conversions: images (strict validation), steering, chunks, activations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vla_steer_msgs.msg import SteeringConcept

from vla_policy import conversions as conv
from vla_steer_tools.errors import DirectionError, ObservationError
from vla_steer_tools.steering.directions import Direction
from vla_steer_tools.steering.hooks import SteeringConfig
from vla_steer_tools.steering.probe import ConceptStat
from vla_steer_tools.types import ActionChunk, NeuronRef


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_color_images_round_trip(rgb, encoding):
    msg = conv.rgb_to_image(rgb, encoding)
    assert (msg.height, msg.width, msg.step) == (6, 5, 15)
    back = conv.image_to_rgb(msg, (6, 5))
    assert back.dtype == np.uint8 and np.array_equal(back, rgb)


def test_bgr_bytes_really_are_swapped(rgb):
    msg = conv.rgb_to_image(rgb, "bgr8")
    first = np.frombuffer(msg.data, np.uint8)[:3]
    assert list(first) == list(rgb[0, 0, ::-1])


def test_mono_becomes_three_equal_channels(rgb):
    msg = conv.rgb_to_image(rgb[:, :, 0], "mono8")
    back = conv.image_to_rgb(msg)
    assert back.shape == (6, 5, 3)
    assert np.array_equal(back[:, :, 2], rgb[:, :, 0]) and np.array_equal(back[:, :, 0], back[:, :, 1])


def test_padded_rows_are_dropped(rgb):
    msg = conv.rgb_to_image(rgb)
    padded = np.zeros((6, 20), np.uint8)
    padded[:, :15] = rgb.reshape(6, 15)
    msg.step, msg.data = 20, padded.tobytes()
    assert np.array_equal(conv.image_to_rgb(msg), rgb)


def test_result_does_not_alias_the_message_buffer(rgb):
    msg = conv.rgb_to_image(rgb)
    out = conv.image_to_rgb(msg)
    msg.data = bytes(len(msg.data))
    assert np.array_equal(out, rgb)


@pytest.mark.parametrize("mutate, needle", [
    (lambda m: setattr(m, "encoding", "16UC1"), "encoding '16UC1'"),
    (lambda m: setattr(m, "encoding", "yuv422"), "not supported"),
    (lambda m: setattr(m, "data", bytes(m.data)[:-7]), "expected step*height"),
    (lambda m: setattr(m, "step", 10), "step 10"),
    (lambda m: setattr(m, "width", 4), "expected 5x6"),
    (lambda m: (setattr(m, "height", 0)), "0"),
])
def test_malformed_images_are_rejected_with_a_reason(rgb, mutate, needle):
    msg = conv.rgb_to_image(rgb)
    mutate(msg)
    with pytest.raises(ObservationError) as err:
        conv.image_to_rgb(msg, (6, 5))
    assert needle in str(err.value)


def test_rgb_to_image_refuses_bad_arrays(rgb):
    with pytest.raises(ObservationError):
        conv.rgb_to_image(rgb.astype(np.float32))
    with pytest.raises(ObservationError):
        conv.rgb_to_image(rgb[:, :, :2])
    with pytest.raises(ObservationError):
        conv.rgb_to_image(rgb, "rgba8")


def _direction() -> Direction:
    return Direction(name="fast", neurons=(NeuronRef("backbone", 1, 7), NeuronRef("action_expert", 0, 3)),
                     alpha=-4.5, mode="add", signs=(1.0, -1.0), provenance="keyword 'fast'")


def test_direction_round_trip():
    d = _direction()
    msg = conv.direction_to_msg(d)
    assert list(msg.layers) == [1, 0] and list(msg.neurons) == [7, 3]
    back = conv.msg_to_direction(msg)
    assert (back.name, back.neurons, back.alpha, back.mode, back.signs, back.provenance) == \
        (d.name, d.neurons, d.alpha, d.mode, d.signs, d.provenance)


@pytest.mark.parametrize("mutate, needle", [
    (lambda m: setattr(m, "layers", [1]), "lengths"),
    (lambda m: setattr(m, "signs", [1.0]), "signs"),
    (lambda m: setattr(m, "components", ["backbone", "vision"]), "vision"),
])
def test_inconsistent_concepts_are_refused(mutate, needle):
    msg = conv.direction_to_msg(_direction())
    mutate(msg)
    with pytest.raises(DirectionError, match=needle):
        conv.msg_to_direction(msg)


def test_steering_state_message():
    cfg = SteeringConfig(directions=(_direction(),), enabled=True, position="prefill")
    msg = conv.steering_state_msg(cfg, model_id="tiny", random_weights=True, inference_count=4)
    assert msg.enabled and msg.random_weights and msg.position_policy == "prefill"
    assert msg.inference_count == 4 and msg.concepts[0].name == "fast"


def test_action_chunk_round_trip():
    actions = np.arange(14, dtype=np.float32).reshape(2, 7) / 7
    chunk = ActionChunk(actions=actions, action_space="ee_delta_7d", inference_s=0.25, model_id="m", steered=True)
    msg = conv.action_chunk_msg(chunk, index=9)
    assert (msg.horizon, msg.action_dim, msg.inference_index) == (2, 7, 9)
    back = conv.chunk_from_msg(msg)
    assert np.allclose(back.actions, actions) and back.steered and back.action_space == "ee_delta_7d"
    msg.data = list(msg.data)[:-1]
    with pytest.raises(ObservationError):
        conv.chunk_from_msg(msg)


def test_concept_activations_message():
    stats = {"up": ConceptStat("up", 0.5, 2.0, 10, True), "fast": ConceptStat("fast", math.nan, math.nan, 0, False)}
    msg = conv.concept_activations_msg(stats, index=3)
    assert msg.concept_names == ["fast", "up"]
    assert math.isnan(msg.mean_activation[0]) and msg.max_activation[1] == 2.0
    assert msg.steered == [False, True]


def test_empty_concept_message_defaults():
    msg = SteeringConcept(name="x", components=["backbone"], layers=[0], neurons=[1])
    assert conv.msg_to_direction(msg).mode == "override"
