"""colcon (ament_python) build of crmsort: one ``ros2 run crmsort <node>`` entry point per node.

The Python packages (``sorting``, ``perception``, ``robot``, ``calibration``) are the
repository's own, two directories up; this folder only adds what colcon and ``ros2 run``
need (``package.xml``, the ament index marker, ``lib/crmsort`` executables, the launch
files). Build with ``--symlink-install``: the code then runs from the repository, where
it finds its models (``datasets/``) and calibration (``launch/``)::

    colcon build --symlink-install --paths <repo>/sorting/msgs/crmsort_msgs <repo>/ros2/crmsort

(``--paths``, not a crawl of the repository: its root is a plain Python project.) The
Python dependencies come from the repository's ``pyproject.toml`` (``pip install -e
<repo>`` into the Python that ROS 2 uses). ``NODES`` must name the nodes of the line
(``launch/line1.yaml``); ``tests/sorting/test_deploy_colcon.py`` checks it.
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "crmsort"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SRC = os.path.relpath(ROOT, HERE)  # package_dir and data files are relative to this folder
NODES = [
    "sim_line", "line_monitor", "line_control", "detector", "volume", "hsi", "xrt", "tracker",
    "xrf_driver", "xrf_quant", "arm1", "arm2", "scheduler",
]
LAUNCH = ["line1.launch.py", "line1.yaml", "line1.calibration.yaml", "line1.hsi_reference.npz"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(
        str(ROOT), include=["sorting*", "perception*", "robot*", "calibration*"]),
    package_dir={"": SRC},
    package_data={"": ["*.msg", "*.xml", "*.txt", "py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", [f"{SRC}/launch/{name}" for name in LAUNCH]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="crmsort developers",
    maintainer_email="dev@crmsort.invalid",
    description="crmsort nodes for ROS 2 (ament_python)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            *(f"{node} = sorting.deploy.rclpy_host:main_{node}" for node in NODES),
            "crmsort = sorting.cli.main:main",
        ],
    },
)
