"""vla_policy: the ROS 2 policy node (thin adapter over vla_steer_tools)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vla_policy"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        *[(f"share/{PACKAGE}/{d.rstrip('/')}", glob(f"{d}*.yaml")) for d in sorted(glob("config/directions/*/"))],
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla-steer developers",
    maintainer_email="vla-steer@example.com",
    description="ROS 2 node running a VLA policy (OpenVLA, Pi0) with live activation steering",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["policy_node = vla_policy.policy_node:main"],
        # Subcommands of the core's `vla-steer` command (each target is register(subparsers)).
        "vla_steer.cli": [
            "steer = vla_policy.cli_ros:register_steer",
            "param = vla_policy.cli_ros:register_param",
            "lifecycle = vla_policy.cli_ros:register_lifecycle",
            "demo = vla_policy.demo:register",
            "eval = vla_policy.evaluate:register",
            "study = vla_policy.steering_study:register",
            "validate = vla_policy.validate:register",
            "record = vla_policy.bag_recorder:register",
        ],
    },
)
