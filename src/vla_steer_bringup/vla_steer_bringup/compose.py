"""`vla-steer launch <graph>`: a graph of config/graphs.yaml run in ONE process (pip-only installs).

`ros2 launch vla_policy ur5_sim.launch.py` needs launch/launch_ros, which a pip-only ROS install
lacks; this builds the same nodes from the same plan (graphs.plan: params files, argument values,
remappings), in one process with a MultiThreadedExecutor (what a component container would give).
It lives outside vla_policy because it imports the simulator nodes (by the description's
`python:` entries, only those of the graph asked for), which a robot install does not have.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import threading
from typing import Any, Mapping, Sequence

import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from vla_policy.compose import running
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

from . import graphs as G


def parse_override(text: str) -> tuple[str, str, Parameter]:
    """"node:name:=value" -> (node, name, Parameter) with the value parsed as YAML (like ros2 param)."""
    if ":=" not in text or ":" not in text.split(":=")[0]:
        raise ConfigError(f"override {text!r} must look like NODE:NAME:=VALUE, e.g. vla_policy:steering.alpha:=8.0")
    lhs, value = text.split(":=", 1)
    node, name = lhs.split(":", 1)
    return node, name, Parameter(name, value=yaml.safe_load(value))


def parse_argument(text: str) -> tuple[str, str]:
    """"name:=value" (a launch argument, as `ros2 launch` takes it) -> (name, value)."""
    name, sep, value = text.partition(":=")
    if not sep or not name or ":" in name:
        raise ConfigError(f"launch argument {text!r} must look like NAME:=VALUE, e.g. dry_run:=true")
    return name, value


def node_factory(python: str) -> Any:
    """The callable named "module:callable" in the description."""
    module, _, attr = python.partition(":")
    return getattr(importlib.import_module(module), attr)


def remap_rules(plans: Sequence[G.NodePlan]) -> list[str]:
    """The plans' remappings as node-scoped ROS arguments (`-r node:from:=to`) for rclpy.init:
    in one process they are rules of the context, not of each node's constructor."""
    rules = [a for p in plans for f, t in p.remappings for a in ("-r", f"{p.name}:{f}:={t}")]
    return ["--ros-args", *rules] if rules else []


def build_graph(graph: str, context: Context, overrides: Sequence[tuple[str, str, Parameter]] = (),
                extra: Mapping[str, dict] | None = None, arguments: Mapping[str, str] | None = None) -> list[Node]:
    """Construct the graph's nodes in `context`: each with its params file, then the launch
    arguments' parameters (`arguments` given; None = params files only, as the demo wants),
    then `overrides` (-p), which win. Remappings are the context's (`remap_rules` at init)."""
    plans = G.plan(graph, arguments or {})
    if arguments is None:
        for p in plans:
            p.parameters.clear()
    names = [p.name for p in plans]
    unknown = {n for n, _, _ in overrides} - set(names)
    if unknown:
        raise UnknownChoiceError("node", sorted(unknown)[0], names)
    nodes: list[Node] = []
    try:
        for p in plans:
            params = {k: Parameter(k, value=v) for k, v in p.parameters.items()}
            params.update({name: param for n, name, param in overrides if n == p.name})
            kwargs = dict((extra or {}).get(p.name, {}))
            nodes.append(node_factory(p.python)(params_file=p.params_file, parameter_overrides=list(params.values()),
                                                context=context, **kwargs))
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def run_launch(args: argparse.Namespace) -> int:
    arguments = dict(parse_argument(a) for a in args.arguments)
    overrides = [parse_override(o) for o in args.param]
    plans = G.plan(args.graph, arguments)  # bad names / choices / values: an error before any node
    context = Context()
    rclpy.init(args=remap_rules(plans), context=context)
    try:
        nodes = build_graph(args.graph, context, overrides, arguments=arguments)
        names = ", ".join(n.get_fully_qualified_name() for n in nodes)
        print(f"running {args.graph} in one process: {names} (Ctrl-C to stop)")
        with running(nodes, context):
            stop = threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(args.duration if args.duration > 0 else None)
    finally:
        rclpy.try_shutdown(context=context)
    return 0


def _graphs_help() -> str:
    lines = []
    for name, g in G.load_graphs().items():
        args = ", ".join(f"{a.name} (default {G.share_path(a.default) if isinstance(a.default, G.PackagePath) else a.default!r})"
                         for a in g.arguments)
        lines.append(f"{name}: {g.summary} Arguments: {args}.")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    graphs = G.load_graphs()
    p = sub.add_parser(
        "launch", help="run a launch file's node graph in one process (pip-only installs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Same nodes, params files and arguments as `ros2 launch vla_policy <graph>.launch.py` "
        f"(both read {G.description_file()}), composed in one process.\n\n" + _graphs_help(),
    )
    p.add_argument("graph", choices=sorted(graphs), help="which graph")
    p.add_argument("arguments", nargs="*", metavar="NAME:=VALUE",
                   help="launch arguments, as for ros2 launch (e.g. dry_run:=true model_path:=/models/x)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NODE:NAME:=VALUE",
                   help="parameter override, e.g. libero:task_id:=3 or vla_policy:steering.enabled:=true")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    p.set_defaults(func=run_launch)
