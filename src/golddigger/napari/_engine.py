"""The napari plugin's only doors into the engine: candidates once, thresholds live, and
the analysis.

`find_candidates` runs the network on one plane and keeps every particle above a low
``floor`` score, sized and in pixels of the input, exactly as `Detector.predict` builds
them; `select_particles` then applies a threshold, the wanted classes and the region as
`Detector.predict` does, without touching the network. Because the cross-class
suppression keeps the strongest candidate whatever the floor, selecting from candidates
at a lower floor gives the same particles as running `Detector.predict` with the higher
threshold (`golddigger.model.postprocess.maps_to_particles`).

No napari here: these are plain functions, tested without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["FLOOR", "find_candidates", "run_analysis", "select_particles"]

logger = logging.getLogger(__name__)

#: Lowest threshold the live slider offers; candidates are kept down to it.
FLOOR = 0.05


def find_candidates(detector, plane: np.ndarray, pixel_size_nm: float, slice_index: int = 0,
                    floor: float = FLOOR, sizing: str | None = None,
                    tta: int = 1) -> ParticleTable:
    """Every particle of one 2D plane scoring at least ``floor``: the network runs once.

    Parameters
    ----------
    detector : golddigger.model.detector.Detector
    plane : (Y, X) array
    pixel_size_nm : float
    slice_index : int
        Stored in the table's ``slice`` column.
    floor : float
        The lowest threshold that `select_particles` will be asked for.
    sizing : {"maps", "image"}, optional
        Default: the model's.
    tta : int
        Test-time augmentation passes (see `Detector.predict`).

    Returns
    -------
    ParticleTable
        Centres in pixels of ``plane``, diameter = class, score = peak probability.
    """
    # The one place that knows how Detector.predict is built from its steps.
    from golddigger.model.postprocess import maps_to_particles
    from golddigger.model.sizing import measure_particles

    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise GoldDiggerError(f"expected a 2D plane, got shape {plane.shape}")
    sizing = detector.config.sizing if sizing is None else sizing
    if np.all(plane == plane.flat[0]):
        return ParticleTable.empty()
    classes = list(detector.classes)
    maps, (fx, fy) = detector.predict_maps(plane, pixel_size_nm, tta=tta)
    x, y, d, score = maps_to_particles(maps, classes, detector.pixel_size_nm,
                                       [float(floor)] * len(classes))
    del maps
    x = (x + 0.5) / fx - 0.5
    y = (y + 0.5) / fy - 0.5
    if sizing == "image":
        d, x, y = measure_particles(plane, x, y, classes, pixel_size_nm)
    return ParticleTable(x, y, d, score, np.full(x.size, int(slice_index)))


def select_particles(candidates: ParticleTable, detector, threshold: float | None = None,
                     classes: Sequence[float] | None = None,
                     region: Region | None = None) -> ParticleTable:
    """The particles `Detector.predict` reports, from `find_candidates`' table.

    Parameters
    ----------
    candidates : ParticleTable
        From `find_candidates` (any number of slices), with a floor at most ``threshold``.
    detector : Detector
        For its classes and thresholds.
    threshold : float, optional
        One threshold for every class; default: the model's tuned ones.
    classes : sequence of float, optional
        Keep only these diameters (nm).
    region : Region, optional
        Keep only particles whose centre is inside.

    Returns
    -------
    ParticleTable
        Per slice, ordered by row then column (as `Detector.predict`).
    """
    known = np.asarray(detector.classes, dtype=float)
    thresholds = np.asarray(detector.class_thresholds(threshold))
    if classes is None:
        wanted = known
    else:
        wanted = []
        for c in classes:
            match = known[np.abs(known - float(c)) < 0.5]
            if match.size == 0:
                raise GoldDiggerError(f"class {c} nm is not one this model knows "
                                      f"({', '.join(f'{d:g}' for d in known)} nm)")
            wanted.append(match[0])
        wanted = np.asarray(wanted)
    if len(candidates) == 0:
        return ParticleTable.empty()
    idx = np.clip(np.searchsorted(known, candidates.diameter_nm), 0, known.size - 1)
    keep = candidates.score >= thresholds[idx]
    keep &= np.isin(candidates.diameter_nm, wanted)
    if region is not None:
        keep &= region.contains(candidates.x, candidates.y)
    table = candidates[keep]
    order = np.lexsort((table.x, table.y, table.slice))
    return table[order]


def run_analysis(particles: ParticleTable, pixel_size_nm: float, region: Region | None,
                 outdir: str | Path, n_sim: int = 99, slice_index: int | None = None,
                 name: str = "") -> tuple[list[dict], Path | None]:
    """Analyse one image's particles with `golddigger.analysis` and write its outputs.

    Returns
    -------
    rows : list of dict
        The distribution summary (one row per class and "all").
    l_plot : Path or None
        The L-function plot (PNG), None without randomness tests.
    """
    from golddigger.analysis import analyze, write_outputs

    result = analyze(particles, pixel_size_nm, region, n_sim=n_sim, slice=slice_index,
                     name=name)
    written = write_outputs(result, outdir, overwrite=True)
    return result.summary_rows(), written.get("l_plot")
