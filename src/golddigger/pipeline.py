"""Detection over files: what ``golddigger detect`` and the ImageJ folder command run.

For each image: read it with its calibration, find the particles (inside a region when one
is given), and write ``<stem>.csv``, ``<stem>_RoiSet.zip`` and, on request, an overlay PNG;
then one summary CSV for the run. Every output is written atomically and no existing file is
replaced unless asked; a bad image is reported and the batch goes on.
"""

from __future__ import annotations

import csv
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
    classes: Sequence[float] | None = None
    channel: int | None = None
    shape: str = "oval"  # ROI shape in the RoiSet: "oval" or "point"
    overlay: bool = False
    overwrite: bool = False
    resume: bool = False
    tile_size: int | None = -1


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
                                 classes=options.classes, tile_size=options.tile_size)
    area_px = region.area_px() if region is not None else float(np.prod(image.shape_yx))
    area = area_px * px * px / 1e6
    return particles, [area] * image.n_slices


def detect_files(paths: Sequence[Path], detector, outdir: Path, options: DetectOptions,
                 on_progress: Callable[[int, int, Path], None] | None = None) -> BatchResult:
    """Detect gold in every image and write the outputs into ``outdir``.

    A file that cannot be processed is recorded with its error and the batch continues.
    With ``options.resume`` images whose CSV already exists are skipped; otherwise an
    existing output is an error for that image unless ``options.overwrite``.
    """
    from golddigger.io.rois import read_region, write_roiset

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in paths]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise GoldDiggerError(f"several inputs share the name(s) {', '.join(sorted(dupes))}; "
                              "their outputs would collide: process them into separate folders")
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
            for o in outs:
                check_writable(o, options.overwrite)
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
        except GoldDiggerError as err:
            res.error = str(err)
            logger.error("%s", err)
        except (OSError, MemoryError) as err:
            res.error = f"{path}: {err}"
            logger.error("%s", res.error)
    summary = outdir / "summary.csv"
    rows = summary_rows(results, detector.classes)
    if options.resume and summary.exists():
        rows = _merge_summary(summary, rows)
    if rows:
        atomic_write_text(summary, _rows_to_csv(rows))
    return BatchResult(results, summary if rows else None)


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


def _merge_summary(path: Path, new_rows: list[dict]) -> list[dict]:
    with open(path, newline="") as fh:
        old = list(csv.DictReader(fh))
    done = {(r["image"], str(r["slice"])) for r in new_rows}
    return [r for r in old if (r.get("image"), str(r.get("slice"))) not in done] + new_rows
