"""vla_policy: the ROS 2 policy node with live steering (a thin adapter over vla_steer_tools)."""
