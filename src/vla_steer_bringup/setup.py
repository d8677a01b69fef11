"""vla_steer_bringup: the node graphs (one description, config/graphs.yaml) for both `ros2 launch` and
`vla-steer launch`, kept outside vla_policy so the policy package never depends on a simulator."""
from setuptools import find_packages, setup

PACKAGE = "vla_steer_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", ["../../config/graphs.yaml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla-steer developers",
    maintainer_email="vla-steer@example.com",
    description="Node graphs of vla-steer (LIBERO sim, UR5e twin, real UR5): one description read by "
    "the launch files and by `vla-steer launch`",
    license="Apache-2.0",
    entry_points={"vla_steer.cli": ["launch = vla_steer_bringup.compose:register"]},
)
