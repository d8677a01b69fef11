"""ur5_sim: a simulated UR5e (MuJoCo Menagerie UR5e + Robotiq 2F-85) on ur_robot_driver's topics."""
from setuptools import find_packages, setup

PACKAGE = "ur5_sim"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        # The twin's parameter values live only in the workspace's config/ur5_sim.yaml.
        (f"share/{PACKAGE}/config", ["../../config/ur5_sim.yaml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla-steer developers",
    maintainer_email="vla-steer@example.com",
    description="Simulated UR5e twin (MuJoCo) publishing joint_states and two cameras, following "
    "JointTrajectory / forward position commands like ur_robot_driver's controllers",
    license="Apache-2.0",
    entry_points={"console_scripts": ["twin = ur5_sim.twin_node:main"]},
)
