"""Deployment: the same nodes across processes and machines over DDS, on rclpy, from launch/.

- :mod:`sorting.deploy.dds`: Cyclone DDS transport with ROS 2 wire conventions
  (``rt/`` topics, ``pkg::msg::dds_::Type_`` types, plain CDR), loopback by default;
- :mod:`sorting.deploy.bridge`: an in-process executor ⇄ DDS;
- :mod:`sorting.deploy.group` / :mod:`sorting.deploy.processes`: one process per
  node group on a shared lockstep ``/clock``, supervised, recorded;
- :mod:`sorting.deploy.health`: ``/diagnostics`` for every node, stale watchdogs;
- :mod:`sorting.deploy.launch_gen`: ROS 2 launch files from the line YAML;
- :mod:`sorting.deploy.rclpy_host`: the nodes inside rclpy when ROS 2 is installed.

Submodules are imported on use (cyclonedds is only loaded by the DDS parts).
"""
