"""Parameter declarations: one dataclass -> descriptors, validation rules, rclpy integration."""

from __future__ import annotations

import dataclasses

import pytest
from rcl_interfaces.msg import ParameterType

from vla_policy import params as P
from vla_steer_tools.errors import ConfigError


def test_every_field_has_a_unique_ros_name_and_description():
    names = P.ros_names()
    assert len(names) == len(set(names))
    for f in P.specs():
        d = P.descriptor(f)
        assert d.description, f.name
        assert d.type != ParameterType.PARAMETER_NOT_SET


def test_names_carry_units_where_they_are_quantities():
    for name in P.ros_names():
        leaf = name.split(".")[-1]
        if any(word in leaf for word in ("age", "vel", "step_m", "workspace", "position_m")):
            assert leaf.endswith(("_s", "_rad_s", "_m", "_rad")), name
    assert "control_hz" in P.ros_names()


def test_ranges_and_choices_become_descriptor_constraints():
    fields = {f.metadata["ros_name"]: f for f in P.specs()}
    hz = P.descriptor(fields["control_hz"])
    assert hz.floating_point_range[0].from_value == 0.5 and hz.read_only
    steps = P.descriptor(fields["chunk.execute_steps"])
    assert steps.integer_range[0].from_value == 1 and not steps.read_only
    assert "ee_delta" in P.descriptor(fields["output.mode"]).additional_constraints


def test_defaults_are_valid_and_safe():
    p = P.PolicyParams()
    P.validate(p)
    assert p.output_dry_run is True and p.steering_enabled is False


@pytest.mark.parametrize("changes, needle", [
    ({"control_hz": 0.0}, "control_hz"),
    ({"steering.alpha": float("nan")}, "steering.alpha"),
    ({"output.mode": "teleport"}, "output.mode"),
    ({"steering.position": "middle"}, "steering.position"),
    ({"cameras.keys": ["a", "b"]}, "cameras.keys"),
    ({"limits.workspace_min_m": [0.0, 0.0], "limits.workspace_max_m": [1.0, 1.0]}, "workspace"),
    ({"limits.workspace_min_m": [0.0, 0.0, 2.0], "limits.workspace_max_m": [1.0, 1.0, 1.0]}, "workspace_min_m[2]"),
    ({"limits.joint_position_min_rad": [0.0], "limits.joint_position_max_rad": []}, "joint_position"),
    ({"chunk.execute_steps": 0}, "chunk.execute_steps"),
    ({"no.such": 1}, "no.such"),
])
def test_bad_values_raise_naming_the_parameter(changes, needle):
    with pytest.raises(ConfigError) as err:
        P.from_mapping(changes)
    assert needle in str(err.value)


def test_from_mapping_keeps_base_and_reads_none_arrays_as_empty():
    base = P.from_mapping({"steering.concepts": ["fast"], "control_hz": 5.0})
    new = P.from_mapping({"steering.alpha": 8.0, "steering.concepts": None}, base=base)
    assert new.control_hz == 5.0 and new.steering_alpha == 8.0 and new.steering_concepts == []
    assert P.changed_names(base, new, ["steering.alpha"]) and not P.changed_names(base, new, ["control_hz"])


def test_describe_lists_every_parameter():
    table = P.describe()
    for name in P.ros_names():
        assert f"`{name}`" in table


@pytest.fixture()
def ros_context():
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


def test_declare_on_a_node_with_overrides(ros_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node("params_probe", context=ros_context, parameter_overrides=[
        Parameter("control_hz", value=15.0), Parameter("steering.concepts", value=["fast", "up"])])
    try:
        p = P.declare(node)
        assert p.control_hz == 15.0 and p.steering_concepts == ["fast", "up"]
        assert p.limits_workspace_min_m == []  # declared with a type, no value
        assert node.describe_parameter("control_hz").description
        assert not node.set_parameters([Parameter("control_hz", value=20.0)])[0].successful  # read-only
        result = node.set_parameters([Parameter("chunk.execute_steps", value=0)])[0]
        assert not result.successful  # range enforced by rclpy from our descriptor
    finally:
        node.destroy_node()


def test_declare_rejects_bad_override(ros_context):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node("params_probe_bad", context=ros_context,
                parameter_overrides=[Parameter("output.mode", value="teleport")])
    try:
        with pytest.raises(ConfigError, match="teleport"):
            P.declare(node)
    finally:
        node.destroy_node()


def test_dataclass_is_frozen():
    p = P.PolicyParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.control_hz = 1.0  # type: ignore[misc]


def test_model_options_parse_into_load_options():
    from vla_steer_tools.errors import ConfigError
    from vla_policy.params import PolicyParams, model_options, validate

    p = PolicyParams(model_options="{center_crop: true, gripper: libero}", model_unnorm_key="libero_10_no_noops")
    assert model_options(p) == {"center_crop": True, "gripper": "libero", "unnorm_key": "libero_10_no_noops"}
    assert model_options(PolicyParams()) == {}
    for bad in ("[1, 2]", "{unclosed", "just text"):
        with pytest.raises(ConfigError, match="model.options"):
            validate(PolicyParams(model_options=bad))
