"""A scripted pick-and-place expert on privileged simulator state (no ROS, no simulator import)."""
