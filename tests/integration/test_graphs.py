"""One description per node graph (config/graphs.yaml): the launch files (run against recording
stand-ins for launch / launch_ros, which are not installable here) and `vla-steer launch` build
the same nodes, params files, parameter overrides and remappings from it, for default and
non-default argument values — so the two cannot drift. And the policy package imports no simulator."""

from __future__ import annotations

import ast
import runpy
import sys
import types
from pathlib import Path

import pytest

from vla_steer_bringup import compose
from vla_steer_bringup import graphs as G
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = ["libero_sim", "ur5_sim", "ur5"]


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def perform(self, context):  # LaunchConfiguration.perform
        return context[self.args[0]]


def _stub_launch(monkeypatch) -> None:
    for module, classes in {"launch": ["LaunchDescription"], "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction"],
                            "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
                            "launch_ros.actions": ["Node"], "launch_ros.substitutions": ["FindPackageShare"]}.items():
        stub = types.ModuleType(module)
        for cls in classes:
            setattr(stub, cls, type(cls, (_Recorded,), {}))
        monkeypatch.setitem(sys.modules, module, stub)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))
    monkeypatch.delitem(sys.modules, "vla_steer_bringup.launch_graph", raising=False)


def _resolve_default(value) -> str:
    """A declared default: a string, or PathJoinSubstitution([FindPackageShare(pkg), *parts])."""
    if isinstance(value, str):
        return value
    share, *parts = value.args[0]
    return G.share_path(G.PackagePath(share.args[0], "/".join(parts)))


def _launch_file(graph: str, monkeypatch):
    """(declared {name: kwargs}, setup function) of launch/<graph>.launch.py."""
    _stub_launch(monkeypatch)
    description = runpy.run_path(str(ROOT / "launch" / f"{graph}.launch.py"))["generate_launch_description"]()
    actions = description.args[0]
    declared = {a.args[0]: a.kwargs for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    setup = next(a for a in actions if type(a).__name__ == "OpaqueFunction").kwargs["function"]
    return declared, setup


def _variants(declared: dict) -> list[dict[str, str]]:
    """All defaults; then every argument with choices at another choice, model_path set, a remap moved."""
    defaults = {k: _resolve_default(kw["default_value"]) for k, kw in declared.items()}
    changed = dict(defaults)
    for name, kw in declared.items():
        others = [c for c in kw.get("choices", []) if c != defaults[name]]
        if others:
            changed[name] = others[0]
    changed["model_path"] = "/models/x"
    if "joint_states_topic" in changed:
        changed["joint_states_topic"] = "/robot/joint_states"
    if "task_id" in changed:
        changed["task_id"] = "3"
    return [defaults, changed]


def _cli_nodes(graph: str, values: dict[str, str], monkeypatch) -> list[dict]:
    """What `vla-steer launch <graph> name:=value ...` constructs (factories recorded, not run)."""
    built: list[dict] = []

    def factory(python: str):
        def record(**kwargs):
            built.append({"python": python, **kwargs})
            return types.SimpleNamespace(destroy_node=lambda: None)
        return record

    monkeypatch.setattr(compose, "node_factory", factory)
    compose.build_graph(graph, context=None, arguments=values)
    return built


@pytest.mark.parametrize("graph", GRAPHS)
def test_launch_file_and_cli_build_the_same_graph(graph, monkeypatch):
    declared, setup = _launch_file(graph, monkeypatch)
    assert set(declared) == {a.name for a in G.graph(graph).arguments}
    assert all(kw["description"] for kw in declared.values())
    for values in _variants(declared):
        launched = setup(values)
        cli = _cli_nodes(graph, values, monkeypatch)
        assert [n.kwargs["name"] for n in launched] == [G.graph(graph).node(n.kwargs["name"]).name for n in launched]
        assert len(cli) == len(launched)
        rules = compose.remap_rules(G.plan(graph, values))
        for node, built in zip(launched, cli):
            spec = G.graph(graph).node(node.kwargs["name"])
            assert built["python"] == spec.python and node.kwargs["package"] == spec.package
            assert node.kwargs["executable"] == spec.executable
            params_file, overrides = node.kwargs["parameters"]
            assert built["params_file"] == params_file and Path(params_file).is_file(), params_file
            assert {p.name: p.value for p in built["parameter_overrides"]} == overrides
            for source, target in node.kwargs["remappings"]:
                assert f"{node.kwargs['name']}:{source}:={target}" in rules
        remaps = sum(len(n.kwargs["remappings"]) for n in launched)
        assert len(rules) == (1 + 2 * remaps if remaps else 0)  # "--ros-args" + "-r RULE" each


def test_arguments_reach_the_nodes_typed():
    twin, policy = G.plan("ur5_sim", {"dry_run": "true", "output_mode": "joint_position", "model_path": "/m"})
    assert policy.parameters["output.dry_run"] is True and policy.parameters["output.mode"] == "joint_position"
    assert policy.parameters["model.path"] == "/m" and twin.parameters == {"instruction": "pick up the red box"}
    libero, _ = G.plan("libero_sim", {"task_id": "3"})
    assert libero.parameters["task_id"] == 3
    (ur5,) = G.plan("ur5", {"joint_states_topic": "/robot/joint_states"})
    assert ur5.remappings == [("joint_states", "/robot/joint_states")] and "model.path" not in ur5.parameters
    assert ur5.parameters["output.dry_run"] is True  # the real arm: dry run unless asked


def test_libero_sim_graph_is_what_it_was():
    """The nodes and params files `vla-steer launch libero_sim` composed before the description."""
    libero, policy = G.plan("libero_sim")
    assert (libero.name, libero.python, Path(libero.params_file).name) == (
        "libero", "libero_sim_bridge.bridge_node:LiberoBridgeNode", "libero_sim.yaml")
    assert (policy.name, Path(policy.params_file).name) == ("vla_policy", "policy_libero.yaml")
    assert set(libero.parameters) == {"suite", "task_id", "init_state_id"}  # = the yaml's own values
    import yaml

    values = yaml.safe_load(Path(libero.params_file).read_text())["libero"]["ros__parameters"]
    assert {k: values[k] for k in libero.parameters} == libero.parameters


@pytest.mark.parametrize("bad,error", [({"dry_run": "maybe"}, UnknownChoiceError), ({"nope": "1"}, UnknownChoiceError)])
def test_bad_arguments_are_clear_errors(bad, error):
    with pytest.raises(error):
        G.plan("ur5_sim", bad)


def test_bad_typed_argument_names_the_argument():
    with pytest.raises(ConfigError, match="task_id"):
        G.plan("libero_sim", {"task_id": "three"})


@pytest.mark.parametrize("text", ["dry_run", "ur5:dry_run:=true", ":=1"])
def test_cli_argument_syntax(text):
    with pytest.raises(ConfigError):
        compose.parse_argument(text)


def test_cli_help_lists_the_graphs(capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="vla-steer")
    compose.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["launch", "--help"])
    out = capsys.readouterr().out
    assert all(g in out for g in GRAPHS) and "graphs.yaml" in out


def test_the_policy_package_imports_no_simulator():
    for path in sorted((ROOT / "src/vla_policy_node/vla_policy").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] in {"libero_sim_bridge", "ur5_sim", "libero", "robosuite"}], path
