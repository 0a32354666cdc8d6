"""The tables the Gold Digger commands show in ImageJ: one row per particle ("Gold Digger
Results") and one row per image slice ("Gold Digger Summary").

Pure Python: the Python-hosted path turns the rows into `ij.measure.ResultsTable` s, the
macro path writes them as CSV files that the ``.ijm`` opens. Both therefore show the same
columns and numbers.

Results columns ("Gold Digger Results")
    ``Image`` (the image's title), ``Name`` (the ROI's name in the ROI Manager), ``X``,
    ``Y`` (in the image's calibrated unit, ImageJ's convention: pixel column times pixel
    width), ``X_px``, ``Y_px``,
    ``Diameter_nm``, ``Class`` (the diameter in nm, a number: ``6``), ``Score``, ``Slice``
    (1-based, as ImageJ), ``Region``.
Summary columns
    The engine's summary schema (`golddigger.batch.summary_rows`), as in the CLI's
    ``summary.csv``: ``image, slice, region, pixel_size_nm, area_um2, total, n_<d>nm...,
    density_per_um2, density_<d>nm_per_um2...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from golddigger.io.csvtable import rows_to_csv as _rows_to_csv
from golddigger.particles import ParticleTable

__all__ = [
    "RESULTS_COLUMNS",
    "class_label",
    "results_rows",
    "roi_names",
    "rows_to_csv",
    "summary_rows",
]

#: Columns of the per-particle Results table, in order.
RESULTS_COLUMNS = ("Image", "Name", "X", "Y", "X_px", "Y_px", "Diameter_nm", "Class", "Score",
                   "Slice", "Region")


def class_label(diameter_nm: float) -> str:
    """``6.0`` -> ``"6 nm"`` (for messages; tables carry the number)."""
    return f"{float(diameter_nm):g} nm"


def roi_names(particles: ParticleTable, name_prefix: str = "") -> list[str]:
    """The ROI names `golddigger.io.rois.write_roiset` gives: ``gold-6nm-0001``, ...

    The number is the 1-based row of the table, zero-padded to at least 4 digits.
    """
    n = len(particles)
    width = max(4, len(str(n)))
    return [f"{name_prefix}gold-{float(d):g}nm-{i + 1:0{width}d}"
            for i, d in enumerate(particles.diameter_nm)]


def results_rows(particles: ParticleTable, pixel_size_nm: float, unit: str = "µm",
                 unit_nm: float = 1000.0, region: str = "",
                 names: Sequence[str] | None = None, image: str = "") -> list[dict]:
    """One row per particle.

    Parameters
    ----------
    particles : ParticleTable
        Positions in pixels; ``slice`` 0-based.
    pixel_size_nm : float
        nm per pixel.
    unit, unit_nm : str, float
        The calibrated unit for ``X``/``Y`` and its length in nm (µm: 1000).
    region : str
        What the particles were counted in (a ROI name, ``"image"``).
    names : sequence of str, optional
        ROI names (default: `roi_names`).
    image : str
        The image's title (the ``Image`` column, which reruns use to replace rows).
    """
    names = list(names) if names is not None else roi_names(particles)
    f = float(pixel_size_nm) / float(unit_nm)
    rows = []
    for i, (x, y, d, score, s) in enumerate(particles):
        rows.append({
            "Image": image, "Name": names[i], "X": round(x * f, 6), "Y": round(y * f, 6),
            "X_px": round(x, 2), "Y_px": round(y, 2), "Diameter_nm": float(d),
            "Class": float(d), "Score": round(score, 4), "Slice": int(s) + 1,
            "Region": region,
        })
    return rows


def summary_rows(particles: ParticleTable, classes: Iterable[float], pixel_size_nm: float,
                 area_px: float, slices: Iterable[int], image: str = "", region: str = ""
                 ) -> list[dict]:
    """One row per processed slice in the engine's summary schema
    (`golddigger.batch.summary_rows`); ``area_px`` is the region's area in pixels."""
    from golddigger.batch import summary_rows as engine_rows

    area_um2 = float(area_px) * (float(pixel_size_nm) / 1000.0) ** 2
    return engine_rows(particles, classes, pixel_size_nm, area_um2, slices, image, region)


def rows_to_csv(rows: Sequence[dict], path: str | Path | None = None,
                columns: Sequence[str] | None = None, plain: bool = False) -> str:
    """`golddigger.io.csvtable.rows_to_csv`, the one table writer."""
    return _rows_to_csv(rows, path, columns, plain)
