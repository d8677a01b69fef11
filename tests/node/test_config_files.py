"""config/policy_*.yaml name exactly the declared parameters with valid values; launch files compile."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from vla_policy import params as P

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "config").glob("policy_*.yaml"))
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def test_both_robot_configs_exist():
    assert {c.name for c in CONFIGS} >= {"policy_ur5.yaml", "policy_libero.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_yaml_keys_equal_declared_parameters(path):
    data = yaml.safe_load(path.read_text())
    assert list(data) == ["vla_policy"], "parameters are for the node named vla_policy"
    values = _flatten(data["vla_policy"]["ros__parameters"])
    assert set(values) == set(P.ros_names()), (
        f"missing: {sorted(set(P.ros_names()) - set(values))}, unknown: {sorted(set(values) - set(P.ros_names()))}")
    P.from_mapping(values)  # every value passes the node's own validation


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_yaml_value_types_match_declarations(path):
    """rclpy refuses 20 for a double: every double must be written as a float in the file."""
    values = _flatten(yaml.safe_load(path.read_text())["vla_policy"]["ros__parameters"])
    for f in P.specs():
        value = values[f.metadata["ros_name"]]
        kind = str(f.type)
        if kind == "float":
            assert isinstance(value, float), f"{f.metadata['ros_name']}: write {value} as a float"
        elif kind == "int":
            assert isinstance(value, int) and not isinstance(value, bool)
        elif kind == "bool":
            assert isinstance(value, bool)
        elif kind.startswith("list"):
            assert isinstance(value, list)


def test_robot_config_is_dry_run_and_sim_is_lockstep():
    ur5 = yaml.safe_load((ROOT / "config/policy_ur5.yaml").read_text())["vla_policy"]["ros__parameters"]
    sim = yaml.safe_load((ROOT / "config/policy_libero.yaml").read_text())["vla_policy"]["ros__parameters"]
    assert ur5["output"]["dry_run"] is True
    assert sim["output"]["lockstep"] is True and sim["output"]["mode"] == "ee_delta"


def test_rclpy_accepts_the_params_file(tmp_path):
    """The real rcl YAML parser + our declarations, without starting the node's model."""
    import rclpy
    from rclpy.node import Node

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        for path in CONFIGS:
            node = Node("vla_policy", context=ctx, cli_args=["--ros-args", "--params-file", str(path)])
            try:
                p = P.declare(node)
                expected = _flatten(yaml.safe_load(path.read_text())["vla_policy"]["ros__parameters"])
                assert p.control_hz == expected["control_hz"] and p.output_mode == expected["output.mode"]
                assert p.cameras_keys == expected["cameras.keys"] and p.steering_concepts == []
            finally:
                node.destroy_node()
    finally:
        ctx.try_shutdown()


def test_three_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {"ur5.launch.py", "libero_sim.launch.py", "ur5_sim.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_compiles_and_builds_its_graph_from_the_description(path):
    """Each launch file is its graph of config/graphs.yaml (the nodes, params files and arguments
    are checked on the stub run below and against `vla-steer launch` in tests/integration/test_graphs.py)."""
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    compile(tree, str(path), "exec")
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "graph_launch_description"]
    assert [ast.literal_eval(c.args[0]) for c in calls] == [path.name.removesuffix(".launch.py")]


class _Recorded:
    """Stands in for any launch / launch_ros class: remembers its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def perform(self, context):  # LaunchConfiguration.perform
        return context.get(self.args[0], "")


def _stub_modules(monkeypatch):
    import sys
    import types

    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros.actions": ["Node"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module, classes in names.items():
        stub = types.ModuleType(module)
        for cls in classes:
            setattr(stub, cls, type(cls, (_Recorded,), {}))
        monkeypatch.setitem(sys.modules, module, stub)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))
    monkeypatch.delitem(sys.modules, "vla_steer_bringup.launch_graph", raising=False)  # re-import on the stubs


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_runs_against_stub_launch_api(path, monkeypatch):
    """launch/launch_ros are not installable here: run the file's functions against recording stubs."""
    import runpy

    _stub_modules(monkeypatch)
    module = runpy.run_path(str(path))
    description = module["generate_launch_description"]()
    actions = description.args[0]
    declared = {a.args[0]: a.kwargs for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    assert "params_file" in declared and all(kw["description"] for kw in declared.values())
    for kw in declared.values():
        if "choices" in kw:
            assert kw["default_value"] in kw["choices"]
    setup = next(a for a in actions if type(a).__name__ == "OpaqueFunction").kwargs["function"]
    config = {"ur5.launch.py": "policy_ur5.yaml", "libero_sim.launch.py": "policy_libero.yaml",
              "ur5_sim.launch.py": "policy_ur5_sim.yaml"}[path.name]
    assert declared["params_file"]["default_value"].args[0][1:] == ["config", config]
    assert (ROOT / "config" / config).is_file()
    for model_path in ("", "/models/x"):
        nodes = setup({"model_path": model_path})
        policy = [n for n in nodes if n.kwargs["name"] == "vla_policy"]
        assert len(policy) == 1
        policy = policy[0]
        assert policy.kwargs["package"] == "vla_policy" and policy.kwargs["executable"] == "policy_node"
        overrides = policy.kwargs["parameters"][1]
        assert set(overrides) <= set(P.ros_names())
        assert ("model.path" in overrides) == bool(model_path)
