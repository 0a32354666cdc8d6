"""Gold Digger: immunogold particle detection in electron micrographs.

The public API (the CLI and the ImageJ bridge are thin layers over it):

>>> from golddigger import read_image, Detector
>>> image = read_image("synapse.tif", pixel_size_nm=0.5587)
>>> detector = Detector.from_pretrained()          # the shipped model
>>> particles = detector.predict(image)            # a ParticleTable
>>> particles.to_csv("synapse.csv")

Many files, as ``golddigger detect`` does (see `golddigger.batch`):

>>> from golddigger import BatchOptions, run_batch
>>> result = run_batch(paths, detector, "results/", BatchOptions(overlay=True))
"""

from __future__ import annotations

import logging

from golddigger.errors import GoldDiggerError
from golddigger.particles import ParticleTable

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "BatchOptions",
    "Detector",
    "GoldDiggerError",
    "ParticleTable",
    "__version__",
    "read_image",
    "read_particles",
    "run_batch",
]


def __getattr__(name: str):
    # Lazy imports keep `import golddigger` light (torch is imported only when needed).
    if name == "read_image":
        from golddigger.io.images import read_image

        return read_image
    if name == "read_particles":
        from golddigger.io.annotations import read_particles

        return read_particles
    if name in ("BatchOptions", "run_batch"):
        from golddigger import batch

        return getattr(batch, name)
    if name == "Detector":
        from golddigger.model.detector import Detector

        return Detector
    raise AttributeError(f"module 'golddigger' has no attribute {name!r}")
