"""libero_sim_bridge: LIBERO simulation exposed on the robot's ROS 2 topics (env.py has no ROS)."""
