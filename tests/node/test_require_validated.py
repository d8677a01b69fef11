"""`steering.require_validated`: a direction without a PASS stamp from `vla-steer validate` in its
provenance cannot steer, by parameters or by SetSteering, and the refusal says why (issue 10)."""

from __future__ import annotations

import pytest
from vla_steer_msgs.msg import SteeringConcept

from vla_policy.params import from_mapping
from vla_policy.steering_control import SteeringControl
from vla_steer_tools.errors import ConfigError
from vla_steer_tools.steering.directions import Direction, save_direction
from vla_steer_tools.steering.validation import mark_validation
from vla_steer_tools.types import NeuronRef

PASS = "[validation: PASS open loop on bag b; fast at alpha 8: effect +9.0%]"
FAIL = "[validation: FAIL closed loop; slow at alpha 8: effect -0.1%]"


@pytest.fixture()
def control(tmp_path) -> SteeringControl:
    for name, stamp in (("fast", PASS), ("slow", FAIL), ("up", "")):
        d = Direction(name, tuple(NeuronRef("backbone", 0, i) for i in range(3)), provenance="keyword search")
        save_direction(mark_validation(d, stamp) if stamp else d, tmp_path / f"{name}.yaml")
    return SteeringControl([str(tmp_path)])


def _params(concept: str, enabled: bool = True, required: bool = True):
    return from_mapping({"model.path": "tiny", "steering.enabled": enabled, "steering.concepts": [concept],
                         "steering.require_validated": required})


def test_validated_direction_steers(control):
    assert control.from_params(_params("fast")).directions[0].name == "fast"


@pytest.mark.parametrize("concept, why", [("up", "never validated"), ("slow", "FAILED validation")])
def test_unvalidated_or_failed_direction_is_refused_with_the_reason(control, concept, why):
    with pytest.raises(ConfigError, match=f"require_validated.*{why}"):
        control.from_params(_params(concept))
    with pytest.raises(ConfigError, match=why):  # the service path ends in the same check
        control.from_request([SteeringConcept(name=concept)], True, _params("fast"))


def test_refusal_only_when_required_and_enabled(control):
    assert control.from_params(_params("up", required=False)).enabled
    assert not control.from_params(_params("up", enabled=False)).enabled


def test_a_new_stamp_replaces_the_old_one():
    d = Direction("x", (NeuronRef("backbone", 0, 1),), provenance="found somewhere " + FAIL)
    marked = mark_validation(d, PASS)
    assert marked.provenance == "found somewhere " + PASS
