"""ROS 2 launch file of line1 (made by sorting.deploy.launch_gen); reads line1.yaml when launched."""

from pathlib import Path

from launch import LaunchDescription
from launch_ros.actions import Node

from sorting.deploy.launch_gen import launch_nodes

LINE_FILE = Path(__file__).resolve().parent / 'line1.yaml'


def generate_launch_description():
    return LaunchDescription([
        Node(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace,
             parameters=[n.parameters], remappings=n.remappings, output="screen")
        for n in launch_nodes(LINE_FILE)
    ])
