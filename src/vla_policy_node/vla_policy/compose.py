"""The node graphs of launch/*.launch.py, run in ONE process (for pip-only installs).

`ros2 launch vla_policy libero_sim.launch.py` needs launch/launch_ros, which a pip-only ROS install
lacks; `vla-steer launch libero_sim` builds the same nodes, from the same params files, in one
process with a MultiThreadedExecutor (the composition a component container would give).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from vla_steer_tools.errors import ConfigError, UnknownChoiceError

log = logging.getLogger(__name__)


def config_dir() -> Path:
    """The installed share/vla_policy/config (a symlink to the workspace's config/ in dev builds)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory("vla_policy")) / "config"
    except PackageNotFoundError:
        return Path(__file__).resolve().parents[3] / "config"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph: how to build it and which params file gives its values."""

    name: str
    params_file: str
    factory: Callable[..., Node]


def _policy_node(**kwargs) -> Node:
    """The policy node, configured and activated now when its params say `autostart` (what its
    own process does); an AutostartError (the reason) ends the graph before it runs."""
    from .policy_node import PolicyNode

    node = PolicyNode(**kwargs)
    try:
        node.autostart()
    except BaseException:
        node.destroy_node()
        raise
    return node


def _bridge_node(**kwargs) -> Node:
    from libero_sim_bridge.bridge_node import LiberoBridgeNode

    return LiberoBridgeNode(**kwargs)


#: Mirrors launch/libero_sim.launch.py and launch/ur5.launch.py (the UR driver runs separately).
GRAPHS: dict[str, tuple[NodeSpec, ...]] = {
    "libero_sim": (NodeSpec("libero", "libero_sim.yaml", _bridge_node),
                   NodeSpec("vla_policy", "policy_libero.yaml", _policy_node)),
    "ur5": (NodeSpec("vla_policy", "policy_ur5.yaml", _policy_node),),
}


def parse_override(text: str) -> tuple[str, str, Parameter]:
    """"node:name:=value" -> (node, name, Parameter) with the value parsed as YAML (like ros2 param)."""
    if ":=" not in text or ":" not in text.split(":=")[0]:
        raise ConfigError(f"override {text!r} must look like NODE:NAME:=VALUE, e.g. vla_policy:steering.alpha:=8.0")
    lhs, value = text.split(":=", 1)
    node, name = lhs.split(":", 1)
    return node, name, Parameter(name, value=yaml.safe_load(value))


def build_graph(graph: str, context: Context, overrides: Sequence[tuple[str, str, Parameter]] = (),
                extra: dict[str, dict] | None = None) -> list[Node]:
    """Construct the graph's nodes in `context`, each with its params file plus overrides."""
    if graph not in GRAPHS:
        raise UnknownChoiceError("graph", graph, GRAPHS)
    specs = GRAPHS[graph]
    unknown = {n for n, _, _ in overrides} - {s.name for s in specs}
    if unknown:
        raise UnknownChoiceError("node", sorted(unknown)[0], [s.name for s in specs])
    nodes = []
    for spec in specs:
        params = [p for n, _, p in overrides if n == spec.name]
        kwargs = dict((extra or {}).get(spec.name, {}))
        nodes.append(spec.factory(params_file=str(config_dir() / spec.params_file),
                                  parameter_overrides=params, context=context, **kwargs))
    return nodes


@contextlib.contextmanager
def running(nodes: Sequence[Node], context: Context, threads: int = 4) -> Iterator[MultiThreadedExecutor]:
    """Spin `nodes` on a background executor; stop and destroy them on exit."""
    executor = MultiThreadedExecutor(num_threads=threads, context=context)
    for node in nodes:
        executor.add_node(node)

    def spin() -> None:
        with contextlib.suppress(ExternalShutdownException):
            executor.spin()

    thread = threading.Thread(target=spin, name="ros-executor", daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        executor.shutdown(timeout_sec=5.0)
        for node in nodes:
            node.destroy_node()
        thread.join(timeout=5.0)


def run_launch(args: argparse.Namespace) -> int:
    context = Context()
    rclpy.init(context=context)
    try:
        nodes = build_graph(args.graph, context, [parse_override(o) for o in args.param])
        names = ", ".join(n.get_fully_qualified_name() for n in nodes)
        print(f"running {args.graph} in one process: {names} (Ctrl-C to stop)")
        with running(nodes, context):
            stop = threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(args.duration if args.duration > 0 else None)
    finally:
        rclpy.try_shutdown(context=context)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch", help="run a launch file's node graph in one process (pip-only installs)",
        description="Same nodes and params files as `ros2 launch vla_policy <graph>.launch.py`, composed "
        "in one process. Graphs: " + ", ".join(GRAPHS) + f". Params files come from {config_dir()}.",
    )
    p.add_argument("graph", choices=sorted(GRAPHS), help="which launch file's graph")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NODE:NAME:=VALUE",
                   help="parameter override, e.g. libero:task_id:=3 or vla_policy:steering.enabled:=true")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    p.set_defaults(func=run_launch)
