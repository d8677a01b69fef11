"""`vla-steer steer|param|lifecycle`: talk to a running policy node on a pip-only install.

There is no `ros2` command on a pip-only machine, so these subcommands send the same requests:
`steer` calls the node's `~/set_steering` service (or sets its `steering.*` parameters with
`--via params`; `--list` calls `~/list_concepts`), and `param list|get|set|describe` use the
standard rcl_interfaces parameter services, exactly what `ros2 param` sends. Unlike `ros2 param
set`, `param set` reads the parameter's declared type first, so `8` sets a double to 8.0.
`lifecycle get|set|list` use the lifecycle_msgs services of a managed node, as `ros2 lifecycle`
does (same output: `active [3]`, `Transitioning successful`).

They plug into `vla-steer` through the `vla_steer.cli` entry-point group (see setup.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

import rclpy
import yaml
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.task import Future
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from vla_steer_msgs.msg import SteeringConcept, SteeringState
from vla_steer_msgs.srv import ListConcepts, SetSteering

from vla_steer_tools.errors import ConfigError, VlaSteerError


class RosCallError(VlaSteerError):
    """A service did not answer, or answered with a failure."""


@contextmanager
def cli_node(prefix: str = "vla_steer_cli") -> Iterator[Node]:
    """A short-lived node in its own context; always shut down."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node(f"{prefix}_{os.getpid()}", context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        context.try_shutdown()


def wait_result(node: Node, future: Future, timeout_s: float, what: str) -> Any:
    """Spin `node` until `future` completes or `timeout_s` passes (then RosCallError)."""
    executor = SingleThreadedExecutor(context=node.context)
    try:
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec=timeout_s)
    finally:
        executor.shutdown(timeout_sec=1.0)
    if not future.done():
        raise RosCallError(f"no answer from {what} within {timeout_s:g} s")
    return future.result()


#: Seconds between re-sent requests of a query (see `call_service`).
QUERY_RETRY_S = 5.0


def call_service(node: Node, srv_type: Any, name: str, request: Any, timeout_s: float,
                 idempotent: bool = False) -> Any:
    """Call `name` and wait up to `timeout_s` for the answer.

    idempotent (a query such as get_state): the request is sent again every QUERY_RETRY_S until an
    answer comes. A reply can be lost when the server answers before it has discovered the
    client's reply reader (wait_for_service only covers the request side); CI saw
    get_available_transitions go unanswered for 300 s right after a get_state had been answered.
    """
    client = node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise RosCallError(f"service {name} not available after {timeout_s:g} s (is the node running?)")
    if not idempotent:
        return wait_result(node, client.call_async(request), timeout_s, name)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        future = client.call_async(request)
        try:
            return wait_result(node, future, max(0.1, min(QUERY_RETRY_S, remaining)), name)
        except RosCallError:
            client.remove_pending_request(future)
            if time.monotonic() >= deadline:
                raise RosCallError(f"no answer from {name} within {timeout_s:g} s") from None


def format_state(state: SteeringState) -> str:
    """One line per concept plus a header, for the terminal."""
    head = f"steering {'ON' if state.enabled else 'off'} (position {state.position_policy}, " \
           f"model {state.model_id or '?'}{', RANDOM WEIGHTS' if state.random_weights else ''}, " \
           f"from inference {state.inference_count})"
    lines = [head] + [f"  {c.name}: {len(c.neurons)} neurons, {c.mode} alpha {c.alpha:g}" for c in state.concepts]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- steer


def _steer_via_service(node: Node, args: argparse.Namespace) -> None:
    request = SetSteering.Request(enabled=not args.off)
    request.concepts = [SteeringConcept(name=c, alpha=float(args.alpha or 0.0), mode=args.mode or "")
                        for c in args.concept]
    response = call_service(node, SetSteering, f"{args.node}/set_steering", request, args.timeout)
    if not response.success:
        raise RosCallError(f"{args.node} refused: {response.message}")
    print(format_state(response.state))


def _steer_via_params(node: Node, args: argparse.Namespace) -> None:
    params = {"steering.enabled": not args.off}
    if args.concept:
        params["steering.concepts"] = list(args.concept)
    if args.alpha is not None:
        params["steering.alpha"] = float(args.alpha)
    if args.mode is not None:
        params["steering.mode"] = args.mode
    client = param_client(node, args.node, args.timeout)
    msgs = [ParameterMsg(name=k, value=to_value(v)) for k, v in params.items()]
    result = wait_result(node, client.set_parameters_atomically(msgs), args.timeout, "set_parameters_atomically")
    if not result.result.successful:
        raise RosCallError(f"{args.node} refused: {result.result.reason}")
    print(f"set {', '.join(f'{k}={v}' for k, v in params.items())} on {args.node}")


def run_steer(args: argparse.Namespace) -> int:
    if args.list:
        return _list_concepts(args)
    if not args.concept and not args.off:
        raise ConfigError("give at least one --concept NAME, --off or --list")
    with cli_node() as node:
        (_steer_via_params if args.via == "params" else _steer_via_service)(node, args)
    return 0


def _list_concepts(args: argparse.Namespace) -> int:
    with cli_node() as node:
        response = call_service(node, ListConcepts, f"{args.node}/list_concepts", ListConcepts.Request(),
                                args.timeout)
    for name, desc, n in zip(response.names, response.descriptions, response.neuron_counts):
        print(f"{name} ({n} neurons): {desc}")
    if not response.names:
        print("(no directions in the node's steering.direction_dirs)")
    return 0


def register_steer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("steer", help="steer a running policy node (concepts, alpha, on/off, --list)",
                       description="Set the active steering concepts of a running vla_policy node; "
                       "takes effect at its next inference.")
    p.add_argument("--node", default="/vla_policy", help="policy node name (default /vla_policy)")
    p.add_argument("--concept", action="append", default=[], metavar="NAME",
                   help="concept from the node's direction library (repeatable)")
    p.add_argument("--alpha", type=float, help="alpha for the given concepts (default: each one's own)")
    p.add_argument("--mode", choices=("override", "add", "scale"), help="edit mode (default: each one's own)")
    p.add_argument("--off", action="store_true", help="switch steering off (keeps the concepts)")
    p.add_argument("--list", action="store_true", help="list the concepts the node can load, and exit")
    p.add_argument("--via", choices=("service", "params"), default="service",
                   help="SetSteering service (default) or the steering.* parameters")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node")
    p.set_defaults(func=run_steer)


# ----------------------------------------------------------------------------- param


def param_client(node: Node, remote: str, timeout_s: float) -> AsyncParameterClient:
    client = AsyncParameterClient(node, remote)
    if not client.wait_for_services(timeout_sec=timeout_s):
        raise RosCallError(f"parameter services of {remote} not available after {timeout_s:g} s")
    return client


_ARRAY_FIELDS = {
    ParameterType.PARAMETER_BOOL_ARRAY: ("bool_array_value", bool),
    ParameterType.PARAMETER_INTEGER_ARRAY: ("integer_array_value", int),
    ParameterType.PARAMETER_DOUBLE_ARRAY: ("double_array_value", float),
    ParameterType.PARAMETER_STRING_ARRAY: ("string_array_value", str),
}
_SCALAR_FIELDS = {
    ParameterType.PARAMETER_BOOL: ("bool_value", bool),
    ParameterType.PARAMETER_INTEGER: ("integer_value", int),
    ParameterType.PARAMETER_DOUBLE: ("double_value", float),
    ParameterType.PARAMETER_STRING: ("string_value", str),
}


def to_value(value: Any, type_: int | None = None) -> ParameterValue:
    """A Python value as a ParameterValue of `type_` (guessed from the value when None)."""
    if type_ is None:
        if isinstance(value, list) and not value:
            type_ = ParameterType.PARAMETER_STRING_ARRAY
        else:
            type_ = Parameter.Type.from_parameter_value(value).value
    if type_ in _SCALAR_FIELDS:
        attr, cast = _SCALAR_FIELDS[type_]
        if isinstance(value, (list, dict)) or (cast is not str and isinstance(value, str)) \
                or (cast is int and isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"value {value!r} is not a {cast.__name__}")
        return ParameterValue(type=type_, **{attr: cast(value)})
    if type_ in _ARRAY_FIELDS:
        attr, cast = _ARRAY_FIELDS[type_]
        if not isinstance(value, list):
            raise ConfigError(f"value {value!r} is not a list (write it as [a, b, ...])")
        return ParameterValue(type=type_, **{attr: [cast(v) for v in value]})
    raise ConfigError(f"cannot set a parameter of type {type_}")


def _describe(node: Node, client: AsyncParameterClient, name: str, timeout_s: float) -> Any:
    response = wait_result(node, client.describe_parameters([name]), timeout_s, "describe_parameters")
    if not response.descriptors or response.descriptors[0].type == ParameterType.PARAMETER_NOT_SET:
        raise ConfigError(f"parameter {name!r} is not declared on the node")
    return response.descriptors[0]


def run_param(args: argparse.Namespace) -> int:
    with cli_node() as node:
        client = param_client(node, args.node, args.timeout)
        if args.action == "list":
            response = wait_result(node, client.list_parameters(), args.timeout, "list_parameters")
            print("\n".join(sorted(response.result.names)))
        elif args.action == "get":
            response = wait_result(node, client.get_parameters([args.name]), args.timeout, "get_parameters")
            if not response.values or response.values[0].type == ParameterType.PARAMETER_NOT_SET:
                raise ConfigError(f"parameter {args.name!r} is not set on {args.node}")
            print(parameter_value_to_python(response.values[0]))
        elif args.action == "describe":
            d = _describe(node, client, args.name, args.timeout)
            print(f"{d.name}: {d.description}\n  type {Parameter.Type(d.type).name.lower()}, read_only {d.read_only}"
                  + (f", {d.additional_constraints}" if d.additional_constraints else ""))
        else:
            if args.value is None:
                raise ConfigError("param set needs a VALUE")
            d = _describe(node, client, args.name, args.timeout)
            value = to_value(yaml.safe_load(args.value) if args.value else "", d.type)
            response = wait_result(node, client.set_parameters([ParameterMsg(name=args.name, value=value)]),
                                   args.timeout, "set_parameters")
            result = response.results[0]
            if not result.successful:
                print(f"rejected: {result.reason}", file=sys.stderr)
                return 1
            print(f"set {args.name} = {parameter_value_to_python(value)}")
    return 0


def register_param(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("param", help="list/get/set/describe parameters of a running node",
                       description="Standard ROS 2 parameter services, as `ros2 param` uses them.")
    p.add_argument("action", choices=("list", "get", "set", "describe"))
    p.add_argument("node", help="node name, e.g. /vla_policy")
    p.add_argument("name", nargs="?", help="parameter name (get/set/describe)")
    p.add_argument("value", nargs="?", help="new value as YAML (set), e.g. 8.0, true, '[fast, up]'")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node")
    p.set_defaults(func=_checked_param)


def _checked_param(args: argparse.Namespace) -> int:
    if args.action != "list" and not args.name:
        raise ConfigError(f"param {args.action} needs a parameter NAME")
    return run_param(args)


# ----------------------------------------------------------------------------- lifecycle


def _transitions(node: Node, target: str, timeout_s: float) -> dict[str, int]:
    """Label -> id of the transitions available from the node's current state."""
    response = call_service(node, GetAvailableTransitions, f"{target}/get_available_transitions",
                            GetAvailableTransitions.Request(), timeout_s, idempotent=True)
    return {t.transition.label: t.transition.id for t in response.available_transitions}


def run_lifecycle(args: argparse.Namespace) -> int:
    with cli_node() as node:
        if args.action == "get":
            state = call_service(node, GetState, f"{args.node}/get_state", GetState.Request(), args.timeout,
                                 idempotent=True)
            print(f"{state.current_state.label} [{state.current_state.id}]")
            return 0
        available = _transitions(node, args.node, args.timeout)
        if args.action == "list":
            for label, tid in available.items():
                print(f"- {label} [{tid}]")
            return 0
        if not args.transition:
            raise ConfigError("lifecycle set needs a TRANSITION, e.g. configure, activate, deactivate, cleanup")
        if args.transition not in available:
            raise ConfigError(f"transition {args.transition!r} is not available now; available: "
                              f"{', '.join(available) or '(none)'}")
        request = ChangeState.Request(transition=Transition(id=available[args.transition], label=args.transition))
        response = call_service(node, ChangeState, f"{args.node}/change_state", request, args.timeout)
    if not response.success:
        print("Transitioning failed (the node's log and diagnostics say why)", file=sys.stderr)
        return 1
    print("Transitioning successful")
    return 0


def register_lifecycle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lifecycle", help="get/set the lifecycle state of a managed node (as `ros2 lifecycle`)",
                       description="Lifecycle of a managed node such as vla_policy: `get` prints its state, "
                       "`list` the transitions available now, `set` triggers one (configure loads the model, "
                       "activate starts commanding, deactivate holds, cleanup frees the model).")
    p.add_argument("action", choices=("get", "set", "list"))
    p.add_argument("node", help="node name, e.g. /vla_policy")
    p.add_argument("transition", nargs="?", help="set: configure, activate, deactivate, cleanup or shutdown")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for the node (configure loads the model: allow for that)")
    p.set_defaults(func=run_lifecycle)
