"""Motion: jerk-limited timing, conveyor interception, sampled trajectories."""
