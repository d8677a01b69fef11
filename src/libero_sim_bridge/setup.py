"""libero_sim_bridge: LIBERO simulation exposed on the same ROS 2 topics as the robot."""
from setuptools import find_packages, setup

PACKAGE = "libero_sim_bridge"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        # The bridge's parameter values live only in the workspace's config/libero_sim.yaml.
        (f"share/{PACKAGE}/config", ["../../config/libero_sim.yaml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla-steer developers",
    maintainer_email="vla-steer@example.com",
    description="LIBERO (robosuite/MuJoCo) simulation node publishing cameras, joint states and "
    "end-effector pose, executing 7-D end-effector delta actions",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["bridge = libero_sim_bridge.bridge_node:main"],
        # `vla-steer data ...` (demonstrations), a subcommand of the core's CLI.
        "vla_steer.cli": ["data = libero_sim_bridge.cli_data:register",
                          "sweep = libero_sim_bridge.cli_sweep:register"],
    },
)
