#!/usr/bin/env bash
# Environment for running anything in this workspace: the venv, the colcon install/ overlay,
# ROS settings that keep DDS on this machine, headless rendering, and LIBERO's config.
# Usage: `source tools/env.sh` or `tools/env.sh COMMAND...` (runs COMMAND in that environment).
_VLA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_VLA_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
# Build time: rosidl generators are found through the ament index inside the venv.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# ROS_DOMAIN_ID is left to the user (ROS default 0) so that every terminal sees the same nodes;
# tests and CI pick a per-run id themselves (tests/conftest.py, .ci/run).
export ROS_LOG_DIR="${ROS_LOG_DIR:-$_VLA_ROOT/.state/ros_log}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
export LIBERO_CONFIG_PATH="${LIBERO_CONFIG_PATH:-$_VLA_ROOT/.state/libero}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export TOKENIZERS_PARALLELISM=false
if [ "${1:-}" != "--no-workspace" ] && [ -f "$_VLA_ROOT/install/setup.bash" ]; then
    # colcon's setup.bash reads unset variables; relax nounset while sourcing it.
    _vla_u=$-; set +u
    # shellcheck disable=SC1091
    source "$_VLA_ROOT/install/setup.bash"
    case $_vla_u in *u*) set -u;; esac
fi
[ "${1:-}" = "--no-workspace" ] && shift
if [ "${BASH_SOURCE[0]}" = "$0" ] && [ $# -gt 0 ]; then
    exec "$@"
fi
