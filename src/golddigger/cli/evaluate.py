"""``golddigger evaluate``: score predicted particles against labels (precision, recall, F1,
localisation error), per class and class-agnostic, per image and pooled."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from golddigger.cli._common import CliError, new_parser
from golddigger.errors import GoldDiggerError
from golddigger.io.annotations import _sniff_header

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger evaluate --labels labels/ --predictions results/ --pixel-size 0.5587
  golddigger evaluate --labels labels/ --predictions results/ --images images/
  golddigger evaluate --labels labels/ --predictions results/ --pixel-size 0.5587 \\
      --region rois/ --json scores.json

Files are paired by name: results/<stem>.csv (as 'golddigger detect' writes it) with the
labels of <stem>: labels/<stem>.csv, <stem>_RoiSet.zip, <stem>.zip, <stem>.roi, ImageJ
Results tables, or a folder labels/<stem>/ of such files. A prediction is correct when it
lies within --radius-nm of a labelled particle of the same size class (one-to-one, optimal
matching). Only the evaluation region counts: --region (a ROI file for all images, or a
folder of <stem>.roi/.zip/_region.roi), else the labels' convex hull grown by --buffer-nm.
Labels without predictions count as all missed; predictions without labels are skipped.
"""

from golddigger.io.conventions import REGION_PATTERNS as REGION_NAMES  # noqa: E402, F401


def add_parser(sub) -> None:
    from golddigger.evaluate import DEFAULT_BUFFER_NM, DEFAULT_RADIUS_NM

    p = new_parser(sub, "evaluate", help="score predictions against labels",
                   description="Score detected particles against labelled ones: precision, "
                               "recall, F1 and localisation error per size class and for "
                               "all classes together, per image and pooled.",
                   examples=EXAMPLES)
    p.add_argument("--labels", required=True, type=Path, metavar="DIR",
                   help="folder of label files (see below)")
    p.add_argument("--predictions", required=True, type=Path, metavar="DIR",
                   help="folder of <stem>.csv particle lists")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="nm per pixel (default: from the images given with --images)")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="folder of the images, to read each one's pixel size")
    p.add_argument("--radius-nm", type=float, default=DEFAULT_RADIUS_NM, metavar="R",
                   help=f"largest distance of a correct detection (default {DEFAULT_RADIUS_NM:g})")
    p.add_argument("--buffer-nm", type=float, default=DEFAULT_BUFFER_NM, metavar="B",
                   help="growth of the labels' hull used as the region when no --region "
                        f"is given (default {DEFAULT_BUFFER_NM:g})")
    p.add_argument("--region", type=Path, metavar="DIR_OR_FILE",
                   help="evaluation region: an ImageJ ROI or mask file for every image, or a "
                        "folder of per-image ones")
    p.add_argument("--classes", type=float, nargs="+", metavar="NM",
                   help="size classes to score (default: those in the labels)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the scores as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------- discovery
def _prediction_files(folder: Path) -> dict[str, Path]:
    """``<stem>.csv`` particle lists (files without the particle header, such as
    detect's summary.csv, are left out)."""
    if not folder.is_dir():
        raise CliError(f"{folder}: no such folder (--predictions)")
    out = {}
    for f in sorted(folder.iterdir()):
        if not (f.is_file() and f.suffix.lower() == ".csv" and not f.name.startswith(".")):
            continue
        try:  # every dialect the label reader reads (",", ";", tabs)
            header = {h.lower() for h in _sniff_header(f)[0]}
        except (OSError, GoldDiggerError):
            header = set()
        if {"x", "y", "diameter_nm"} <= header:
            out[f.stem] = f
        else:
            logger.debug("%s: not a particle list; skipped", f)
    return out


def _label_files(folder: Path) -> dict[str, list[Path]]:
    """Annotation files by stem: ``<stem>.<csv|zip|roi|...>``, ``<stem>_RoiSet.zip`` and
    the files of a subfolder ``<stem>/``."""
    from golddigger.io.annotations import ANNOTATION_SUFFIXES

    if not folder.is_dir():
        raise CliError(f"{folder}: no such folder (--labels)")
    out: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        if f.is_dir():
            files = sorted(g for g in f.iterdir() if g.is_file() and not g.name.startswith(".")
                           and g.suffix.lower() in ANNOTATION_SUFFIXES)
            if files:
                out.setdefault(f.name, []).extend(files)
        elif f.suffix.lower() in ANNOTATION_SUFFIXES:
            stem = f.stem[:-len("_RoiSet")] if f.stem.lower().endswith("_roiset") else f.stem
            out.setdefault(stem, []).append(f)
    return out


def _image_files(folder: Path | None) -> dict[str, Path]:
    from golddigger.io.images import IMAGE_SUFFIXES

    if folder is None:
        return {}
    if not folder.is_dir():
        raise CliError(f"{folder}: no such folder (--images)")
    return {f.stem: f for f in sorted(folder.iterdir())
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")}


def _pixel_size(stem: str, args, images: dict[str, Path]) -> float:
    from golddigger.io.images import read_image, validate_pixel_size

    if args.pixel_size is not None:
        return validate_pixel_size(args.pixel_size, "--pixel-size")
    if stem in images:
        return read_image(images[stem]).require_pixel_size()
    where = f" (no image named {stem}.* in {args.images})" if args.images else ""
    raise CliError(f"{stem}: the pixel size is unknown{where}; give --pixel-size NM, or "
                   "--images DIR with calibrated images")


def _region_for(stem: str, region_arg: Path | None, pixel_size_nm: float):
    """The evaluation region of an image (`golddigger.io.conventions.find_region_file` in a
    folder: a file of particles is never a region), or None for the labels' hull."""
    from golddigger.io.conventions import find_region_file
    from golddigger.io.rois import read_region

    if region_arg is None:
        return None
    if region_arg.is_dir():
        path = find_region_file(region_arg / f"{stem}.tif", region_arg, pixel_size_nm)
        if path is None:
            logger.warning("%s: no region file in %s; using the labels' hull", stem,
                           region_arg)
            return None
        return read_region(path)
    if not region_arg.exists():
        raise CliError(f"{region_arg}: no such region file or folder (--region)")
    return read_region(region_arg)


def _natural(name: str) -> list:
    """Sort key putting S2 before S10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------------------- run
def run(args) -> int:
    from golddigger.evaluate import EvalPair, check_region, evaluate_many
    from golddigger.io.annotations import read_annotation_set, read_particles
    from golddigger.io.safe import atomic_write_text
    from golddigger.particles import ParticleTable

    if args.json is not None and args.json.exists() and not args.overwrite:
        raise CliError(f"{args.json} already exists; use --overwrite to replace it")
    if not args.radius_nm > 0:
        raise CliError(f"--radius-nm must be positive, got {args.radius_nm:g}")
    if not args.buffer_nm >= 0:
        raise CliError(f"--buffer-nm must be >= 0, got {args.buffer_nm:g}")
    preds = _prediction_files(args.predictions)
    labels = _label_files(args.labels)
    images = _image_files(args.images)
    if not labels:
        raise CliError(f"{args.labels}: no label files (.csv, .zip, .roi, Results tables)")
    only_pred = sorted(set(preds) - set(labels))
    only_lab = sorted(set(labels) - set(preds))
    if only_pred:
        logger.warning("predictions without labels (skipped): %s", ", ".join(only_pred))
    if only_lab:
        logger.warning("labels without predictions (counted as all missed): %s",
                       ", ".join(only_lab))

    pairs = []
    for stem in sorted(labels, key=_natural):
        px = _pixel_size(stem, args, images)
        lab = read_annotation_set(labels[stem], px)
        pred = read_particles(preds[stem], px) if stem in preds else ParticleTable.empty()
        region = _region_for(stem, args.region, px)
        check_region(stem, lab, pred, region)
        pairs.append(EvalPair(stem, lab, pred, px, region))
    report = evaluate_many(pairs, radius_nm=args.radius_nm, buffer_nm=args.buffer_nm,
                           classes=args.classes)
    report.settings["labels"] = str(args.labels)
    report.settings["predictions"] = str(args.predictions)
    report.settings["missing_predictions"] = only_lab
    report.settings["missing_labels"] = only_pred
    if args.json is not None:
        atomic_write_text(args.json, report.to_json())
    if not args.quiet:
        print(report.to_table(), end="")
        if args.json is not None:
            print(f"scores written to {args.json}")
    return 0
