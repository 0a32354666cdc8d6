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

from golddigger.errors import AnnotationError, GoldDiggerError
from golddigger.imagej.options import parse_classes
from golddigger.imagej.tables import results_rows, roi_names, rows_to_csv, summary_rows
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = [
    "Detection",
    "FileResult",
    "REGION_FILE_PATTERNS",
    "detect_file",
    "detect_planes",
    "detection_settings",
    "find_region_file",
    "get_detector",
    "safe_stem",
    "save_training_pair",
    "write_folder_summary",
]

logger = logging.getLogger(__name__)

#: Files beside an image ``<stem>.<ext>`` taken as its membrane region by Detect Gold in
#: Folder, in this order (``{stem}`` is replaced). Only their area ROIs count.
REGION_FILE_PATTERNS = ("{stem}_region.roi", "{stem}_region.zip", "{stem}_membrane.roi",
                        "{stem}_membrane.zip", "{stem}.roi", "{stem}.zip",
                        "{stem}_RoiSet.zip", "RoiSet_{stem}.zip")

_DETECTORS: dict[str, object] = {}


# ---------------------------------------------------------------------------- the model
def get_detector(model: str | None = "default"):
    """The `Detector` for a model name or folder, loaded once per process.

    ``"default"``, ``""`` or None mean the shipped default model.
    """
    from golddigger.model.detector import Detector
    from golddigger.model.folder import resolve_model

    name = None if model in (None, "", "default") else str(model)
    det = _DETECTORS.get(f"name:{name}")
    if det is not None:
        return det
    key = str(resolve_model(name).resolve())
    det = _DETECTORS.get(key)
    if det is None:
        t0 = time.perf_counter()
        det = Detector.from_folder(key)
        logger.info("model %s loaded in %.1f s", key, time.perf_counter() - t0)
        _DETECTORS[key] = det
    _DETECTORS[f"name:{name}"] = det
    return det


def detection_settings(values: Mapping[str, object], detector) -> dict:
    """``threshold`` and ``classes`` keyword arguments for `Detector.predict` from command
    option values (threshold 0 = the model's; classes ``"all"`` = every class)."""
    thr = float(values.get("threshold", 0.0) or 0.0)
    if thr < 0 or thr >= 1:
        raise GoldDiggerError(f"threshold must be in (0, 1), or 0 for the model's tuned one; "
                              f"got {thr:g}")
    classes = parse_classes(str(values.get("classes", "all")))
    return {"threshold": thr if thr > 0 else None, "classes": classes}


def report_classes(detector, classes: Sequence[float] | None) -> tuple[float, ...]:
    """The classes a summary reports: the chosen ones, else all of the model's."""
    if not classes:
        return tuple(float(c) for c in detector.classes)
    known = [float(c) for c in detector.classes]
    return tuple(min(known, key=lambda k: abs(k - float(c))) for c in classes)


# ---------------------------------------------------------------------------- detection
@dataclass
class Detection:
    """Particles found in (some slices of) one image, with what the tables need.

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
        Region area in pixels (per slice).
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
                  region: Region | None = None, threshold: float | None = None,
                  classes: Sequence[float] | None = None,
                  on_plane: Callable[[int, int], None] | None = None,
                  n_planes: int | None = None) -> ParticleTable:
    """Run the detector on 2D planes one at a time (memory stays at one plane).

    Parameters
    ----------
    planes : iterable of (index, 2D array)
        ``index`` (0-based stack position) becomes the particles' ``slice``.
    on_plane : callable, optional
        Called as ``on_plane(i, n)`` before plane ``i`` (0-based) of ``n``.
    """
    tables = []
    for i, (index, plane) in enumerate(planes):
        if on_plane is not None:
            on_plane(i, n_planes or 0)
        found = detector.predict(np.asarray(plane), pixel_size_nm=pixel_size_nm, region=region,
                                 threshold=threshold, classes=classes)
        found.slice = np.full(len(found), int(index), dtype=np.int64)
        tables.append(found)
    return ParticleTable.concat(tables)


# ---------------------------------------------------------------------------- folders
def find_region_file(image_path: str | Path) -> Path | None:
    """The membrane region file beside an image (`REGION_FILE_PATTERNS`), or None."""
    image_path = Path(image_path)
    for pattern in REGION_FILE_PATTERNS:
        p = image_path.parent / pattern.format(stem=image_path.stem)
        if p.is_file():
            return p
    return None


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


def detect_file(path: str | Path, outdir: str | Path, detector, values: Mapping[str, object]
                ) -> FileResult:
    """Detect gold in every slice of one image file; write ``<stem>.csv``,
    ``<stem>_RoiSet.zip`` and ``<stem>_summary.csv`` in ``outdir``.

    The region is the area ROIs of a file beside the image (`find_region_file`), else the
    whole image. ``values`` are Detect Gold in Folder's options
    (`golddigger.imagej.options.FOLDER_FIELDS`). Problems with this image are returned in
    ``FileResult.error`` (the batch goes on); problems with the options raise.
    """
    from golddigger.io.images import read_image
    from golddigger.io.rois import read_region, write_roiset
    from golddigger.io.safe import check_writable

    path, outdir = Path(path), Path(outdir)
    result = FileResult(path)
    settings = detection_settings(values, detector)
    overwrite = bool(values.get("overwrite", False))
    csv_path = outdir / f"{path.stem}.csv"
    roiset = outdir / f"{path.stem}_RoiSet.zip"
    summary = outdir / f"{path.stem}_summary.csv"
    try:
        for p in (csv_path, roiset, summary):
            check_writable(p, overwrite)
        px_override = float(values.get("pixel_size", 0) or 0) or None
        image = read_image(path, pixel_size_nm=px_override)
        px = image.require_pixel_size()
        region_file = find_region_file(path)
        region, region_name = None, "image"
        if region_file is not None:
            try:
                found = read_region(region_file, image.shape_yx)
                # as ImageJ's pixel mask, like the other paths (a particle whose centre is
                # within half a pixel of the outline is in or out as ImageJ says)
                region = Region.from_mask(found.to_mask(image.shape_yx), name=region_file.name)
                region_name = region_file.name
            except AnnotationError as err:
                logger.warning("%s: region file not used (%s); searching the whole image",
                               path.name, err)
        area = float(region.to_mask(image.shape_yx).sum()) if region is not None else float(
            np.prod(image.shape_yx))
        slices = list(range(image.n_slices))
        t0 = time.perf_counter()
        particles = detect_planes(detector, ((s, image.slice(s)) for s in slices), px, region,
                                  **settings)
        det = Detection(particles, px, report_classes(detector, settings["classes"]), slices,
                        area, region_name, path.name, time.perf_counter() - t0)
        outdir.mkdir(parents=True, exist_ok=True)
        particles.to_csv(csv_path)
        write_roiset(roiset, particles, px, shape=_shape(values), positions=image.is_stack)
        rows_to_csv(det.summary(), summary, plain=True)
        result.detection, result.csv, result.roiset, result.summary = (det, csv_path, roiset,
                                                                       summary)
    except (GoldDiggerError, OSError) as err:
        result.error = f"{path.name}: {err}"
        logger.warning("%s", result.error)
    return result


def write_folder_summary(outdir: str | Path, image_paths: Sequence[str | Path] | None = None,
                         name: str = "summary.csv") -> Path:
    """Join the ``<stem>_summary.csv`` files of ``outdir`` (or of ``image_paths``) into one
    ``summary.csv``; returns its path."""
    import csv

    outdir = Path(outdir)
    if image_paths is not None:
        parts = [outdir / f"{Path(p).stem}_summary.csv" for p in image_paths]
        parts = [p for p in parts if p.is_file()]
    else:
        parts = sorted(p for p in outdir.glob("*_summary.csv"))
    rows: list[dict] = []
    for p in parts:
        with p.open(newline="", encoding="utf-8") as fh:
            rows.extend(csv.DictReader(fh))
    out = outdir / name
    rows_to_csv(rows, out, plain=True)
    return out


def _shape(values: Mapping[str, object]) -> str:
    return "point" if str(values.get("shape", "ovals")) == "points" else "oval"


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
