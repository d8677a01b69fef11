"""The simulated UR5e twin (node `ur5_sim`, MuJoCo, package ur5_sim) on ur_robot_driver's topics,
driven by the VLA policy node in lockstep: one twin step per joint command.

    ros2 launch vla_policy ur5_sim.launch.py                    # tiny RANDOM-weight fixture model
    ros2 launch vla_policy ur5_sim.launch.py output_mode:=joint_position
    ros2 param set /vla_policy steering.alpha 10.0

The graph (nodes, params files, these arguments) is written once in config/graphs.yaml, which
`vla-steer launch ur5_sim` (pip-only installs, one process) reads too. Parameter values come
from config/ur5_sim.yaml and config/policy_ur5_sim.yaml. Needs a full ROS 2 install.
"""

from vla_steer_bringup.launch_graph import graph_launch_description


def generate_launch_description():
    return graph_launch_description("ur5_sim")
