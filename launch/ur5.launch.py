"""Run the VLA policy node against a UR5 driven by ur_robot_driver (start the driver separately).

    ros2 launch vla_policy ur5.launch.py                        # dry run: chunks only, no command
    ros2 launch vla_policy ur5.launch.py dry_run:=false model_path:=/models/pi0_ur5

Parameter values come from config/policy_ur5.yaml; the arguments below override only the few
that change per session. Needs a full ROS 2 install (launch, launch_ros).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def launch_setup(context, *args, **kwargs):
    overrides = {
        "output.dry_run": ParameterValue(LaunchConfiguration("dry_run"), value_type=bool),
        "output.mode": LaunchConfiguration("output_mode"),
        "steering.direction_dirs": [LaunchConfiguration("direction_dir")],
    }
    if LaunchConfiguration("model_path").perform(context):
        overrides["model.path"] = LaunchConfiguration("model_path")
    policy = Node(
        package="vla_policy",
        executable="policy_node",
        name="vla_policy",
        output="screen",
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[("joint_states", LaunchConfiguration("joint_states_topic"))],
    )
    return [policy]


def generate_launch_description():
    share = FindPackageShare("vla_policy")
    declared_arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "policy_ur5.yaml"]),
            description="Parameter file of the policy node.",
        ),
        DeclareLaunchArgument(
            "dry_run",
            default_value="true",
            choices=["true", "false"],
            description="true: compute and publish vla/action_chunk but never send a command.",
        ),
        DeclareLaunchArgument(
            "output_mode",
            default_value="ee_twist",
            choices=["joint_trajectory", "joint_position", "ee_twist"],
            description="ee_twist -> MoveIt Servo (end-effector delta models); joint_trajectory -> "
            "scaled_joint_trajectory_controller, joint_position -> forward_position_controller "
            "(joint-space models).",
        ),
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description="Checkpoint directory; empty = model.path from the params file.",
        ),
        DeclareLaunchArgument(
            "direction_dir",
            default_value=PathJoinSubstitution([share, "config", "directions", "tiny-openvla"]),
            description="Directory of steering direction YAML files for the loaded model (one folder per model).",
        ),
        DeclareLaunchArgument(
            "joint_states_topic",
            default_value="/joint_states",
            description="Joint states published by ur_robot_driver.",
        ),
    ]
    return LaunchDescription(declared_arguments + [OpaqueFunction(function=launch_setup)])
