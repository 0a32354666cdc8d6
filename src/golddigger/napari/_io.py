"""napari reader and writers: Gold Digger's particle CSVs (``x,y,diameter_nm,score,slice``)
and ImageJ RoiSets (``<stem>_RoiSet.zip``) as Points layers, and back.

The pixel size of a file (for point sizes and the layer scale) is taken from the
``summary.csv`` that ``golddigger detect`` writes beside it, else from the RoiSet's ovals
(their width is the particle's diameter in pixels); without either the points are in
pixels (scale 1) and drawn as if at 1 nm/px.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.napari._layers import particles_to_layer_data, points_to_particles
from golddigger.particles import CSV_COLUMNS, ParticleTable

__all__ = ["get_reader", "read_particles_layer", "write_csv", "write_roiset"]

logger = logging.getLogger(__name__)

ROISET_SUFFIX = "_RoiSet"
#: Point sizes of a file whose pixel size is unknown are drawn at this scale.
UNKNOWN_PIXEL_SIZE_NM = 1.0


def get_reader(path):
    """napari reader hook: a reader for Gold Digger CSVs and ImageJ RoiSets, else None
    (other plugins may read the file)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv" and _is_particle_csv(p):
        return read_particles_layer
    if suffix == ".zip" and _is_roiset(p):
        return read_particles_layer
    return None


def _is_particle_csv(path: Path) -> bool:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    header = [h.strip().lower() for h in header]
    return {"x", "y", "diameter_nm"} <= set(header)


def _is_roiset(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".roi") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_particles_layer(path) -> list[tuple]:
    """One Points layer of the particles in a Gold Digger CSV or an ImageJ RoiSet."""
    from golddigger.io.annotations import read_particles

    if isinstance(path, list):
        path = path[0]
    p = Path(path)
    px = _pixel_size_beside(p)
    if p.suffix.lower() == ".csv":
        particles = ParticleTable.from_csv(p)
    else:
        particles = read_particles(p, px)
    ndim = 3 if len(particles) and particles.slice.max() > 0 else 2
    name = p.stem[: -len(ROISET_SUFFIX)] if p.stem.endswith(ROISET_SUFFIX) else p.stem
    if px is None:
        logger.warning("%s: pixel size unknown (no summary.csv beside it); the points are "
                       "in pixels and drawn at %g nm/px", p, UNKNOWN_PIXEL_SIZE_NM)
    data, kwargs, kind = particles_to_layer_data(
        particles, px or UNKNOWN_PIXEL_SIZE_NM, ndim, name=name,
        scale=None if px else (1.0,) * ndim, units=None if px else ("pixel",) * ndim)
    kwargs["metadata"]["pixel_size_nm"] = px
    kwargs["metadata"]["source"] = str(p)
    return [(data, kwargs, kind)]


def _pixel_size_beside(path: Path) -> float | None:
    """The pixel size of ``path``'s image from ``summary.csv`` in the same folder, else
    from a RoiSet's ovals."""
    stem = path.stem[: -len(ROISET_SUFFIX)] if path.stem.endswith(ROISET_SUFFIX) else path.stem
    summary = path.with_name("summary.csv")
    if summary.is_file():
        try:
            with summary.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if Path(row.get("image") or "").stem == stem:
                        px = float(row.get("pixel_size_nm") or 0)
                        if px > 0:
                            return px
        except (OSError, ValueError, csv.Error) as err:
            logger.debug("%s: unreadable (%s)", summary, err)
    if path.suffix.lower() == ".zip":
        return _pixel_size_from_ovals(path)
    return None


def _pixel_size_from_ovals(path: Path) -> float | None:
    from roifile import ROI_TYPE

    from golddigger.io.rois import load_rois

    try:
        rois = load_rois(path)
    except GoldDiggerError:
        return None
    ratios = []
    for roi in rois:
        d = (roi.properties or {}).get("diameter_nm") if hasattr(roi, "properties") else None
        if roi.roitype == ROI_TYPE.OVAL and d:
            w = roi.widthd if roi.widthd else roi.right - roi.left
            if w > 0:
                ratios.append(float(d) / float(w))
    return float(np.median(ratios)) if ratios else None


# ---------------------------------------------------------------------------- writers
def _layer_particles(data, meta: dict) -> tuple[ParticleTable, float | None]:
    px = (meta.get("metadata") or {}).get("pixel_size_nm")
    if px is None:
        scale = meta.get("scale")
        if scale is not None and float(scale[-1]) != 1.0:
            px = float(scale[-1])
    return points_to_particles(data, meta.get("features"), px, meta.get("size")), px


def write_csv(path: str, data, meta: dict) -> list[str]:
    """napari writer: a Points layer to Gold Digger's ``x,y,diameter_nm,score,slice`` CSV
    (``golddigger train`` reads it as labels)."""
    particles, _ = _layer_particles(data, meta)
    out = Path(path)
    if out.suffix.lower() != ".csv":
        out = out.with_suffix(".csv")
    particles.to_csv(out)
    logger.info("wrote %d particles to %s (%s)", len(particles), out, ",".join(CSV_COLUMNS))
    return [str(out)]


def write_roiset(path: str, data, meta: dict) -> list[str]:
    """napari writer: a Points layer to an ImageJ RoiSet (ovals of the particles' size,
    coloured by class; points when the pixel size is unknown)."""
    from golddigger.io.rois import write_roiset as _write

    particles, px = _layer_particles(data, meta)
    out = Path(path)
    if out.suffix.lower() != ".zip":
        out = out.with_suffix(".zip")
    if not out.stem.endswith(ROISET_SUFFIX):
        out = out.with_name(out.stem + ROISET_SUFFIX + ".zip")
    _write(out, particles, px, shape="oval" if px else "point")
    return [str(out)]
