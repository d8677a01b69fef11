"""Run the VLA policy node against a UR5 driven by ur_robot_driver (start the driver separately).

    ros2 launch vla_policy ur5.launch.py                        # dry run: chunks only, no command
    ros2 launch vla_policy ur5.launch.py dry_run:=false model_path:=/models/pi0_ur5

The graph (node, params file, these arguments) is written once in config/graphs.yaml, which
`vla-steer launch ur5` reads too. Parameter values come from config/policy_ur5.yaml; the
arguments override only the few that change per session. Needs a full ROS 2 install.
"""

from vla_steer_bringup.launch_graph import graph_launch_description


def generate_launch_description():
    return graph_launch_description("ur5")
