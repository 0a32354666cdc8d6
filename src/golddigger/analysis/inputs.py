"""Finding and reading what an analysis needs from disk: particles, region, image."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from golddigger.errors import AnnotationError
from golddigger.io.images import IMAGE_SUFFIXES
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["find_image", "find_roi", "image_stem", "read_particle_file", "read_regions",
           "read_roi"]

#: Columns that mark a CSV as a particle list, not polygon vertices.
_PARTICLE_COLUMNS = ("diameter_nm", "score", "slice", "diameter")
#: An ROI set of at least this many small ovals is a particle list, not a region.
_PARTICLE_SET_MIN = 3
#: Ovals at most this wide (pixels) count as particle marks.
_PARTICLE_OVAL_MAX_PX = 80

logger = logging.getLogger(__name__)

#: Name endings stripped from a particle file's stem to find its image (``S4_labels.csv``).
_STEM_SUFFIXES = ("_RoiSet", "_particles", "_labels", "_detections", "_points")


def image_stem(path: str | Path) -> str:
    """The image name a particle file belongs to: its stem without ``_particles`` and the
    like (``S4_particles.csv`` -> ``S4``)."""
    stem = Path(path).stem
    for suffix in _STEM_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def read_particle_file(path: str | Path, pixel_size_nm: float | None = None) -> ParticleTable:
    """Particles from a Gold Digger CSV (as ``detect`` writes it, or labels
    ``x,y,diameter_nm``), an ImageJ ROI set or Results table
    (`golddigger.io.annotations.read_particles`)."""
    from golddigger.io.annotations import read_particles

    return read_particles(path, pixel_size_nm)


def read_roi(path: str | Path, image_shape: tuple[int, int] | None = None) -> Region:
    """A region from an ImageJ ``.roi``/``.zip``, a mask image (non-zero inside), or a CSV
    of polygon vertices (columns ``x,y`` in pixels, one vertex per row).

    Raises
    ------
    AnnotationError
        Unreadable or empty files.
    """
    path = Path(path)
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        return _read_vertices(path)
    from golddigger.io.rois import read_region

    _refuse_particle_rois(path)
    return read_region(path, image_shape=image_shape)


def _refuse_particle_rois(path: Path) -> None:
    """A ROI set of particles (points, or many small ovals) is not a region: refuse it."""
    if path.suffix.lower() not in (".roi", ".zip") or not path.is_file():
        return
    from roifile import ROI_TYPE

    from golddigger.io.rois import load_rois

    try:
        rois = load_rois(path)
    except (ValueError, OSError):
        return  # read_region reports unreadable files
    small_ovals = [r for r in rois if r.roitype == ROI_TYPE.OVAL and not r.composite
                   and (r.right - r.left) <= _PARTICLE_OVAL_MAX_PX
                   and (r.bottom - r.top) <= _PARTICLE_OVAL_MAX_PX]
    points = [r for r in rois if r.roitype == ROI_TYPE.POINT]
    if (len(small_ovals) >= _PARTICLE_SET_MIN and len(small_ovals) >= len(rois) // 2) or (
            points and len(points) == len(rois)):
        raise AnnotationError(
            f"{path}: this ROI set holds particles ({len(rois)} point/oval marks), not a "
            "region; give it as the particles (PARTICLES argument) and the membrane outline "
            "as --roi")


def read_regions(path: str | Path, image_shape: tuple[int, int] | None = None
                 ) -> list[Region]:
    """Every named area ROI of a ROI set (``synapse``, ``extrasynaptic``, ``background``)
    as its own Region; one Region for any other region file (`read_roi`).

    Raises
    ------
    AnnotationError
        As `read_roi`; also for two area ROIs of the same name.
    """
    path = Path(path)
    if path.suffix.lower() != ".zip":
        return [read_roi(path, image_shape)]
    from golddigger.io.rois import load_rois, read_region, roi_to_geometry

    _refuse_particle_rois(path)
    rois = load_rois(path)
    n_area = sum(1 for r in rois if _has_area(r, roi_to_geometry))
    if n_area <= 1:
        return [read_roi(path, image_shape)]
    regions = [read_region(path, image_shape=image_shape, index=i) for i in range(n_area)]
    names = [r.name for r in regions]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AnnotationError(f"{path}: {names.count(dup[0])} area ROIs are named {dup[0]!r}; "
                              "give each region its own name (ROI Manager > Rename), e.g. "
                              "synapse, extrasynaptic, background")
    return regions


def _has_area(roi, to_geometry) -> bool:
    try:
        return to_geometry(roi) is not None
    except ValueError:
        return True  # read_region reports the damage


def _read_vertices(path: Path) -> Region:
    if not path.is_file():
        raise AnnotationError(f"{path}: no such ROI file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: cannot read the polygon CSV ({err})") from None
    lines = text.splitlines()
    delim = "\t" if lines and "\t" in lines[0] else ","
    rows = [r for r in csv.reader(lines, delimiter=delim) if any(c.strip() for c in r)]
    if not rows:
        raise AnnotationError(f"{path}: the polygon CSV is empty")
    header = [h.strip().lower() for h in rows[0]]
    marks = [c for c in _PARTICLE_COLUMNS if c in header]
    if marks:
        raise AnnotationError(
            f"{path}: this CSV is a particle list (it has a {marks[0]} column), not a region "
            "outline; give it as the particles and the membrane as --roi (polygon vertices "
            "x,y, an ImageJ .roi/.zip or a mask)")
    if "x" not in header or "y" not in header:
        raise AnnotationError(f"{path}: a polygon CSV needs columns x,y (pixels), one vertex "
                              f"per row (found: {','.join(header)})")
    ix, iy = header.index("x"), header.index("y")
    xy = []
    for lineno, row in enumerate(rows[1:], start=2):
        try:
            xy.append((float(row[ix]), float(row[iy])))
        except (IndexError, ValueError):
            raise AnnotationError(f"{path}, line {lineno}: x/y is not a number") from None
    bad = [i for i, (x, y) in enumerate(xy) if not (np.isfinite(x) and np.isfinite(y))]
    if bad:
        raise AnnotationError(f"{path}, line {bad[0] + 2}: vertex x/y is NaN or infinite; "
                              "every polygon vertex needs finite x,y (pixels)")
    if len(xy) < 3:
        raise AnnotationError(f"{path}: a polygon needs at least 3 vertices, got {len(xy)}")
    from shapely.geometry import LinearRing

    if not LinearRing(xy).is_simple:
        raise AnnotationError(
            f"{path}: the {len(xy)} vertices do not form a simple outline (the polygon "
            "crosses itself: is this a particle list?); give the membrane's vertices in "
            "order around it")
    region = Region.from_polygon(np.asarray(xy), name=path.stem)
    if region.area_px() <= 0:
        raise AnnotationError(f"{path}: the polygon has no area")
    return region


def find_roi(stem: str, roi: Path | None) -> Path | None:
    """The ROI for image ``stem``: ``roi`` itself if a file; in a folder ``<stem>.roi``,
    ``<stem>.zip``, ``<stem>_region.roi/.zip/.csv``, ``<stem>_roi.csv`` or
    ``<stem>_mask.tif/.tiff/.png``; None if the folder has none. (A ``_RoiSet.zip`` holds
    particles, not a region, and is never taken.)"""
    if roi is None:
        return None
    roi = Path(roi)
    if roi.is_dir():
        names = [f"{stem}.roi", f"{stem}.zip", f"{stem}_region.roi", f"{stem}_region.zip",
                 f"{stem}_region.csv", f"{stem}_roi.csv", f"{stem}_mask.tif",
                 f"{stem}_mask.tiff", f"{stem}_mask.png"]
        return next((roi / n for n in names if (roi / n).is_file()), None)
    if not roi.exists():
        raise AnnotationError(f"{roi}: no such ROI file")
    return roi


def find_image(stem: str, image: Path | None) -> Path | None:
    """The image for ``stem``: ``image`` itself if a file; in a folder the first
    ``<stem>.<ext>`` (TIFF, PNG, JPEG); None if there is none."""
    if image is None:
        return None
    image = Path(image)
    if image.is_dir():
        for suffix in IMAGE_SUFFIXES:
            for cand in (image / f"{stem}{suffix}", image / f"{stem}{suffix.upper()}"):
                if cand.is_file():
                    return cand
        return None
    if not image.exists():
        raise AnnotationError(f"{image}: no such image file")
    return image
