"""A graph of config/graphs.yaml as a ROS 2 LaunchDescription (what launch/*.launch.py return).

The arguments are declared from the description; at launch time an OpaqueFunction reads their
values and builds one `launch_ros.actions.Node` per `graphs.plan` entry, the same plan
`vla-steer launch` composes in one process. Needs a full ROS 2 install (launch, launch_ros).
"""

from __future__ import annotations

from typing import Any

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from . import graphs as G


def _default(value: str | G.PackagePath) -> Any:
    if isinstance(value, G.PackagePath):
        return PathJoinSubstitution([FindPackageShare(value.package), *value.path.split("/")])
    return value


def graph_launch_description(name: str) -> LaunchDescription:
    graph = G.graph(name)
    declared = []
    for arg in graph.arguments:
        extra = {"choices": list(arg.choices)} if arg.choices else {}
        declared.append(DeclareLaunchArgument(arg.name, default_value=_default(arg.default),
                                              description=arg.description, **extra))

    def launch_setup(context: Any, *args: Any, **kwargs: Any) -> list:
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        return [Node(package=p.package, executable=p.executable, name=p.name, output="screen",
                     parameters=[p.params_file, p.parameters], remappings=p.remappings)
                for p in G.plan(name, values)]

    return LaunchDescription(declared + [OpaqueFunction(function=launch_setup)])
