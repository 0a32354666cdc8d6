"""The detector: networks, targets, post-processing, model folders and inference."""
