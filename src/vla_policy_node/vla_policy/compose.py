"""What composing the policy node into one process needs, with no simulator in sight.

The graphs themselves (which nodes, params files, arguments) are config/graphs.yaml, composed by
`vla_steer_bringup.compose` (`vla-steer launch`), which lives outside this package so a robot
install needs no simulator. Here: where the params files are, the policy node as a composed
process builds it (`autostarted_policy_node`, named in the description) and `running`, a
background executor for a list of nodes.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator, Sequence

from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

def config_dir() -> Path:
    """The installed share/vla_policy/config (a symlink to the workspace's config/ in dev builds)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory("vla_policy")) / "config"
    except PackageNotFoundError:
        return Path(__file__).resolve().parents[3] / "config"


def autostarted_policy_node(**kwargs) -> Node:
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
