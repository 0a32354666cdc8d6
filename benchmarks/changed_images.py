"""Accuracy when the canvas or the declared scale changes: the same micrographs padded
on a large black canvas, turned with black corners, or declared at a pixel size that
makes their gold read as other sizes (issue 13's changed-image targets).

    python benchmarks/changed_images.py --data ../shared/data/mpfi-fril --pixel-size 0.5587 \
        --json benchmarks/results/changed_images.json

It scores one detector (default: the shipped model) on every image, unchanged and
changed; labels move (and, for a declared pixel size, scale their diameters) with the
image. With the shipped model this is IN-SAMPLE (it was trained on these six images):
the figures say whether a change of canvas or scale costs accuracy relative to the
unchanged image, not what accuracy is on unseen micrographs. With ``--cv`` (a
`cv_accuracy.py` result JSON, its fold models beside it) every image is scored by the
fold model that never saw it, at that fold's threshold (chosen on the other folds):

    python benchmarks/changed_images.py --data ../shared/data/mpfi-fril --pixel-size 0.5587 \
        --cv runs/cv_v4/cv_result_image.json --recipe fril-gold-v4 \
        --json benchmarks/results/changed_images_v4_cv.json

Scoring is as in `cv_accuracy.py` (5 nm matching radius, labels' hull + 30 nm). An image
declared at ``f`` times its pixel size has every length read ``f`` times longer, the
distance between a label and its detection too, so its matching radius and hull margin
are ``f`` times 5 and 30 nm: the same micrograph is then scored by the same rule
(``f1_all``). ``f1_all_fixed_radius`` keeps 5 nm, which is 3 nm on the specimen at
``f`` = 5/3 and 6 nm at 5/6, for comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from golddigger.cv import load_fold_net
from golddigger.evaluate import DEFAULT_BUFFER_NM, DEFAULT_RADIUS_NM, evaluate_many
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.particles import ParticleTable
from golddigger.recipes import RECIPES, SHIPPED_RECIPE
from golddigger.training_data import load_labelled_folder as load_samples

#: image, labels, pixel size -> changed image, labels, pixel size, classes to ask for
Case = Callable[[np.ndarray, ParticleTable, float],
                tuple[np.ndarray, ParticleTable, float, list[float] | None]]


def padded(side: int) -> Case:
    """The image centred on a ``side`` x ``side`` black canvas."""
    def case(img, truth, px):
        h, w = img.shape
        out = np.zeros((max(side, h), max(side, w)), dtype=img.dtype)
        y0, x0 = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
        out[y0:y0 + h, x0:x0 + w] = img
        moved = ParticleTable(truth.x + x0, truth.y + y0, truth.diameter_nm, truth.score,
                              truth.slice)
        return out, moved, px, None
    return case


def turned(degrees: float) -> Case:
    """The image turned by ``degrees`` on a canvas that holds all of it (black corners),
    bilinear."""
    def case(img, truth, px):
        a = np.deg2rad(degrees)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # (row, col)
        h, w = img.shape
        corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], float)
        ci = np.array([(h - 1) / 2, (w - 1) / 2])
        out_pts = (corners - ci) @ rot.T
        oh, ow = (np.ceil(out_pts.max(0) - out_pts.min(0)) + 1).astype(int)
        co = np.array([(oh - 1) / 2, (ow - 1) / 2])
        # output pixel o reads input rot^T (o - co) + ci
        out = ndi.affine_transform(img.astype(np.float32), rot.T,
                                   offset=ci - rot.T @ co, output_shape=(oh, ow),
                                   order=1, cval=0.0)
        pts = (np.stack([truth.y, truth.x], 1) - ci) @ rot.T + co
        moved = ParticleTable(pts[:, 1], pts[:, 0], truth.diameter_nm, truth.score,
                              truth.slice)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), moved, px, None
    return case


def declared(factor: float, classes: list[float]) -> Case:
    """The image declared at ``factor`` times its pixel size: its gold reads ``factor``
    times larger; labels' diameters scaled the same way, ``classes`` asked for."""
    def case(img, truth, px):
        moved = ParticleTable(truth.x, truth.y, truth.diameter_nm * factor, truth.score,
                              truth.slice)
        return img, moved, px * factor, classes
    return case


CASES: dict[str, Case] = {
    "as is": lambda img, truth, px: (img, truth, px, None),
    "padded to 3000 x 3000 (black)": padded(3000),
    "turned 30 degrees (black corners)": turned(30.0),
    "declared x5/6: gold reads 5/10 nm, --classes 5 10": declared(5 / 6, [5.0, 10.0]),
    "declared x5/3: gold reads 10/20 nm, --classes 10 20": declared(5 / 3, [10.0, 20.0]),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--model", default=None, help="model name or folder (default shipped)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--cases", nargs="*", default=None, help="names (substrings) to run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-size-match", action="store_true",
                    help="show the network every image at its own scale, also for sizes "
                         "the model lacks (the behaviour before size matching; for "
                         "comparison only)")
    ap.add_argument("--cv", type=Path, default=None,
                    help="a cv_accuracy.py result JSON: score each image with its held-out "
                         "fold model (stored beside it) at that fold's threshold")
    ap.add_argument("--recipe", default=SHIPPED_RECIPE.name, choices=sorted(RECIPES),
                    help="with --cv: the recipe the fold models were trained with")
    args = ap.parse_args(argv)
    if args.no_size_match:
        Detector.scale_passes = lambda self, classes=None: [(1.0, None)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    samples = load_samples(args.data, args.pixel_size)
    if args.cv is None:
        det = Detector.from_pretrained(args.model, threads=args.threads,
                                       precision=args.precision)
        detectors = {s.name: det for s in samples}
        results: dict = {"model": det.config.name, "precision": det.precision,
                         "in_sample": True, "cases": {}}
    else:
        cv = json.loads(args.cv.read_text())
        cfg = ModelConfig(name="cv", **RECIPES[args.recipe].model_fields_for_config())
        detectors = {}
        for fold in cv["folds"]:
            net = load_fold_net(args.cv.parent, fold, cfg)
            for name in fold:
                detectors[name] = Detector(net, cfg, {"threshold": cv["thresholds_common"][name]},
                                           threads=args.threads, precision=args.precision)
        det = detectors[samples[0].name]
        results = {"model": f"{args.recipe} fold models ({args.cv})",
                   "precision": det.precision, "in_sample": False,
                   "thresholds": cv["thresholds_common"], "cases": {}}
    results["size_match"] = not args.no_size_match
    for name, case in CASES.items():
        if args.cases and not any(c in name for c in args.cases):
            continue
        pairs, counts, black, secs, factors = [], {}, [], [], set()
        for s in samples:
            img, truth, px, classes = case(np.asarray(s.image), s.particles, s.pixel_size_nm)
            factors.add(round(px / s.pixel_size_nm, 6))
            t0 = time.perf_counter()
            found = detectors[s.name].predict(img, px, classes=classes)
            secs.append(time.perf_counter() - t0)
            black.append(float(np.mean(img == 0)))
            pairs.append((s.name, truth, found, px, None))
            counts[s.name] = {"found": len(found), "labels": len(truth)}
        (factor,) = factors  # lengths read this much longer than on the unchanged image
        report = evaluate_many(pairs, radius_nm=DEFAULT_RADIUS_NM * factor,
                               buffer_nm=DEFAULT_BUFFER_NM * factor).to_dict()
        fixed = evaluate_many(pairs).to_dict()
        row = {"f1_all": report["pooled"]["all"]["f1"],
               "length_factor": factor,
               "pooled_counts": {k: {n: v[n] for n in ("tp", "fp", "fn")}
                                 for k, v in report["pooled"].items()},
               "f1_all_fixed_radius": fixed["pooled"]["all"]["f1"],
               "per_class_fixed_radius": {k: v["f1"] for k, v in fixed["pooled"].items()
                                          if k != "all"},
               "per_class": {k: v["f1"] for k, v in report["pooled"].items() if k != "all"},
               "per_image": {k: v["all"]["f1"] for k, v in report["images"].items()},
               "counts": counts, "black_fraction_median": float(np.median(black)),
               "seconds_median": float(np.median(secs))}
        results["cases"][name] = row
        logging.info("%-52s F1 %.3f %s  black %.0f %%  (5 nm radius: %.3f %s)", name,
                     row["f1_all"], {k: round(v, 3) for k, v in row["per_class"].items()},
                     100 * row["black_fraction_median"], row["f1_all_fixed_radius"],
                     {k: round(v, 3) for k, v in row["per_class_fixed_radius"].items()})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
