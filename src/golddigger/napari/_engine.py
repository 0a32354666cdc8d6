"""The napari plugin's only doors into the engine: candidates once, thresholds live, and
the analysis.

`find_candidates` (from `golddigger.live`, shared with Fiji's Preview) runs the first
three steps of `Detector.predict` on one plane, the network once; `select_particles` runs
the last, `Detector.apply_thresholds`, as often as the threshold slider moves.

No napari here: these are plain functions, tested without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from golddigger.io.regions import Region
from golddigger.live import FLOOR, find_candidates
from golddigger.particles import ParticleTable

__all__ = ["FLOOR", "find_candidates", "run_analysis", "select_particles"]

logger = logging.getLogger(__name__)

def select_particles(candidates: ParticleTable, detector, threshold: float | None = None,
                     classes: Sequence[float] | None = None,
                     region: Region | None = None) -> ParticleTable:
    """The particles `Detector.predict` reports, from `find_candidates`' table (no network).

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
        Sorted by slice, row, column (as `Detector.predict`).
    """
    return detector.apply_thresholds(candidates, threshold, classes, region)


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
