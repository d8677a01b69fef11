"""The bridge's parameter specs against config/libero_sim.yaml (no ROS node started)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from libero_sim_bridge.params import (
    SPEC_BY_NAME,
    BridgeParams,
    check_value,
    default_params_file,
    from_mapping,
    load_defaults,
)
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

ROOT = Path(__file__).resolve().parents[2]
YAML = ROOT / "config" / "libero_sim.yaml"


def test_yaml_names_exactly_the_declared_parameters() -> None:
    values = yaml.safe_load(YAML.read_text())["libero"]["ros__parameters"]
    assert set(values) == set(SPEC_BY_NAME)
    assert set(values) == set(BridgeParams.__dataclass_fields__)
    params = from_mapping(load_defaults(YAML))
    assert params.mode in ("lockstep", "realtime")


def test_installed_defaults_are_the_workspace_yaml() -> None:
    assert default_params_file().resolve() == YAML.resolve()


@pytest.mark.parametrize(("name", "value", "error", "match"), [
    ("suite", "libero_100", UnknownChoiceError, "libero_10"),
    ("mode", "fast", UnknownChoiceError, "lockstep"),
    ("image_size", 4, ConfigError, "out of range"),
    ("rate_hz", float("nan"), ConfigError, "not finite"),
    ("task_id", True, ConfigError, "expected int"),
    ("cameras", ["agentview", "top"], UnknownChoiceError, "wrist"),
    ("cameras", [], ConfigError, "empty"),
    ("no_such_param", 1, UnknownChoiceError, "suite"),
])
def test_bad_values_are_named(name: str, value: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        check_value(name, value)


def test_yaml_with_a_missing_key_is_refused(tmp_path: Path) -> None:
    doc = yaml.safe_load(YAML.read_text())
    del doc["libero"]["ros__parameters"]["rate_hz"]
    doc["libero"]["ros__parameters"]["rate"] = 5.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    expected = r"missing parameters \['rate_hz'\].*unknown parameters \['rate'\]"
    with pytest.raises(ConfigError, match=expected):
        load_defaults(bad)
