"""Line nodes: thin wrappers that convert messages, call a library, publish the result."""
