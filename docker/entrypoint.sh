#!/usr/bin/env bash
# Source ROS and the workspace, point libero at its assets and a non-interactive config, then run.
set -e
source /opt/ros/kilted/setup.bash
source /ws/install/setup.bash
export LIBERO_CONFIG_PATH="${LIBERO_CONFIG_PATH:-/root/.libero}"
python3 /ws/tools/libero_setup.py "$LIBERO_CONFIG_PATH"
exec "$@"
