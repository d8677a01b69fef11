"""Test-wide settings: DDS stays on this machine, in a domain of its own, logs in a temp dir."""

from __future__ import annotations

import os
import random
import tempfile

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 200)))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="vla_steer_ros_log_"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
