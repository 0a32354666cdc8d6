"""What the Gold Digger menu commands do, on numpy arrays and files (no Java here).

Both ways ImageJ reaches Python use these functions: the Python-hosted session
(`golddigger.imagej.commands`) after converting ImageJ's image and ROIs, and the installed
``.ijm`` macros through ``golddigger imagej --call ...`` (`golddigger.imagej.calls`) on
temporary copies. So both give the same particles, ROI names and tables.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golddigger.batch import (
    BatchOptions,
    ImageResult,
    detect_image,
    rebuild_summary,
    report_classes,
    run_batch,
)
from golddigger.errors import GoldDiggerError, OptionError
from golddigger.imagej.options import parse_classes
from golddigger.imagej.tables import results_rows, roi_names, summary_rows
from golddigger.io.conventions import REGION_PATTERNS, display_name, outputs_for
from golddigger.io.conventions import find_region_file as _find_region_file
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = [
    "Detection",
    "FileResult",
    "batch_options",
    "REGION_FILE_PATTERNS",
    "detect_file",
    "detect_planes",
    "detection_settings",
    "file_result",
    "find_region_file",
    "folder_options",
    "get_detector",
    "report_classes",
    "safe_stem",
    "save_training_pair",
    "write_folder_summary",
]

logger = logging.getLogger(__name__)

#: Files beside an image taken as its region (see `golddigger.io.conventions`).
REGION_FILE_PATTERNS = REGION_PATTERNS

_DETECTORS: dict[str, object] = {}


# ---------------------------------------------------------------------------- the model
def get_detector(model: str | None = "default", precision: str | None = None):
    """The `Detector` for a model name or folder, loaded once per process.

    ``"default"``, ``""`` or None mean the shipped default model. ``precision`` (auto,
    float32, bfloat16) is set on it when given.
    """
    from golddigger.model.detector import Detector
    from golddigger.model.folder import resolve_model

    name = None if model in (None, "", "default") else str(model)
    det = _DETECTORS.get(f"name:{name}")
    if det is None:
        key = str(resolve_model(name).resolve())
        det = _DETECTORS.get(key)
        if det is None:
            t0 = time.perf_counter()
            det = Detector.from_folder(key)
            logger.info("model %s loaded in %.1f s", key, time.perf_counter() - t0)
            _DETECTORS[key] = det
        _DETECTORS[f"name:{name}"] = det
    if precision:
        det.precision = str(precision)
    return det


def batch_options(values: Mapping[str, object], **extra) -> BatchOptions:
    """The engine's `BatchOptions` from a command's option values (threshold 0 = the
    model's; classes ``"all"`` = every class; pixel size 0 = the image's)."""
    thr = float(values.get("threshold", 0.0) or 0.0)
    if thr < 0 or thr >= 1:
        raise OptionError(f"threshold must be in (0, 1), or 0 for the model's tuned one; "
                          f"got {thr:g}")
    classes = parse_classes(str(values.get("classes", "all")))
    sizing = str(values.get("sizing", "model") or "model")
    return BatchOptions(
        pixel_size_nm=float(values.get("pixel_size", 0) or 0) or None,
        threshold=thr if thr > 0 else None,
        classes=tuple(classes) if classes else None,
        shape="point" if str(values.get("shape", "ovals")) == "points" else "oval",
        overwrite=bool(values.get("overwrite", False)),
        resume=bool(values.get("resume", False)),
        overlay=bool(values.get("overlay", False)),
        sizing=None if sizing == "model" else sizing,
        tta=int(float(values.get("tta", 1) or 1)), **extra)


def detection_settings(values: Mapping[str, object], detector) -> dict:
    """``threshold`` and ``classes`` keyword arguments for `Detector.predict` from command
    option values (see `batch_options`)."""
    opts = batch_options(values)
    return {"threshold": opts.threshold, "classes": opts.classes}


# ---------------------------------------------------------------------------- detection
@dataclass
class Detection:
    """Particles found in (some slices of) one image, with what the tables need: an
    ImageJ view of the engine's `golddigger.batch.ImageResult`.

    Attributes
    ----------
    particles : ParticleTable
        ``slice`` is the 0-based stack index in the image the user sees.
    pixel_size_nm : float
    classes : tuple of float
        Classes the summary reports.
    slices : list of int
        The 0-based slices searched.
    area_px : float
        Region area in pixels (per slice), clipped to the image.
    region_name, image_name : str
    seconds : float
        Time spent in the detector.
    """

    particles: ParticleTable
    pixel_size_nm: float
    classes: tuple[float, ...]
    slices: list[int]
    area_px: float
    region_name: str = "image"
    image_name: str = "image"
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.names:
            self.names = roi_names(self.particles)

    @classmethod
    def from_result(cls, result: ImageResult, image_name: str | None = None) -> Detection:
        px = float(result.pixel_size_nm or 0.0)
        area_um2 = result.area_um2[0] if result.area_um2 else 0.0
        return cls(result.particles, px, tuple(result.classes), list(result.slices),
                   area_um2 * 1e6 / (px * px) if px > 0 else 0.0, result.region_source,
                   image_name or result.name, result.seconds)

    def results(self, unit: str = "µm", unit_nm: float = 1000.0) -> list[dict]:
        return results_rows(self.particles, self.pixel_size_nm, unit, unit_nm,
                            self.region_name, self.names, self.image_name)

    def summary(self) -> list[dict]:
        return summary_rows(self.particles, self.classes, self.pixel_size_nm, self.area_px,
                            self.slices, self.image_name, self.region_name)

    def counts_text(self) -> str:
        per = ", ".join(f"{d:g} nm: {len(self.particles.of_class(d))}" for d in self.classes)
        return f"{len(self.particles)} particles ({per})"


def detect_planes(detector, planes: Iterable[tuple[int, np.ndarray]], pixel_size_nm: float,
                  region: Region | None = None, options: BatchOptions | None = None,
                  on_plane: Callable[[int, int], None] | None = None,
                  n_planes: int | None = None, cancel=None) -> ImageResult:
    """Run the engine (`golddigger.batch.detect_image`) on 2D planes one at a time
    (memory stays at one plane); ``index`` of each (index, plane) becomes the particles'
    ``slice``. Returns the engine's `ImageResult` (particles, area per slice)."""
    from golddigger.io.images import CalibratedImage

    options = options or BatchOptions()
    parts = []
    for i, (index, plane) in enumerate(planes):
        if on_plane is not None:
            on_plane(i, n_planes or 0)
        image = CalibratedImage(np.asarray(plane), pixel_size_nm)
        parts.append(detect_image(detector, image, region, options, slice_numbers=[int(index)],
                                  cancel=cancel))
    if not parts:
        raise OptionError("no slice to search")
    first = parts[0]
    first.particles = ParticleTable.concat([p.particles for p in parts])
    first.slices = [s for p in parts for s in p.slices]
    first.area_um2 = [a for p in parts for a in p.area_um2]
    first.seconds = sum(p.seconds for p in parts)
    return first


# ---------------------------------------------------------------------------- folders
def find_region_file(image_path: str | Path) -> Path | None:
    """The region file beside an image (`golddigger.io.conventions.find_region_file`)."""
    return _find_region_file(image_path)


@dataclass
class FileResult:
    """What Detect Gold in Folder did with one image."""

    path: Path
    detection: Detection | None = None
    csv: Path | None = None
    roiset: Path | None = None
    summary: Path | None = None
    error: str = ""
    skipped: bool = False


def folder_options(values: Mapping[str, object], image_folder: str | Path) -> BatchOptions:
    """Detect Gold in Folder's options: regions beside the images, the whole image for
    an image without one."""
    return batch_options(values, roi=Path(image_folder), whole_image_if_no_roi=True,
                         per_image_summary=True)


def file_result(r: ImageResult, outdir: Path) -> FileResult:
    """Detect Gold in Folder's view of one of the engine's results."""
    out = FileResult(r.path, error=r.error or "", skipped=r.skipped)
    if r.particles is not None:
        out.detection = Detection.from_result(r)
        names = outputs_for(r.stem, outdir)
        out.csv, out.roiset = names.csv, names.roiset
        out.summary = outdir / f"{r.stem}_summary.csv"
    return out


def detect_file(path: str | Path, outdir: str | Path, detector, values: Mapping[str, object]
                ) -> FileResult:
    """Detect gold in every slice of one image file with the engine; write ``<stem>.csv``,
    ``<stem>_RoiSet.zip`` and ``<stem>_summary.csv`` in ``outdir``.

    The region is the region file beside the image
    (`golddigger.io.conventions.find_region_file`), else the whole image. ``values`` are
    Detect Gold in Folder's options (`golddigger.imagej.options.FOLDER_FIELDS`). Problems
    with this image are returned in ``FileResult.error``; problems with the options raise.
    """
    path = Path(path)
    result = run_batch([path], detector, outdir, folder_options(values, path.parent))
    if not result.results:
        return FileResult(path, error=f"{display_name(path)}: not an input image")
    return file_result(result.results[0], Path(outdir))


def write_folder_summary(outdir: str | Path, image_paths: Sequence[str | Path] | None = None,
                         name: str = "summary.csv") -> Path:
    """``summary.csv`` of ``outdir``, rebuilt from the engine's per-image records
    (`golddigger.batch.rebuild_summary`); ``image_paths`` and ``name`` are ignored (kept
    for callers of the earlier signature)."""
    path = rebuild_summary(outdir)
    if path is None:  # nothing finished: an empty table, so that the macro can show it
        from golddigger.batch import SUMMARY_COLUMNS
        from golddigger.io.csvtable import rows_to_csv

        path = Path(outdir) / "summary.csv"
        rows_to_csv([], path, columns=SUMMARY_COLUMNS)
    return path


# ---------------------------------------------------------------------------- training
_STEM_BAD = re.compile(r"[^\w.+-]+", re.UNICODE)


def safe_stem(title: str) -> str:
    """A file name stem from an image title: extension dropped, unsafe characters -> ``_``."""
    stem = Path(str(title).replace("\\", "/")).name
    for suffix in (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zip", ".gif", ".bmp"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = _STEM_BAD.sub("_", stem).strip("._-")
    return stem or "image"


def _roi_states_class(roi) -> bool:
    """Whether `golddigger.io.annotations.read_particles` can tell this ROI's class by
    itself (property, name or Gold Digger group; ovals are classed by size later)."""
    from golddigger.io.annotations import size_from_name
    from golddigger.io.rois import CLASS_GROUPS

    try:
        props = roi.properties or {}
    except Exception:  # unreadable property text
        props = {}
    if any(k in props for k in ("diameter_nm", "diameter", "class")):
        return True
    if size_from_name(roi.name or "") is not None:
        return True
    return bool(roi.group) and roi.group in CLASS_GROUPS.values()


def particles_from_roiset(roiset: str | Path, pixel_size_nm: float, default_class: float,
                          current_slice: int | None = None) -> ParticleTable:
    """Particles (point and oval ROIs) of a ROI Manager save, for a training pair.

    ROIs that state no class get ``default_class``. With ``current_slice`` (0-based), ROIs
    without a stack position are taken to be on it, and only that slice's particles are
    returned (with slice 0, as they go with a single-plane image).
    """
    from roifile import ROI_TYPE

    from golddigger.io.annotations import read_particles
    from golddigger.io.rois import load_rois

    rois = load_rois(roiset)
    changed = False
    for roi in rois:
        if roi.composite or roi.roitype not in (ROI_TYPE.POINT, ROI_TYPE.OVAL):
            continue
        if roi.roitype == ROI_TYPE.POINT and not _roi_states_class(roi):
            props = dict(roi.properties or {})
            props["diameter_nm"] = f"{float(default_class):g}"
            roi.properties = props
            changed = True
        if current_slice is not None and not (roi.position or roi.z_position or roi.t_position):
            roi.position = int(current_slice) + 1
            changed = True
    source = Path(roiset)
    with tempfile.TemporaryDirectory(prefix="golddigger-") as tmp:
        if changed:
            import zipfile

            source = Path(tmp) / "rois.zip"
            with zipfile.ZipFile(source, "w") as zf:
                for i, roi in enumerate(rois):
                    zf.writestr(f"{i:05d}-{roi.name or 'roi'}.roi", roi.tobytes())
        particles = read_particles(source, pixel_size_nm)
    if current_slice is not None:
        particles = particles.in_slice(int(current_slice))
        particles.slice = np.zeros(len(particles), dtype=np.int64)
    return particles


@dataclass
class TrainingPair:
    image: Path
    csv: Path
    region: Path | None
    particles: ParticleTable


def save_training_pair(data: np.ndarray, pixel_size_nm: float, particles: ParticleTable,
                       folder: str | Path, stem: str, overwrite: bool = False,
                       region_roi: str | Path | None = None) -> TrainingPair:
    """Write ``<stem>.tif`` (calibrated in nm) and ``<stem>.csv`` (`ParticleTable.to_csv`)
    in ``folder``: a pair ``golddigger train`` reads. An area ROI file ``region_roi`` is
    copied to ``<stem>_region.roi`` (a name the annotation finder does not read as
    particles)."""
    from golddigger.io.images import validate_pixel_size, write_tiff
    from golddigger.io.safe import check_writable

    px = validate_pixel_size(pixel_size_nm, "training image")
    folder = Path(folder)
    if not str(folder) or str(folder) == ".":
        raise GoldDiggerError("choose the training folder (folder=...)")
    if len(particles) == 0:
        raise GoldDiggerError("no particles to save: mark them with point (or oval) ROIs in "
                              "the ROI Manager first")
    if data.ndim == 2 and np.any(particles.slice != 0):
        raise GoldDiggerError("particles on other slices than the image saved")
    stem = safe_stem(stem)
    tif, csv_path = folder / f"{stem}.tif", folder / f"{stem}.csv"
    region_out = folder / f"{stem}_region.roi" if region_roi else None
    for p in (tif, csv_path) + ((region_out,) if region_out else ()):
        check_writable(p, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    write_tiff(tif, np.ascontiguousarray(data), px)
    particles.to_csv(csv_path)
    if region_out is not None:
        from golddigger.io.rois import read_region

        read_region(region_roi, data.shape[-2:])  # an area ROI on this image, or raise
        shutil.copyfile(region_roi, region_out)
    return TrainingPair(tif, csv_path, region_out, particles)
