"""File conventions, in one place: which file is an image's region, which are an image's
annotations, what detection writes for an image, and which files are Gold Digger's own
outputs (never to be read back as inputs).

Every path (``golddigger detect``, *Detect Gold in Folder*, ``golddigger imagej --call``,
the Python API, evaluation and training) asks these functions instead of deciding itself.

Region files
    Beside an image ``<stem>.<ext>`` (or in a ``--roi`` folder), the first of
    `REGION_PATTERNS` that exists and holds an *area* outline. A file whose ROIs are all
    particles (points, small ovals, ROIs named ``gold-...``) is a particle file, never a
    region: ``<stem>_RoiSet.zip`` of annotated particles is not a membrane.
Outputs of an image
    ``<out>.csv``, ``<out>_RoiSet.zip``, ``<out>_overlay.png`` (with overlays) where
    ``<out>`` is `output_stem`: the image's stem, or its full name when the stem is
    taken (another input with the same stem, or a name reserved for the run, e.g. an
    image ``summary.tif`` beside the run's ``summary.csv``).
Run files
    ``summary.csv`` and the hidden folder ``.golddigger/`` (lock, manifest, one record per
    finished image) in the output folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ANNOTATION_PATTERNS",
    "ImageOutputs",
    "REGION_PATTERNS",
    "RESERVED_STEMS",
    "STATE_DIR",
    "SUMMARY_NAME",
    "display_name",
    "find_region_file",
    "is_particle_roi",
    "is_region_file",
    "output_stems",
    "outputs_for",
]

logger = logging.getLogger(__name__)

#: The run's summary in the output folder.
SUMMARY_NAME = "summary.csv"
#: Hidden folder of a run's lock, manifest and per-image records.
STATE_DIR = ".golddigger"
#: Stems an image's outputs may not use (they would replace a run file).
RESERVED_STEMS = frozenset({"summary"})

#: Candidate region files of an image ``<stem>.<ext>``, in order of preference
#: (``{stem}`` is replaced). Only files that hold an area outline count (`is_region_file`).
REGION_PATTERNS = ("{stem}_region.roi", "{stem}_region.zip", "{stem}_membrane.roi",
                   "{stem}_membrane.zip", "{stem}.roi", "{stem}.zip",
                   "{stem}_RoiSet.zip", "RoiSet_{stem}.zip")

#: Annotation files of an image beside it (see `golddigger.io.annotations.find_annotations`).
ANNOTATION_PATTERNS = ("{stem}.csv", "{stem}_RoiSet.zip", "{stem}.zip", "{stem}.roi")

#: An oval no larger than this (nm; or `PARTICLE_MAX_PX` pixels without a calibration) is
#: a particle, not a region: gold particles are 5-20 nm, membranes are hundreds of nm.
PARTICLE_MAX_NM = 60.0
PARTICLE_MAX_PX = 64.0


def display_name(path: str | os.PathLike) -> str:
    """A file name safe to print and to write into UTF-8 text (bytes that are not UTF-8
    become U+FFFD); the file itself is always opened by its real name."""
    name = os.fsdecode(Path(path).name)
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# ---------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class ImageOutputs:
    """The files detection writes for one image in ``outdir``."""

    csv: Path
    roiset: Path
    overlay: Path | None = None
    summary: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.csv, self.roiset, self.overlay, self.summary)
                if p is not None]


def outputs_for(stem: str, outdir: str | Path, overlay: bool = False,
                summary: bool = False) -> ImageOutputs:
    """The output files of an image whose output stem is ``stem`` (see `output_stems`):
    ``<stem>.csv``, ``<stem>_RoiSet.zip``, with ``overlay`` ``<stem>_overlay.png``, with
    ``summary`` ``<stem>_summary.csv``."""
    outdir = Path(outdir)
    return ImageOutputs(outdir / f"{stem}.csv", outdir / f"{stem}_RoiSet.zip",
                        outdir / f"{stem}_overlay.png" if overlay else None,
                        outdir / f"{stem}_summary.csv" if summary else None)


def output_stems(paths: Sequence[str | Path]) -> list[str]:
    """The output stem of each input image: its stem, or its full file name when the stem
    is reserved (``summary``) or shared with another input (``a.tif`` and ``a.png`` give
    ``a.tif`` and ``a.png``). Distinct inputs always get distinct stems."""
    stems = [Path(p).stem for p in paths]
    count: dict[str, int] = {}
    for s in stems:
        count[s] = count.get(s, 0) + 1
    out = []
    for p, s in zip(paths, stems, strict=True):
        out.append(Path(p).name if count[s] > 1 or s.lower() in RESERVED_STEMS else s)
    seen: dict[str, int] = {}
    for i, s in enumerate(out):  # same names in different folders
        if s in seen:
            seen[s] += 1
            out[i] = f"{s}_{seen[s]}"
        else:
            seen[s] = 1
    # an image "a_summary.tif" would write "a_summary.csv", the summary of "a"
    taken = {f"{s}{suffix}" for s in out for suffix in _SUFFIXES[1:]}
    return [Path(p).name if f"{s}.csv" in taken else s
            for p, s in zip(paths, out, strict=True)]


_SUFFIXES = (".csv", "_RoiSet.zip", "_overlay.png", "_summary.csv")


def is_own_output(path: str | Path) -> bool:
    """Whether a file's name marks it as one of Gold Digger's outputs by itself
    (overlays, the run's summary, partial files of an atomic write)."""
    name = Path(path).name
    return (name.endswith("_overlay.png") or name == SUMMARY_NAME
            or (name.startswith(".") and name.endswith(".part")))


# ---------------------------------------------------------------------------- regions
def is_particle_roi(roi, pixel_size_nm: float | None = None) -> bool:
    """Whether an ImageJ ROI (roifile) marks a particle rather than a region: a point,
    a ROI named ``gold-...`` (Gold Digger's own), or an oval no larger than a particle."""
    from roifile import ROI_TYPE

    if (roi.name or "").startswith("gold-"):
        return True
    if roi.composite:
        return False
    if roi.roitype == ROI_TYPE.POINT:
        return True
    if roi.roitype == ROI_TYPE.OVAL:
        w, h = float(roi.right - roi.left), float(roi.bottom - roi.top)
        limit = (PARTICLE_MAX_NM / pixel_size_nm) if pixel_size_nm else PARTICLE_MAX_PX
        return max(w, h) <= limit
    return False


def is_region_file(path: str | Path, pixel_size_nm: float | None = None) -> bool:
    """Whether a ROI file holds at least one area outline that is not a particle (see
    `is_particle_roi`). Unreadable files are not regions."""
    from roifile import ROI_TYPE

    from golddigger.errors import GoldDiggerError
    from golddigger.io.rois import load_rois

    try:
        rois = load_rois(path)
    except (GoldDiggerError, OSError, ValueError) as err:
        logger.debug("%s: not a region (%s)", path, err)
        return False
    area_types = {ROI_TYPE.RECT, ROI_TYPE.OVAL, ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND,
                  ROI_TYPE.TRACED}
    for roi in rois:
        if is_particle_roi(roi, pixel_size_nm):
            continue
        if roi.composite or roi.roitype in area_types or (roi.stroke_width or 0) > 1:
            return True
    return False


def find_region_file(image_path: str | Path, folder: str | Path | None = None,
                     pixel_size_nm: float | None = None,
                     exclude: Iterable[str | Path] = ()) -> Path | None:
    """The region file of an image: the first of `REGION_PATTERNS` in ``folder`` (default:
    the image's folder) that holds an area outline; None when there is none.

    Files in ``exclude`` (e.g. the outputs of a run) are never taken.
    """
    image_path = Path(image_path)
    folder = Path(folder) if folder is not None else image_path.parent
    skip = {os.path.abspath(p) for p in exclude}
    for pattern in REGION_PATTERNS:
        p = folder / pattern.format(stem=image_path.stem)
        if not p.is_file() or os.path.abspath(p) in skip:
            continue
        if p.suffix.lower() in (".roi", ".zip") and not is_region_file(p, pixel_size_nm):
            logger.info("%s: holds particles, not a region outline; not used as the region "
                        "of %s", p.name, display_name(image_path))
            continue
        return p
    return None
