"""LIBERO in simulation driven by the VLA policy node: the bridge (node `libero`) steps the
simulator once per action (lockstep) and the policy answers every new observation.

    ros2 launch vla_policy libero_sim.launch.py suite:=libero_10 task_id:=3
    ros2 param set /vla_policy steering.concepts "[fast]"    # then steering.enabled true

Parameter values come from config/libero_sim.yaml and config/policy_libero.yaml; the arguments
below override only the few that change per run. Needs a full ROS 2 install (launch, launch_ros);
on a pip-only install use `vla-steer demo` instead.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

SUITES = ["libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"]


def launch_setup(context, *args, **kwargs):
    bridge = Node(
        package="libero_sim_bridge",
        executable="bridge",
        name="libero",
        output="screen",
        parameters=[
            LaunchConfiguration("bridge_params_file"),
            {
                "suite": LaunchConfiguration("suite"),
                "task_id": ParameterValue(LaunchConfiguration("task_id"), value_type=int),
                "init_state_id": ParameterValue(LaunchConfiguration("init_state_id"), value_type=int),
            },
        ],
    )
    overrides = {"steering.direction_dirs": [LaunchConfiguration("direction_dir")]}
    if LaunchConfiguration("model_path").perform(context):
        overrides["model.path"] = LaunchConfiguration("model_path")
    policy = Node(
        package="vla_policy",
        executable="policy_node",
        name="vla_policy",
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
    )
    return [bridge, policy]


def generate_launch_description():
    share = FindPackageShare("vla_policy")
    declared_arguments = [
        DeclareLaunchArgument("suite", default_value="libero_10", choices=SUITES,
                              description="LIBERO task suite."),
        DeclareLaunchArgument("task_id", default_value="0", description="Task index in the suite."),
        DeclareLaunchArgument("init_state_id", default_value="0",
                              description="Which of the benchmark's fixed initial states."),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "policy_libero.yaml"]),
            description="Parameter file of the policy node.",
        ),
        DeclareLaunchArgument(
            "bridge_params_file",
            default_value=PathJoinSubstitution([FindPackageShare("libero_sim_bridge"), "config", "libero_sim.yaml"]),
            description="Parameter file of the simulation bridge.",
        ),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Checkpoint directory; empty = model.path from the params file."),
        DeclareLaunchArgument(
            "direction_dir",
            default_value=PathJoinSubstitution([share, "config", "directions", "tiny-openvla"]),
            description="Directory of steering direction YAML files for the loaded model (one folder per model).",
        ),
    ]
    return LaunchDescription(declared_arguments + [OpaqueFunction(function=launch_setup)])
