"""The detection engine: images in; per image particles, counting areas and errors out;
one summary. ``golddigger detect``, *Detect Gold*, *Detect Gold in Folder*, the installed
macros (``golddigger imagej --call``), the Python API and the Dask runner are thin layers
over this module. It imports no bridge, napari or dask.

Public API (stable)
-------------------
``BatchOptions(...)``
    Every option of a run (validated on construction; `OptionError` otherwise):
    ``pixel_size_nm, roi, whole_image_if_no_roi, threshold, classes, channel, shape,
    overlay, overwrite, resume, tile_size, sizing, tta``. ``precision`` and ``threads``
    belong to the detector (`golddigger.model.detector.Detector.from_pretrained`).
``run_batch(paths, detector, outdir, options, *, progress=None, cancel=None) -> BatchResult``
    The whole run: lock the output folder, check the manifest (settings), detect every
    image, write its outputs, rebuild ``summary.csv`` from what is on disk. A bad image is
    recorded in its `ImageResult.error` and the run goes on. ``progress(done, total, path)``
    is called before each image (``path``) and once at the end (``path`` None);
    ``cancel`` is a callable returning True, or an object with ``is_set()`` (a
    ``threading.Event``), checked before each image and between slices.
``detect_one(path, detector, options, *, stem=None, region_exclude=(), cancel=None) -> ImageResult``
    One image: read, find its region, detect (and render the overlay PNG bytes when
    asked). Writes nothing, never raises for a bad image: a pure function of its inputs
    that a Dask worker can run.
``detect_image(detector, image, region, options, *, slice_numbers=None, ...) -> ImageResult``
    Detection on an image already in memory (`CalibratedImage`) with a region already
    read (a `Region` or None): what *Detect Gold* runs on the image in ImageJ.
``BatchRun(outdir, options, detector)``
    The run-level steps as a context manager, for runners that detect elsewhere (Dask)::

        with BatchRun(outdir, options, detector) as run:   # lock + manifest
            for item in run.plan(paths):                   # skips, collisions
                if item.result is not None:                # skipped or refused
                    continue
                run.write(detect_one(item.path, detector, options, stem=item.stem,
                                     region_exclude=run.own_outputs))
        run.summary_path                                   # rebuilt on exit

``rebuild_summary(outdir) -> Path | None``
    ``summary.csv`` from the per-image records of the current settings.
``summary_rows(...)`` / ``SUMMARY_COLUMNS``
    The one summary schema (also the ImageJ "Gold Digger Summary" table).

Summary schema
    ``image, slice, region, pixel_size_nm, area_um2, total, n_<d>nm...,
    density_per_um2, density_<d>nm_per_um2...`` (one row per image and slice; classes
    as numbers in nm in the names; NaN density when the area is 0).
Files in the output folder
    See `golddigger.io.conventions`: ``<stem>.csv``, ``<stem>_RoiSet.zip``,
    ``<stem>_overlay.png``, ``summary.csv``; ``.golddigger/`` holds the lock, the manifest
    (settings of the results) and one JSON record per finished image, written last, from
    which the summary is rebuilt (so a crash, a full disk or Ctrl-C never leaves it out of
    step with the per-image files; ``--resume`` skips images with a record).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError, OptionError, OutputError
from golddigger.io import conventions as conv
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = [
    "BatchOptions",
    "BatchResult",
    "BatchRun",
    "ImageResult",
    "PlannedImage",
    "SUMMARY_COLUMNS",
    "detect_image",
    "detect_one",
    "rebuild_summary",
    "region_area_px",
    "report_classes",
    "run_batch",
    "summary_rows",
]

logger = logging.getLogger(__name__)

#: Fixed leading columns of the summary (class columns follow ``total`` and
#: ``density_per_um2``).
SUMMARY_COLUMNS = ("image", "slice", "region", "pixel_size_nm", "area_um2", "total")

_RECORDS = "images"
_MANIFEST = "manifest.json"
_LOCK = "lock"
_FORMAT = 1


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True)
class BatchOptions:
    """Every option of a detection run (the CLI flags, the ImageJ dialog fields).

    Attributes
    ----------
    pixel_size_nm : float, optional
        nm per pixel; overrides the files' calibration.
    roi : Path, optional
        A region file for every image, or a folder with one per image (see
        `golddigger.io.conventions.find_region_file`).
    whole_image_if_no_roi : bool
        With a ``roi`` folder: count an image without a region file in the whole image
        (default: that image fails, saying so).
    threshold : float, optional
        Score threshold in (0, 1); None: the model's tuned ones.
    classes : tuple of float, optional
        Report only these diameters (nm).
    channel : int, optional
        0-based channel of multi-channel images.
    shape : {"oval", "point"}
        ROI shape in the RoiSet.
    overlay, overwrite, resume : bool
    tile_size : int or None
        Model-pixel tile size (-1: the model's; None: no tiling).
    sizing : {"maps", "image"} or None
    tta : {1, 2, 4, 8}
    per_image_summary : bool
        Also write ``<stem>_summary.csv`` (the image's summary rows; Detect Gold in Folder).
    """

    pixel_size_nm: float | None = None
    roi: Path | None = None
    whole_image_if_no_roi: bool = False
    threshold: float | None = None
    classes: tuple[float, ...] | None = None
    channel: int | None = None
    shape: str = "oval"
    overlay: bool = False
    overwrite: bool = False
    resume: bool = False
    tile_size: int | None = -1
    sizing: str | None = None
    tta: int = 1
    per_image_summary: bool = False

    def __post_init__(self) -> None:
        from golddigger.io.images import validate_pixel_size

        if self.pixel_size_nm is not None:
            object.__setattr__(self, "pixel_size_nm",
                               validate_pixel_size(float(self.pixel_size_nm), "--pixel-size"))
        if self.roi is not None and not isinstance(self.roi, Path):
            object.__setattr__(self, "roi", Path(self.roi))
        if self.threshold is not None:
            t = float(self.threshold)
            if not (math.isfinite(t) and 0.0 < t < 1.0):
                raise OptionError(f"--threshold must be between 0 and 1, got {t:g}")
            object.__setattr__(self, "threshold", t)
        if self.classes is not None:
            from golddigger.model.classes import parse_classes

            # diameters as numbers, ranges ("5-8") as text; parse_classes checks both
            cl = tuple(c.strip() if isinstance(c, str) and "-" in c.strip().lstrip("-")
                       else float(c) for c in self.classes)
            try:
                parse_classes(cl)
            except GoldDiggerError as err:
                raise OptionError(f"--classes: {err}") from None
            object.__setattr__(self, "classes", cl)
        if self.channel is not None and int(self.channel) < 0:
            raise OptionError(f"--channel is 0-based and cannot be negative, got "
                              f"{self.channel}")
        if self.shape not in ("oval", "point"):
            raise OptionError(f"shape must be 'oval' or 'point', got {self.shape!r}")
        if self.overwrite and self.resume:
            raise OptionError("--overwrite and --resume contradict each other; choose one")
        if self.tile_size not in (-1, None) and (int(self.tile_size) < 32
                                                 or int(self.tile_size) % 16):
            raise OptionError("--tile-size must be a multiple of 16 and at least 32")
        if self.sizing not in (None, "maps", "image"):
            raise OptionError(f"--sizing must be 'maps' or 'image', got {self.sizing!r}")
        if self.tta not in (1, 2, 4, 8):
            raise OptionError(f"--tta must be 1, 2, 4 or 8, got {self.tta}")

    def replace(self, **changes) -> BatchOptions:
        """A copy with some options changed (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)

    def result_settings(self, detector) -> dict:
        """What the results depend on (recorded in the run manifest)."""
        folder = getattr(detector, "folder", None)
        config = getattr(detector, "config", None)
        return {
            "model": os.fsdecode(Path(folder).resolve()) if folder else None,
            "model_name": getattr(config, "name", None),
            "model_thresholds": _jsonable(getattr(detector, "thresholds", None)),
            "precision": getattr(detector, "precision", None),
            "threshold": self.threshold,
            "classes": list(self.classes) if self.classes else None,
            "pixel_size_nm": self.pixel_size_nm,
            "roi": os.fsdecode(self.roi.resolve()) if self.roi is not None else None,
            "whole_image_if_no_roi": self.whole_image_if_no_roi,
            "channel": self.channel,
            "shape": self.shape,
            "tile_size": self.tile_size,
            "sizing": self.sizing,
            "tta": self.tta,
        }


def _jsonable(obj):
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError):
        return str(obj)


# ---------------------------------------------------------------------------- results
@dataclass
class ImageResult:
    """What one image gave.

    ``particles`` is None when the image failed (``error``) or was skipped (``skipped``:
    done before, with ``--resume``). ``area_um2`` and ``slices`` go together: the counting
    area of each searched slice and its 0-based number.
    """

    path: Path
    stem: str = ""
    particles: ParticleTable | None = None
    pixel_size_nm: float | None = None
    area_um2: list[float] = field(default_factory=list)
    slices: list[int] = field(default_factory=list)
    classes: tuple[float, ...] = ()
    region_source: str = "image"
    error: str | None = None
    skipped: bool = False
    seconds: float = 0.0
    is_stack: bool = False
    overlay_png: bytes | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.stem:
            self.stem = self.path.stem

    @property
    def name(self) -> str:
        """The image's file name, printable (see `conventions.display_name`)."""
        return conv.display_name(self.path)

    def summary_rows(self) -> list[dict]:
        if self.particles is None:
            return []
        return summary_rows(self.particles, self.classes, self.pixel_size_nm or 0.0,
                            self.area_um2, self.slices, self.name, self.region_source)


@dataclass
class BatchResult:
    results: list[ImageResult]
    summary_path: Path | None = None
    cancelled: bool = False

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.error]

    @property
    def done(self) -> list[ImageResult]:
        return [r for r in self.results if r.particles is not None]


# ---------------------------------------------------------------------------- schema
def summary_rows(particles: ParticleTable, classes: Iterable[float], pixel_size_nm: float,
                 area_um2: float | Sequence[float], slices: Iterable[int], image: str = "",
                 region: str = "") -> list[dict]:
    """The summary rows of one image: one per searched slice.

    Parameters
    ----------
    particles : ParticleTable
        ``slice`` 0-based.
    classes : iterable of float
        Every class reported (zero counts included).
    area_um2 : float or sequence of float
        Counting area (the same on every slice, or one per slice).
    slices : iterable of int
        The 0-based slices searched.
    """
    classes = sorted({float(c) for c in classes})
    slices = [int(s) for s in slices]
    areas = ([float(area_um2)] * len(slices) if np.isscalar(area_um2)
             else [float(a) for a in area_um2])
    rows = []
    for s, area in zip(slices, areas, strict=True):
        on = particles.in_slice(s)
        counts = {d: len(on.of_class(d)) for d in classes}
        row: dict = {"image": image, "slice": s + 1, "region": region,
                     "pixel_size_nm": float(pixel_size_nm), "area_um2": area,
                     "total": len(on)}
        for d in classes:
            row[f"n_{d:g}nm"] = counts[d]
        row["density_per_um2"] = _density(len(on), area)
        for d in classes:
            row[f"density_{d:g}nm_per_um2"] = _density(counts[d], area)
        rows.append(row)
    return rows


def _density(n: int, area_um2: float) -> float:
    return n / area_um2 if area_um2 > 0 else float("nan")


def report_classes(detector, classes: Sequence[float | str] | None) -> tuple[float, ...]:
    """The classes a summary reports (`Detector.report_classes`: the model's, or the asked
    diameters and ranges' midpoints when the model does not have them)."""
    return tuple(float(c) for c in detector.report_classes(classes))


# ---------------------------------------------------------------------------- regions
def region_area_px(region: Region | None, shape_yx: tuple[int, int]) -> float:
    """Counting area in square pixels: the region's pixels inside the image (a polygon
    clipped to the image, pixel edges at -0.5 and size - 0.5), or the whole image."""
    h, w = int(shape_yx[0]), int(shape_yx[1])
    if region is None:
        return float(h * w)
    if region.mask is not None:
        return float(region.to_mask((h, w)).sum())
    return float(clip_region(region, (h, w)).area_px())


def clip_region(region: Region, shape_yx: tuple[int, int]) -> Region:
    """The part of a polygon region inside the image (masks are returned as they are)."""
    if region.geometry is None:
        return region
    from shapely.geometry import box

    h, w = int(shape_yx[0]), int(shape_yx[1])
    clipped = region.geometry.intersection(box(-0.5, -0.5, w - 0.5, h - 0.5))
    if clipped.area < region.geometry.area * (1 - 1e-9):
        logger.info("region %s reaches outside the %d x %d image; its area is counted "
                    "inside the image only", region.name or "", w, h)
    return Region(geometry=clipped, name=region.name)


class _Cancelled(Exception):
    pass


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def find_region(path: Path, options: BatchOptions, shape_yx: tuple[int, int],
                pixel_size_nm: float | None, exclude: Iterable[str | Path] = ()
                ) -> tuple[Region | None, str]:
    """The region of an image under ``options.roi`` and its name ("image": none).

    Raises
    ------
    GoldDiggerError
        A ``roi`` folder without a region for this image (unless
        ``whole_image_if_no_roi``), or an unreadable region file.
    """
    from golddigger.errors import RegionError
    from golddigger.io.rois import read_region

    roi = options.roi
    if roi is None:
        return None, "image"
    if roi.is_dir():
        found = conv.find_region_file(path, roi, pixel_size_nm, exclude)
        if found is None:
            if options.whole_image_if_no_roi:
                logger.info("%s: no region file in %s; counting in the whole image",
                            conv.display_name(path), roi)
                return None, "image"
            names = ", ".join(p.format(stem=path.stem) for p in conv.REGION_PATTERNS[:2])
            raise RegionError(
                f"{conv.display_name(path)}: no region file for this image in {roi} "
                f"(looked for {names}, ... with an area outline); add one, or use "
                "--whole-image-if-no-roi to count in the whole image")
        roi = found
    elif not roi.exists():
        raise RegionError(f"{roi}: no such ROI file")
    region = read_region(roi, image_shape=shape_yx)
    return region, conv.display_name(roi)


# ---------------------------------------------------------------------------- detection
def detect_image(detector, image, region: Region | None, options: BatchOptions, *,
                 slice_numbers: Sequence[int] | None = None, slices: Sequence[int] | None = None,
                 region_name: str | None = None, cancel=None,
                 on_plane: Callable[[int, int], None] | None = None) -> ImageResult:
    """Detect in an image in memory, one plane at a time; raises on problems.

    Parameters
    ----------
    image : CalibratedImage
    region : Region, optional
        Where to count (clipped to the image here).
    slice_numbers : sequence of int, optional
        The 0-based stack position each plane of ``image`` reports (default: its index).
    slices : sequence of int, optional
        Which planes of ``image`` to search (default: all).
    on_plane : callable, optional
        ``on_plane(i, n)`` before plane ``i`` of ``n``.
    """
    from golddigger.model.chunked import needs_chunks, predict_auto

    px = image.require_pixel_size()
    shape = image.shape_yx
    if region is not None and region.geometry is not None:
        # ImageJ's own pixels of the outline (`golddigger.io.regions.fill_rings`), clipped to
        # the image: the same particles and area as Detect Gold on a selection
        region = Region.from_mask(region.to_mask(shape), name=region.name)
    planes = list(slices) if slices is not None else list(range(image.n_slices))
    numbers = list(slice_numbers) if slice_numbers is not None else planes
    if len(numbers) != len(planes):
        raise OptionError(f"{len(numbers)} slice positions for {len(planes)} plane(s)")
    area_um2 = region_area_px(region, shape) * px * px / 1e6
    if area_um2 <= 0:
        from golddigger.errors import RegionError

        raise RegionError(f"{conv.display_name(image.path or 'image')}: the region has no "
                          "area inside the image")
    if not needs_chunks(image):  # in chunks, memory is bounded by the chunk
        check_memory(image.path or "image", shape, px, detector, options.tta)
    t0 = time.perf_counter()
    tables = []
    excluded: dict[int, int] = {}  # flat canvas pixels per plane (Detector.specimen_mask)
    for i, (plane, number) in enumerate(zip(planes, numbers, strict=True)):
        if _is_cancelled(cancel):
            raise _Cancelled
        if on_plane is not None:
            on_plane(i, len(planes))
        # huge or lazy (montage) planes in chunks, in bounded memory (same particles)
        found = predict_auto(detector, image, pixel_size_nm=px, slices=[plane],
                             region=region, threshold=options.threshold,
                             classes=options.classes, tile_size=options.tile_size,
                             sizing=options.sizing, tta=options.tta)
        excluded.update(getattr(found, "excluded_px", None) or {})
        found = found.in_slice(plane) if len(found) else found
        found.slice = np.full(len(found), int(number), dtype=np.int64)
        tables.append(found)
    particles = ParticleTable.concat(tables) if tables else ParticleTable.empty()
    areas = _specimen_areas_um2(detector, image, region, planes, area_um2, px, excluded)
    name = region_name if region_name is not None else (
        region.name or "selection" if region is not None else "image")
    return ImageResult(Path(image.path or "image"), particles=particles, pixel_size_nm=px,
                       area_um2=areas, slices=numbers,
                       classes=report_classes(detector, options.classes),
                       region_source=name, seconds=time.perf_counter() - t0,
                       is_stack=image.is_stack)


def _specimen_areas_um2(detector, image, region: Region | None,
                        planes: Sequence[int], area_um2: float, px: float,
                        excluded_px: dict) -> list[float]:
    """Counting area of each searched plane without the flat canvas (padding, black
    corners) that the detector left out (`Detector.specimen_mask`)."""
    areas = []
    for plane in planes:
        if not excluded_px.get(plane):
            areas.append(area_um2)
        elif region is None:
            areas.append(area_um2 - excluded_px[plane] * px * px / 1e6)
        else:
            spec = detector.specimen_mask(image.slice(plane), px)
            inside = region.to_mask(image.shape_yx)
            if spec is not None:
                inside &= spec
            areas.append(float(np.count_nonzero(inside)) * px * px / 1e6)
    return areas


def estimate_bytes(shape_yx: tuple[int, int], pixel_size_nm: float, detector
                   ) -> tuple[int, int, float]:
    """(rows, columns, bytes) of one plane resampled to the model's pixel size, and the
    memory the detector needs for it: the resampled and normalised plane and one float32
    map per class (and the background), about 4 x (3 + classes) bytes per model pixel."""
    model_px = float(getattr(detector, "pixel_size_nm", 0) or 0) or pixel_size_nm
    f = pixel_size_nm / model_px
    h, w = max(1, round(shape_yx[0] * f)), max(1, round(shape_yx[1] * f))
    config = getattr(detector, "config", None)
    n_maps = (config.n_maps if config is not None else len(getattr(detector, "classes", ()))) + 1
    return h, w, float(h) * w * 4 * (2 + n_maps)


def _physical_memory() -> float | None:
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(path, shape_yx: tuple[int, int], pixel_size_nm: float, detector,
                 tta: int = 1) -> None:
    """Refuse, before any work, a plane whose resampling to the model's pixel size needs
    more memory than this computer has (or more pixels than Gold Digger processes)."""
    from golddigger.errors import CalibrationError
    from golddigger.io.images import MAX_PIXELS_PER_PLANE

    h, w, need = estimate_bytes(shape_yx, pixel_size_nm, detector)
    total = _physical_memory()
    limit = 0.8 * total if total else None
    if h * w <= MAX_PIXELS_PER_PLANE and (limit is None or need <= limit):
        return
    model_px = getattr(detector, "pixel_size_nm", pixel_size_nm)
    have = f" (this computer has {total / 2**30:.0f} GB)" if total else ""
    raise CalibrationError(
        f"{conv.display_name(path)}: at {pixel_size_nm:g} nm/px the {shape_yx[1]} x "
        f"{shape_yx[0]} px image is resampled to the model's {model_px:g} nm/px, "
        f"{w} x {h} px, which needs about {need / 2**30:.1f} GB of memory{have}; check the "
        "pixel size (--pixel-size, or the file's calibration: micrographs are usually "
        "0.1-5 nm/px), or bin/crop the image")


def detect_one(path: str | Path, detector, options: BatchOptions, *, stem: str | None = None,
               region_exclude: Iterable[str | Path] = (), cancel=None) -> ImageResult:
    """Read one image, find its region, detect; writes nothing and never raises for a
    problem with this image (it is in ``ImageResult.error``)."""
    from golddigger.io.images import read_image

    path = Path(path)
    result = ImageResult(path, stem=stem or path.stem)
    try:
        image = read_image(path, options.pixel_size_nm, options.channel)
        px = image.require_pixel_size()
        region, name = find_region(path, options, image.shape_yx, px, region_exclude)
        found = detect_image(detector, image, region, options, region_name=name,
                             cancel=cancel)
        found.path, found.stem = path, result.stem
        result = found
        if options.overlay:
            from golddigger.overlay import overlay_png

            result.overlay_png = overlay_png(image, result.particles, px, region)
    except _Cancelled:
        raise
    except BaseException as err:  # noqa: BLE001 - one odd file must not end a batch
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        result.error = error_text(path, err)
        result.particles = None
    return result


def error_text(path: Path, err: BaseException, outdir: Path | None = None) -> str:
    """The one-line message of a problem with one image."""
    name = conv.display_name(path)
    if isinstance(err, GoldDiggerError):
        text = str(err)
        return text if name in text or os.fsdecode(path) in text else f"{name}: {text}"
    if isinstance(err, MemoryError):
        return (f"{name}: out of memory; try --tile-size 512, fewer --threads, or crop "
                "the image")
    if isinstance(err, OSError):
        if err.errno == errno.ENOSPC:
            where = f" of {outdir}" if outdir is not None else ""
            return (f"{name}: no space left on the disk{where}; nothing of this image was "
                    "kept: free some space and run again with --resume")
        extra = (f": {conv.display_name(err.filename)}" if err.filename
                 and os.fsdecode(err.filename) != os.fsdecode(path) else "")
        return f"{name}: {err.strerror or err}{extra}"
    logger.debug("details of the error in %s", name, exc_info=err)
    return (f"{name}: unexpected error ({type(err).__name__}: {err}); the other images are "
            "processed; this is a bug, please report it with the file")


# ---------------------------------------------------------------------------- the run
@dataclass
class PlannedImage:
    """An input of a run: where its outputs go, and its result when it is not to be
    detected (skipped with --resume, or refused)."""

    path: Path
    stem: str
    outputs: conv.ImageOutputs
    result: ImageResult | None = None


class BatchRun:
    """The run-level steps (lock, manifest, planning, writing, summary) of a batch.

    Use as a context manager: entering takes the output folder's lock and checks the
    manifest; leaving rebuilds ``summary.csv`` and releases the lock, whatever happened.
    """

    def __init__(self, outdir: str | Path, options: BatchOptions, detector) -> None:
        self.outdir = Path(outdir)
        self.options = options
        self.detector = detector
        self.settings = options.result_settings(detector)
        self.settings_id = _settings_id(self.settings)
        self.state = self.outdir / conv.STATE_DIR
        self.summary_path: Path | None = None
        self._lock: Path | None = None
        self._inputs: set[str] = set()
        self.own_outputs: set[str] = set()

    # ------------------------------------------------------------------ enter / exit
    def __enter__(self) -> BatchRun:
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            (self.state / _RECORDS).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{self.outdir}: cannot create the output folder "
                              f"({err.strerror or err})") from None
        self._lock = acquire_lock(self.outdir)
        try:
            self._check_manifest()
            self.own_outputs = _recorded_outputs(self.state)
        except BaseException:
            release_lock(self._lock)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.summary_path = self.finish()
        except OSError as err:
            logger.error("%s: the summary could not be written (%s); run again with "
                         "--resume to rebuild it", self.outdir / conv.SUMMARY_NAME,
                         err.strerror or err)
        finally:
            release_lock(self._lock)
            self._lock = None

    def _check_manifest(self) -> None:
        path = self.state / _MANIFEST
        old = _read_json(path)
        summary = self.outdir / conv.SUMMARY_NAME
        if old is None and summary.exists() and not self.options.overwrite:
            _adopt_legacy_summary(summary, self.outdir, self.state, self.settings_id)
        if old is not None and old.get("settings_id") != self.settings_id and any(
                r.get("settings_id") == old.get("settings_id")
                for r in self._records().values()):
            changed = _differences(old.get("settings", {}), self.settings)
            if not self.options.overwrite:
                raise OutputError(
                    f"{self.outdir} holds results made with other settings ({changed}); "
                    "choose another output folder, or use --overwrite to replace them")
            logger.warning("%s: replacing results made with other settings (%s)",
                           self.outdir, changed)
        _write_json(path, {"format": _FORMAT, "settings_id": self.settings_id,
                           "settings": self.settings})

    # ------------------------------------------------------------------ planning
    def plan(self, paths: Sequence[str | Path]) -> list[PlannedImage]:
        """The inputs to detect, with their output stems; our own outputs (overlays, a
        previous run's files) are dropped; resumed and refused images carry a result."""
        paths = [Path(p) for p in paths]
        kept = []
        for p in paths:
            ap = os.path.abspath(p)
            if ap in self.own_outputs or (os.path.dirname(ap) == os.path.abspath(self.outdir)
                                          and conv.is_own_output(p)):
                logger.info("%s: an output of Gold Digger, not an input; skipped",
                            conv.display_name(p))
                continue
            kept.append(p)
        self._inputs = {os.path.abspath(p) for p in kept}
        stems = conv.output_stems(kept)
        records = self._records()
        planned = []
        for p, stem in zip(kept, stems, strict=True):
            outs = conv.outputs_for(stem, self.outdir, self.options.overlay,
                                    self.options.per_image_summary)
            item = PlannedImage(p, stem, outs)
            rec = records.get(stem)
            if (self.options.resume and rec is not None
                    and rec.get("settings_id") == self.settings_id and outs.csv.exists()):
                item.result = ImageResult(p, stem=stem, skipped=True)
            else:
                try:
                    self._check_outputs(p, outs, rec is not None)
                except GoldDiggerError as err:
                    item.result = ImageResult(p, stem=stem, error=error_text(p, err))
            planned.append(item)
        # an image's region is never one of this run's outputs
        for item in planned:
            self.own_outputs.update(os.path.abspath(o) for o in item.outputs.all())
        return planned

    def _check_outputs(self, path: Path, outs: conv.ImageOutputs, recorded: bool) -> None:
        from golddigger.io.safe import check_writable

        for o in outs.all():
            if os.path.abspath(o) in self._inputs:
                raise OutputError(f"{o} would replace an input image; choose another "
                                  "output folder")
            # with --resume an unfinished image's leftovers are replaced
            check_writable(o, self.options.overwrite or self.options.resume)

    def _records(self) -> dict[str, dict]:
        out = {}
        folder = self.state / _RECORDS
        for f in folder.glob("*.json") if folder.is_dir() else ():
            rec = _read_json(f)
            if rec is not None and "stem" in rec:
                out[rec["stem"]] = rec
        return out

    # ------------------------------------------------------------------ writing
    def write(self, result: ImageResult) -> ImageResult:
        """Write one image's outputs (RoiSet, overlay, CSV, then its record); on any
        failure nothing of the image is kept and the error is put in the result."""
        if result.particles is None:
            return result
        outs = conv.outputs_for(result.stem, self.outdir, self.options.overlay,
                                self.options.per_image_summary)
        record = self.state / _RECORDS / _record_name(result.stem)
        written: list[Path] = []
        try:
            _unlink(record)
            from golddigger.io.rois import write_roiset
            from golddigger.io.safe import atomic_write_bytes

            write_roiset(outs.roiset, result.particles, result.pixel_size_nm,
                         shape=self.options.shape, positions=result.is_stack or None)
            written.append(outs.roiset)
            if outs.overlay is not None and result.overlay_png is not None:
                atomic_write_bytes(outs.overlay, result.overlay_png)
                written.append(outs.overlay)
            if outs.summary is not None:
                from golddigger.io.csvtable import rows_to_csv

                rows_to_csv(result.summary_rows(), outs.summary)
                written.append(outs.summary)
            result.particles.to_csv(outs.csv)
            written.append(outs.csv)
            _write_json(record, {
                "format": _FORMAT, "stem": result.stem, "image": result.name,
                "path": os.fsdecode(os.path.abspath(result.path)),
                "settings_id": self.settings_id,
                "outputs": [os.fsdecode(o.name) for o in outs.all()],
                "particles": len(result.particles), "rows": result.summary_rows()})
        except BaseException as err:
            for p in written + [record]:
                _unlink(p)
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            result.error = error_text(result.path, err, self.outdir)
            result.particles = None
        if result.error:
            logger.error("%s", result.error)
        return result

    def finish(self) -> Path | None:
        """Rebuild ``summary.csv`` from the records on disk."""
        return rebuild_summary(self.outdir)


def run_batch(paths: Sequence[str | Path], detector, outdir: str | Path,
              options: BatchOptions, *, progress: Callable | None = None,
              cancel=None) -> BatchResult:
    """Detect gold in every image and write the outputs into ``outdir`` (see the module
    docstring). Raises only for problems of the whole run (a locked folder, other
    settings, an unwritable folder); a problem with one image is in its result."""
    results: list[ImageResult] = []
    cancelled = False
    with BatchRun(outdir, options, detector) as run:
        planned = run.plan(paths)
        n = len(planned)
        for i, item in enumerate(planned):
            if _is_cancelled(cancel):
                cancelled = True
                break
            if progress is not None:
                progress(i, n, item.path)
            if item.result is not None:
                if item.result.error:
                    logger.error("%s", item.result.error)
                results.append(item.result)
                continue
            try:
                res = detect_one(item.path, detector, options, stem=item.stem,
                                 region_exclude=run.own_outputs, cancel=cancel)
            except _Cancelled:
                cancelled = True
                break
            if res.error:
                logger.error("%s", res.error)
            results.append(run.write(res))
        if progress is not None:
            progress(len(results), n, None)
    if cancelled:
        logger.warning("cancelled after %d image(s); run again with --resume to finish",
                       len(results))
    return BatchResult(results, run.summary_path, cancelled)


# ---------------------------------------------------------------------------- summary
def rebuild_summary(outdir: str | Path) -> Path | None:
    """Write ``summary.csv`` from the records of the current settings whose particle CSV
    is on disk; returns its path (None when there is nothing to summarise)."""
    from golddigger.io.csvtable import rows_to_csv

    outdir = Path(outdir)
    state = outdir / conv.STATE_DIR
    manifest = _read_json(state / _MANIFEST) or {}
    current = manifest.get("settings_id")
    rows: list[dict] = []
    other = 0
    folder = state / _RECORDS
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        rec = _read_json(f)
        if rec is None or "stem" not in rec:
            continue
        if current is not None and rec.get("settings_id") != current:
            other += 1
            continue
        if not (outdir / f"{rec['stem']}.csv").exists():
            continue
        rows.extend(rec.get("rows", []))
    if other:
        logger.warning("%s: %d image(s) made with other settings are not in the summary",
                       outdir, other)
    summary = outdir / conv.SUMMARY_NAME
    if not rows:
        return summary if summary.exists() else None
    rows.sort(key=lambda r: (str(r.get("image", "")), int(r.get("slice", 0) or 0)))
    rows_to_csv(_order_columns(rows), summary)
    return summary


def _order_columns(rows: list[dict]) -> list[dict]:
    classes = sorted({float(k[2:-2]) for r in rows for k in r
                      if k.startswith("n_") and k.endswith("nm")})
    cols = list(SUMMARY_COLUMNS) + [f"n_{d:g}nm" for d in classes] + ["density_per_um2"] + [
        f"density_{d:g}nm_per_um2" for d in classes]
    extra = [k for r in rows for k in r if k not in cols]
    cols += list(dict.fromkeys(extra))
    return [{c: r.get(c, "") for c in cols} for r in rows]


def _adopt_legacy_summary(summary: Path, outdir: Path, state: Path, settings_id: str) -> None:
    """Records for the rows of a summary written before records existed (images whose
    CSV is there), so that rebuilding it keeps them; refuse a summary that is not ours."""
    from golddigger.io.csvtable import read_rows

    try:
        rows = read_rows(summary)
        ok = bool(rows) and {"image", "slice", "total"} <= set(rows[0])
    except (OSError, UnicodeDecodeError, ValueError):
        rows, ok = [], False
    if not ok:
        raise OutputError(f"{summary} exists and is not a Gold Digger summary; move it away, "
                          "choose another output folder, or use --overwrite")
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    for image, rs in by_image.items():
        stem = Path(image).stem
        if (outdir / f"{stem}.csv").exists():
            _write_json(state / _RECORDS / _record_name(stem),
                        {"format": _FORMAT, "stem": stem, "image": image, "rows": rs,
                         "settings_id": settings_id, "outputs": [f"{stem}.csv"]})


# ---------------------------------------------------------------------------- lock
def acquire_lock(outdir: Path) -> Path:
    """Create ``.golddigger/lock`` exclusively (pid, host, time); a lock left by a process
    that is gone (same host) is taken over. Raises `OutputError` when another run holds it."""
    lock = outdir / conv.STATE_DIR / _LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    text = f"{os.getpid()} {_host()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is None:  # stale: its process is gone
                logger.warning("%s: removing a stale lock of a run that ended without "
                               "cleaning up", lock)
                _unlink(lock)
                continue
            pid, host, since = holder
            raise OutputError(
                f"{outdir} is in use by another Gold Digger run (pid {pid} on {host}, since "
                f"{since}); wait for it to finish or choose another output folder (if no "
                f"run is going, delete {lock})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return lock
    raise OutputError(f"{lock}: cannot take the output folder's lock")


def _lock_holder(lock: Path) -> tuple[str, str, str] | None:
    """(pid, host, since) of a live holder; None when the lock is stale."""
    try:
        parts = lock.read_text(encoding="utf-8", errors="replace").split(maxsplit=2)
    except FileNotFoundError:
        return None
    except OSError:
        parts = []
    if len(parts) < 2 or not parts[0].isdigit():
        # being written right now, or damaged: stale only when old
        try:
            if time.time() - lock.stat().st_mtime > 60:
                return None
        except FileNotFoundError:
            return None
        return ("?", "?", "?")
    pid, host = int(parts[0]), parts[1]
    since = parts[2].strip() if len(parts) > 2 else "?"
    if host == _host():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return (str(pid), host, since)


def _host() -> str:
    return os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "?")


def release_lock(lock: Path | None) -> None:
    if lock is not None:
        _unlink(lock)


# ---------------------------------------------------------------------------- helpers
def _settings_id(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _differences(old: dict, new: dict) -> str:
    keys = [k for k in dict.fromkeys(list(old) + list(new)) if old.get(k) != new.get(k)]
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "unknown"


def _record_name(stem: str) -> str:
    return f"{stem}.json"


def _recorded_outputs(state: Path) -> set[str]:
    out: set[str] = set()
    folder = state / _RECORDS
    outdir = state.parent
    for f in folder.glob("*.json") if folder.is_dir() else ():
        rec = _read_json(f)
        for name in (rec or {}).get("outputs", []):
            out.add(os.path.abspath(outdir / name))
    return out


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("%s: unreadable (%s); ignored", path, err)
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict) -> None:
    from golddigger.io.safe import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(data, indent=1, allow_nan=True).encode("utf-8"))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        os.unlink(path)
