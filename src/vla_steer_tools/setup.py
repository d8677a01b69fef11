"""vla_steer_tools: the interpretability core (plain Python + torch, no ROS imports).

Installable with colcon (ament_python) or plain pip; the `vla-steer` command goes to bin/.
"""
from setuptools import find_packages, setup

PACKAGE = "vla_steer_tools"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    # the shipped mini-VLA checkpoint (models/minivla/weights/<name>/*) installs with the package
    package_data={f"{PACKAGE}.models.minivla": ["weights/*/*.json", "weights/*/*.safetensors", "weights/*/*.md"],
                  f"{PACKAGE}.browser": ["static/*"]},  # the neuron browser's page (served locally)
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="vla-steer developers",
    maintainer_email="vla-steer@example.com",
    description="Value-vector projection, concept discovery and activation steering for VLA models",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["vla-steer = vla_steer_tools.cli.main:main"],
    },
)
