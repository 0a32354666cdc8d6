"""Live thresholds: the network once, then any threshold at once.

`find_candidates` runs the first three steps of `Detector.predict` on one plane
(`Detector.measured_candidates`: `Detector.compute_maps`, the only one that runs the
network, once per scale pass; `Detector.find_candidates` with a low ``floor``;
`Detector.measure`). `Detector.apply_thresholds` (the fourth) then selects the
particles of any threshold at or above the floor, as often as a slider moves. Because
the cross-class suppression keeps the strongest candidate whatever the floor, selecting
from candidates at a lower floor gives the same particles as `Detector.predict` with the
higher threshold.

Used by Fiji's Preview (`golddigger.imagej.preview`) and napari's Detect Gold widget
(`golddigger.napari`); plain functions, no GUI here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from golddigger.particles import ParticleTable

__all__ = ["FLOOR", "find_candidates"]

#: Lowest threshold a live slider offers; candidates are kept down to it.
FLOOR = 0.05


def find_candidates(detector, plane: np.ndarray, pixel_size_nm: float, slice_index: int = 0,
                    floor: float = FLOOR, sizing: str | None = None,
                    tta: int = 1, classes: Sequence[float | str] | None = None
                    ) -> ParticleTable:
    """Every particle of one 2D plane scoring at least ``floor``, sized: the network runs
    once.

    Parameters
    ----------
    detector : golddigger.model.detector.Detector
    plane : (Y, X) array
    pixel_size_nm : float
    slice_index : int
        Stored in the table's ``slice`` column.
    floor : float
        The lowest threshold that will be applied (`Detector.apply_thresholds`).
    sizing : {"maps", "image"}, optional
        Default: the model's.
    tta : int
        Test-time augmentation passes (see `Detector.predict`).
    classes : sequence of float or str, optional
        Size classes the model does not have (any diameters or ranges): the network
        then sees the plane at their scale and every candidate's diameter is measured
        (`Detector.measure`); the table then serves only these classes. Default: the
        model's own.

    Returns
    -------
    ParticleTable
        Centres in pixels of ``plane``, diameter = class, score = peak probability.
    """
    plane = np.asarray(plane)
    return detector.measured_candidates(plane, pixel_size_nm, classes, float(floor), sizing,
                                        tta=tta, slice_index=slice_index)[0]
