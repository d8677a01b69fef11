"""LIBERO in simulation driven by the VLA policy node: the bridge (node `libero`) steps the
simulator once per action (lockstep) and the policy answers every new observation.

    ros2 launch vla_policy libero_sim.launch.py suite:=libero_10 task_id:=3
    ros2 param set /vla_policy steering.concepts "[fast]"    # then steering.enabled true

The graph (nodes, params files, these arguments) is written once in config/graphs.yaml, which
`vla-steer launch libero_sim` (pip-only installs, one process) reads too. Parameter values come
from config/libero_sim.yaml and config/policy_libero.yaml. Needs a full ROS 2 install.
"""

from vla_steer_bringup.launch_graph import graph_launch_description


def generate_launch_description():
    return graph_launch_description("libero_sim")
