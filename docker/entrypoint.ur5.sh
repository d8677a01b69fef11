#!/usr/bin/env bash
# Source ROS and the workspace, then run the command (robot image: no LIBERO set-up).
set -e
source /opt/ros/kilted/setup.bash
source /ws/install/setup.bash
exec "$@"
