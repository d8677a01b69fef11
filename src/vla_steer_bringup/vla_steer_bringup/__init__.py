"""vla_steer_bringup: the node graphs (config/graphs.yaml) for `ros2 launch` and `vla-steer launch`."""
