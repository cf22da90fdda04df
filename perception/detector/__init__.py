"""Object detection: the YOLO detector, its training, export and line inference."""
