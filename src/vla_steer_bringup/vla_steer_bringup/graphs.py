"""The node graphs of config/graphs.yaml as data, and what a graph + argument values make of them.

Plain Python (no rclpy, no launch): `plan(graph, values)` turns launch-argument values (strings,
as `ros2 launch` gives them) into the concrete nodes — package, executable, params file,
parameter overrides, remappings — and both launch/*.launch.py (launch_graph.py) and
`vla-steer launch` (compose.py) build their nodes from that one plan, so they cannot drift.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from vla_steer_tools.errors import ConfigError, UnknownChoiceError

#: The workspace root in a source checkout (src/vla_steer_bringup/vla_steer_bringup/graphs.py).
WORKSPACE = Path(__file__).resolve().parents[3]
TYPES: dict[str, Callable[[str], Any]] = {
    "str": str, "int": int, "float": float, "list": lambda v: [v],
    "bool": lambda v: {"true": True, "false": False}[v.strip().lower()],
}


@dataclass(frozen=True)
class PackagePath:
    """A file in an installed package's share directory (share/<package>/<path>)."""

    package: str
    path: str


def share_path(ref: PackagePath) -> str:
    """The installed share/<package>/<path>; the workspace's <path> when the package is not
    installed or its install predates the file (a source checkout, a stale build)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        installed = Path(get_package_share_directory(ref.package)) / ref.path
    except PackageNotFoundError:
        installed = None
    if installed is not None and (installed.exists() or not (WORKSPACE / ref.path).exists()):
        return str(installed)
    return str(WORKSPACE / ref.path)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    package: str
    executable: str
    python: str  # "module:callable" building the node in-process
    params_file: PackagePath
    remappings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Argument:
    """A launch argument and what it changes: one parameter, a params file, or a remapping."""

    name: str
    description: str
    default: str | PackagePath
    choices: tuple[str, ...] = ()
    node: str = ""
    param: str = ""  # sets this parameter of `node` ...
    type: str = "str"  # ... converted like this
    unless_empty: bool = False  # "" sets nothing
    params_file_of: str = ""  # or replaces that node's params file
    remap_from: str = ""  # or remaps this topic of `node` to the value


@dataclass(frozen=True)
class Graph:
    name: str
    summary: str
    nodes: tuple[NodeSpec, ...]
    arguments: tuple[Argument, ...]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise UnknownChoiceError("node", name, [n.name for n in self.nodes])


@dataclass
class NodePlan:
    """One node as it will run: everything `launch_ros.actions.Node` or an in-process build needs."""

    name: str
    package: str
    executable: str
    python: str
    params_file: str
    parameters: dict[str, Any] = field(default_factory=dict)  # overrides over the params file
    remappings: list[tuple[str, str]] = field(default_factory=list)


def description_file() -> Path:
    return Path(share_path(PackagePath("vla_steer_bringup", "config/graphs.yaml")))


@functools.lru_cache(maxsize=4)
def load_graphs(path: str | None = None) -> dict[str, Graph]:
    """Every graph of config/graphs.yaml (or `path`), checked (nodes and arguments refer to each other)."""
    source = Path(path) if path else description_file()
    try:
        doc = yaml.safe_load(source.read_text())
        return {name: _graph(name, body) for name, body in doc.items()}
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not a valid graph description ({type(exc).__name__}: {exc})") from exc


def graph(name: str) -> Graph:
    graphs = load_graphs()
    if name not in graphs:
        raise UnknownChoiceError("graph", name, graphs)
    return graphs[name]


def _ref(value: Any) -> str | PackagePath:
    return PackagePath(value["package"], value["path"]) if isinstance(value, dict) else str(value)


def _graph(name: str, body: Mapping[str, Any]) -> Graph:
    nodes = tuple(NodeSpec(n["name"], n["package"], n["executable"], n["python"], _ref(n["params_file"]),
                           tuple((k, v) for k, v in (n.get("remappings") or {}).items()))
                  for n in body["nodes"])
    arguments = []
    for a in body.get("arguments", []):
        sets, remaps = a.get("sets") or {}, a.get("remaps") or {}
        arg = Argument(a["name"], a["description"], _ref(a["default"]), tuple(a.get("choices", ())),
                       node=sets.get("node") or remaps.get("node", ""), param=sets.get("param", ""),
                       type=sets.get("type", "str"), unless_empty=bool(sets.get("unless_empty", False)),
                       params_file_of=a.get("params_file_of", ""), remap_from=remaps.get("from", ""))
        if arg.type not in TYPES:
            raise ConfigError(f"graph {name}: argument {arg.name} has unknown type {arg.type!r}")
        if sum(map(bool, (arg.param, arg.params_file_of, arg.remap_from))) != 1:
            raise ConfigError(f"graph {name}: argument {arg.name} must set exactly one of a parameter, "
                              "a params file (params_file_of) or a remapping")
        arguments.append(arg)
    g = Graph(name, body.get("summary", ""), nodes, tuple(arguments))
    for arg in g.arguments:
        g.node(arg.node or arg.params_file_of)  # UnknownChoiceError for a node not in the graph
    return g


def argument_values(g: Graph, given: Mapping[str, str], resolve: Callable[[PackagePath], str] = share_path
                    ) -> dict[str, str]:
    """Every argument's value: the given ones (checked against choices), the rest their defaults."""
    unknown = set(given) - {a.name for a in g.arguments}
    if unknown:
        raise UnknownChoiceError(f"argument of graph {g.name}", sorted(unknown)[0], [a.name for a in g.arguments])
    values = {}
    for arg in g.arguments:
        default = resolve(arg.default) if isinstance(arg.default, PackagePath) else arg.default
        value = given.get(arg.name, default)
        if value == "" and (arg.type != "str" or arg.choices):  # "" means "not set" where it can't be a value
            value = default
        if arg.choices and value not in arg.choices:
            raise UnknownChoiceError(f"value of argument {arg.name}", value, arg.choices)
        values[arg.name] = value
    return values


def plan(name: str, given: Mapping[str, str] = (), resolve: Callable[[PackagePath], str] = share_path,
         graphs: Mapping[str, Graph] | None = None) -> list[NodePlan]:
    """The graph's nodes for these argument values (strings; missing = default)."""
    g = graphs[name] if graphs is not None else graph(name)
    values = argument_values(g, dict(given), resolve)
    nodes = {s.name: NodePlan(s.name, s.package, s.executable, s.python, resolve(s.params_file),
                              remappings=list(s.remappings)) for s in g.nodes}
    for arg in g.arguments:
        value = values[arg.name]
        if arg.params_file_of:
            nodes[arg.params_file_of].params_file = value
        elif arg.remap_from:
            nodes[arg.node].remappings.append((arg.remap_from, value))
        elif not (arg.unless_empty and value == ""):
            try:
                nodes[arg.node].parameters[arg.param] = TYPES[arg.type](value)
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"argument {arg.name}:={value!r} is not a {arg.type}") from exc
    return list(nodes.values())
