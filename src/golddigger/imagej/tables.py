"""The tables the Gold Digger commands show in ImageJ: one row per particle ("Results") and
one row per image slice ("Gold Digger Summary").

Pure Python: the Python-hosted path turns the rows into `ij.measure.ResultsTable` s, the
macro path writes them as CSV files that the ``.ijm`` opens. Both therefore show the same
columns and numbers.

Results columns ("Gold Digger Results")
    ``Image`` (the image's title), ``Name`` (the ROI's name in the ROI Manager), ``X``, ``Y`` (in the image's calibrated
    unit, ImageJ's convention: pixel column times pixel width), ``X_px``, ``Y_px``,
    ``Diameter_nm``, ``Class`` (``"6 nm"``), ``Score``, ``Slice`` (1-based, as ImageJ),
    ``Region``.
Summary columns
    ``Image``, ``Slice``, ``Region``, ``Area_um2``, ``Count``, ``Count_<d>nm`` per class,
    ``Density_per_um2``, ``Density_<d>nm_per_um2`` per class.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

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
    """``6.0`` -> ``"6 nm"``."""
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
            "Class": class_label(d), "Score": round(score, 4), "Slice": int(s) + 1,
            "Region": region,
        })
    return rows


def summary_rows(particles: ParticleTable, classes: Iterable[float], pixel_size_nm: float,
                 area_px: float, slices: Iterable[int], image: str = "", region: str = ""
                 ) -> list[dict]:
    """One row per processed slice: counts, region area and densities per class.

    Parameters
    ----------
    classes : iterable of float
        Every class to report (zero counts included), e.g. the detector's classes.
    area_px : float
        Area of the region in pixels (the same on every slice).
    slices : iterable of int
        The 0-based slices that were searched.
    """
    classes = sorted({float(c) for c in classes})
    area_um2 = float(area_px) * (float(pixel_size_nm) / 1000.0) ** 2
    rows = []
    for s in slices:
        on = particles.in_slice(int(s))
        row: dict = {"Image": image, "Slice": int(s) + 1, "Region": region,
                     "Area_um2": round(area_um2, 6), "Count": len(on)}
        counts = {d: len(on.of_class(d)) for d in classes}
        for d in classes:
            row[f"Count_{d:g}nm"] = counts[d]
        row["Density_per_um2"] = _density(len(on), area_um2)
        for d in classes:
            row[f"Density_{d:g}nm_per_um2"] = _density(counts[d], area_um2)
        rows.append(row)
    return rows


def _density(n: int, area_um2: float) -> float:
    return round(n / area_um2, 4) if area_um2 > 0 else float("nan")


def rows_to_csv(rows: Sequence[dict], path: str | Path | None = None,
                columns: Sequence[str] | None = None, plain: bool = False) -> str:
    """Write rows as CSV (UTF-8, header from the first row or ``columns``); returns the text.

    Rows may have different keys (e.g. summaries of images with other classes): the header
    is the union, in order of first appearance, and missing cells are empty. With
    ``plain``, commas, quotes and line breaks in text cells become ``;``, ``'`` and spaces,
    so that a macro can split lines at commas.
    """
    cols: list[str] = list(columns or [])
    for row in rows:
        for k in row:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        cells = [_cell(row.get(c, "")) for c in cols]
        if plain:
            cells = [c.replace(",", ";").replace('"', "'").replace("\n", " ").replace("\r", " ")
                     for c in cells]
        writer.writerow(cells)
    text = buf.getvalue()
    if path is not None:
        from golddigger.io.safe import atomic_write_text

        atomic_write_text(Path(path), text)
    return text


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "NaN"
        return f"{float(v):.6g}"
    return str(v)
