"""Detection over files: what ``golddigger detect`` and the ImageJ folder command run.

For each image: read it with its calibration, find the particles (inside a region when one
is given), and write ``<stem>.csv``, ``<stem>_RoiSet.zip`` and, on request, an overlay PNG;
then one summary CSV for the run. Every output is written atomically and no existing file is
replaced unless asked; a bad image is reported and the batch goes on.
"""

from __future__ import annotations

import csv
import errno
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.io.images import CalibratedImage, read_image
from golddigger.io.regions import Region
from golddigger.io.safe import atomic_write_text, check_writable
from golddigger.particles import ParticleTable

__all__ = ["DetectOptions", "ImageResult", "BatchResult", "detect_files", "summary_rows",
           "outputs_for"]

logger = logging.getLogger(__name__)


@dataclass
class DetectOptions:
    """Options of a detection run (the CLI flags)."""

    pixel_size_nm: float | None = None
    roi: Path | None = None  # a ROI file for all images, or a folder of <stem>.roi/.zip
    threshold: float | None = None
    classes: Sequence[float | str] | None = None
    channel: int | None = None
    shape: str = "oval"  # ROI shape in the RoiSet: "oval" or "point"
    overlay: bool = False
    overwrite: bool = False
    resume: bool = False
    tile_size: int | None = -1
    sizing: str | None = None  # "maps" or "image"; None: the model's
    tta: int = 1  # test-time augmentation passes (1, 2, 4, 8)


@dataclass
class ImageResult:
    """What one image gave."""

    path: Path
    particles: ParticleTable | None = None
    pixel_size_nm: float | None = None
    area_um2: list[float] = field(default_factory=list)  # per slice
    region_source: str = "image"
    error: str | None = None
    skipped: bool = False


@dataclass
class BatchResult:
    results: list[ImageResult]
    summary_path: Path | None = None

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.error]


def outputs_for(path: Path, outdir: Path, overlay: bool = False) -> list[Path]:
    """The files detection writes for one image."""
    stem = path.stem
    out = [outdir / f"{stem}.csv", outdir / f"{stem}_RoiSet.zip"]
    if overlay:
        out.append(outdir / f"{stem}_overlay.png")
    return out


def _find_roi(image_path: Path, roi: Path | None) -> Path | None:
    if roi is None:
        return None
    if roi.is_dir():
        for name in (f"{image_path.stem}.roi", f"{image_path.stem}.zip",
                     f"{image_path.stem}_RoiSet.zip", f"{image_path.stem}_region.roi",
                     f"{image_path.stem}_region.zip"):
            if (roi / name).is_file():
                return roi / name
        return None
    if not roi.exists():
        raise GoldDiggerError(f"{roi}: no such ROI file")
    return roi


def detect_image(detector, image: CalibratedImage, region: Region | None,
                 options: DetectOptions) -> tuple[ParticleTable, list[float]]:
    """Detect in one image; returns the particles and the counting area (um2) per slice."""
    px = image.require_pixel_size()
    particles = detector.predict(image, px, region=region, threshold=options.threshold,
                                 classes=options.classes, tile_size=options.tile_size,
                                 sizing=options.sizing, tta=options.tta)
    area_px = region.area_px() if region is not None else float(np.prod(image.shape_yx))
    # flat canvas (padding, black corners: Detector.specimen_mask) holds no particles
    # and does not count in the area
    excluded = getattr(particles, "excluded_px", {}) or {}
    areas = []
    for s in range(image.n_slices):
        a = area_px
        if excluded.get(s):
            if region is None:
                a -= excluded[s]
            else:
                spec = detector.specimen_mask(image.slice(s), px)
                if spec is not None:
                    a = float(np.count_nonzero(region.to_mask(image.shape_yx) & spec))
        areas.append(a * px * px / 1e6)
    return particles, areas


def detect_files(paths: Sequence[Path], detector, outdir: Path, options: DetectOptions,
                 on_progress: Callable[[int, int, Path], None] | None = None) -> BatchResult:
    """Detect gold in every image and write the outputs into ``outdir``.

    A file that cannot be processed is recorded with its error and the batch continues.
    With ``options.resume`` images whose CSV already exists are skipped (and leftovers of
    an image whose CSV is missing, i.e. unfinished, are replaced); otherwise an existing
    output is an error for that image unless ``options.overwrite``.

    ``summary.csv`` is rewritten (atomically) after every finished image, so an
    interrupted batch keeps the rows of its finished images. Rows of an existing summary
    for images not processed in this run are kept: a run never drops earlier results.
    """
    from golddigger.io.rois import read_region, write_roiset

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in paths]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise GoldDiggerError(f"several inputs share the name(s) {', '.join(sorted(dupes))}; "
                              "their outputs would collide: process them into separate folders")
    summary = outdir / "summary.csv"
    earlier = _read_summary(summary, options.overwrite)
    results: list[ImageResult] = []
    for i, path in enumerate(paths):
        if on_progress is not None:
            on_progress(i, len(paths), path)
        res = ImageResult(Path(path))
        results.append(res)
        outs = outputs_for(res.path, outdir, options.overlay)
        try:
            if options.resume and outs[0].exists():
                res.skipped = True
                continue
            for o in outs:  # with --resume, outs[0] is absent: the image is unfinished
                check_writable(o, options.overwrite or options.resume)
            image = read_image(path, options.pixel_size_nm, options.channel)
            px = image.require_pixel_size()
            roi_path = _find_roi(res.path, options.roi)
            region = None
            if roi_path is not None:
                region = read_region(roi_path, image_shape=image.shape_yx)
                res.region_source = roi_path.name
            particles, res.area_um2 = detect_image(detector, image, region, options)
            res.particles, res.pixel_size_nm = particles, px
            # write: the CSV last, since --resume keys on it
            write_roiset(outs[1], particles, px, shape=options.shape)
            if options.overlay:
                from golddigger.overlay import save_overlay

                save_overlay(outs[2], image, particles, px, region)
            particles.to_csv(outs[0])
            _write_summary(summary, earlier,
                           summary_rows(results, detector.report_classes(options.classes)))
        except GoldDiggerError as err:
            res.error = str(err)
            logger.error("%s", err)
        except MemoryError:
            res.error = (f"{path}: out of memory; try --tile-size 512, fewer --threads, or "
                         "crop the image")
            logger.error("%s", res.error)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                res.error = (f"{path}: no space left on the disk of {outdir}; nothing of this "
                             "image was kept: free some space and run again with --resume")
            else:
                res.error = f"{path}: {err.strerror or err}" + (
                    f": {err.filename}" if err.filename and str(err.filename) != str(path)
                    else "")
            logger.error("%s", res.error)
        except Exception as err:  # one odd file must not end a season's batch
            res.error = (f"{path}: unexpected error ({type(err).__name__}: {err}); the other "
                         "images are processed; please report this with the file")
            logger.error("%s", res.error)
            logger.debug("details", exc_info=True)
    rows = _merge_rows(earlier,
                       summary_rows(results, detector.report_classes(options.classes)))
    written = summary if summary.exists() and rows else None
    return BatchResult(results, written)


def summary_rows(results: Sequence[ImageResult], classes: Sequence[float]) -> list[dict]:
    """One row per image and slice: counts per class, counting area and density."""
    rows = []
    for r in results:
        if r.particles is None:
            continue
        for s, area in enumerate(r.area_um2):
            p = r.particles.in_slice(s)
            row = {"image": r.path.name, "slice": s + 1, "region": r.region_source,
                   "pixel_size_nm": round(r.pixel_size_nm or 0, 5),
                   "area_um2": round(area, 5), "total": len(p)}
            for d in classes:
                row[f"n_{d:g}nm"] = len(p.of_class(d))
            row["density_per_um2"] = round(len(p) / area, 3) if area > 0 else ""
            for d in classes:
                row[f"density_{d:g}nm_per_um2"] = (round(len(p.of_class(d)) / area, 3)
                                                   if area > 0 else "")
            rows.append(row)
    return rows


def _rows_to_csv(rows: list[dict]) -> str:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_summary(path: Path, overwrite: bool) -> list[dict]:
    """The rows of an existing summary (none if absent, or replaced with ``overwrite``
    when it is not a Gold Digger summary)."""
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [{k: v for k, v in r.items() if k is not None} for r in reader]
            fields = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        rows, fields = [], set()
        logger.debug("%s: unreadable (%s)", path, err)
    if not {"image", "slice", "total"} <= fields:
        if overwrite:
            return []
        raise GoldDiggerError(f"{path} exists and is not a Gold Digger summary; move it away, "
                              "choose another output folder, or use --overwrite")
    return rows


def _merge_rows(earlier: list[dict], new_rows: list[dict]) -> list[dict]:
    """Earlier rows of images not in ``new_rows``, then ``new_rows``."""
    done = {r["image"] for r in new_rows}
    return [r for r in earlier if r.get("image") not in done] + new_rows


def _write_summary(path: Path, earlier: list[dict], new_rows: list[dict]) -> None:
    rows = _merge_rows(earlier, new_rows)
    if rows:
        atomic_write_text(path, _rows_to_csv(rows))
