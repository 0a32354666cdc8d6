"""Reading and writing what microscopists have on disk: images with calibration,
particle lists and ImageJ ROIs."""

from golddigger.io.images import CalibratedImage, read_image

__all__ = ["CalibratedImage", "read_image"]
