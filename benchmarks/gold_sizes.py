"""Synthetic gold of one size per image set (5, 8, 10, 15, 20, 25 nm): F1 and median
diameter error with ``--classes <that size>`` (issue 13's gold-size target).

    python benchmarks/gold_sizes.py --json benchmarks/results/gold_sizes.json

Each size gets ``--images`` synthetic micrographs (`golddigger.synth`, default look,
particles drawn at exactly the nominal size: ``size_cv`` 0) at 0.5587 nm/px with
``--per-image`` particles. The detector is asked for that one class; the diameter error
is |measured - nominal| over the true positives. No real image is involved.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from golddigger.evaluate import evaluate_many
from golddigger.model.detector import Detector
from golddigger.particles import ParticleTable
from golddigger.synth import SynthConfig, generate

SIZES = (5.0, 8.0, 10.0, 15.0, 20.0, 25.0)


def matched_errors(truth: ParticleTable, found: ParticleTable, px: float,
                   radius_nm: float) -> np.ndarray:
    """|measured - true| diameter of detections within ``radius_nm`` of a true particle
    (nearest first, one each)."""
    from scipy.spatial import cKDTree

    if len(truth) == 0 or len(found) == 0:
        return np.empty(0)
    d, j = cKDTree(truth.xy).query(found.xy)
    used, errs = set(), []
    for i in np.argsort(d):
        if d[i] * px <= radius_nm and j[i] not in used:
            used.add(j[i])
            errs.append(abs(found.measured_nm[i] - truth.diameter_nm[j[i]]))
    return np.asarray(errs)


#: Sizes used together (double labelling), for ``--mixtures``
MIXTURES = ((5.0, 25.0), (10.0, 25.0), (5.0, 15.0), (10.0, 15.0), (6.0, 18.0, 25.0))


def mixtures(det: Detector, args) -> dict:
    """Per-class and pooled F1 on images holding several gold sizes, asked for all."""
    out = {}
    px = args.pixel_size
    for sizes in MIXTURES:
        pairs = []
        for k in range(args.images):
            cfg = SynthConfig(shape=(args.shape, args.shape), pixel_size_nm=px,
                              classes=sizes, counts={s: args.per_image for s in sizes},
                              size_cv=0.0)
            res = generate(cfg, seed=args.seed + 100 * k + int(sum(sizes)))
            found = det.predict(res.image, px, classes=list(sizes))
            pairs.append((f"{k}", res.particles, found, px, None))
        report = evaluate_many(pairs, radius_nm=max(5.0, 0.5 * min(sizes)),
                               classes=list(sizes)).to_dict()["pooled"]
        key = "+".join(f"{s:g}" for s in sizes)
        out[key] = {"passes": len(det.scale_passes(list(sizes))),
                    **{c: {n: r[n] for n in ("f1", "tp", "fp", "fn")}
                       for c, r in report.items()}}
        logging.info("%s nm: %s (%d passes)", key,
                     {c: round(r["f1"], 3) for c, r in report.items()}, out[key]["passes"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--sizes", type=float, nargs="+", default=list(SIZES))
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--per-image", type=int, default=40)
    ap.add_argument("--shape", type=int, default=768)
    ap.add_argument("--pixel-size", type=float, default=0.5587)
    ap.add_argument("--threads", type=int, default=1)
    # far from the seeds of the recipes' synthetic training images (1000 + run seed + i),
    # whose scenery would otherwise repeat here
    ap.add_argument("--seed", type=int, default=50_000)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-size-match", action="store_true",
                    help="show the network every image at its own scale, also for sizes "
                         "the model lacks (the behaviour before size matching; for "
                         "comparison only)")
    ap.add_argument("--one-pass", action="store_true",
                    help="one network pass at the joint size-match factor even for sizes "
                         "too far apart for it (for comparison only)")
    ap.add_argument("--mixtures", action="store_true",
                    help="images holding several sizes at once (MIXTURES, --per-image of "
                         "each), asked for all of them, instead of one size per image")
    args = ap.parse_args(argv)
    if args.no_size_match:
        Detector.scale_passes = lambda self, classes=None: [(1.0, None)]
    elif args.one_pass:
        Detector.scale_passes = lambda self, classes=None: [
            (self.size_match_factor(classes), None)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    det = Detector.from_pretrained(args.model, threads=args.threads, precision="float32")
    px = args.pixel_size
    results: dict = {"model": det.config.name, "pixel_size_nm": px,
                     "size_match": not args.no_size_match, "images": args.images,
                     "seed": args.seed, "sizes": {}}
    if args.mixtures:
        results["mixtures"] = mixtures(det, args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    for size in args.sizes:
        pairs, errs, secs = [], [], []
        for k in range(args.images):
            cfg = SynthConfig(shape=(args.shape, args.shape), pixel_size_nm=px,
                              classes=(size,), counts={size: args.per_image}, size_cv=0.0)
            res = generate(cfg, seed=args.seed + 100 * k + int(size))
            t0 = time.perf_counter()
            found = det.predict(res.image, px, classes=[size])
            secs.append(time.perf_counter() - t0)
            # matched within the particle's radius (at least the usual 5 nm)
            radius = max(5.0, 0.5 * size)
            pairs.append((f"{size:g}nm_{k}", res.particles, found, px, None))
            errs.append(matched_errors(res.particles, found, px, radius))
        report = evaluate_many(pairs, radius_nm=max(5.0, 0.5 * size),
                               classes=[size]).to_dict()["pooled"]
        e = np.concatenate(errs)
        row = {"f1": report["all"]["f1"], "precision": report["all"]["precision"],
               "recall": report["all"]["recall"], "class_f1": report[f"{size:g}"]["f1"],
               "diameter_error_median_nm": float(np.median(e)) if e.size else None,
               "n_matched": int(e.size),
               "seconds_median": float(np.median(secs))}
        results["sizes"][f"{size:g}"] = row
        logging.info("%4g nm: F1 %.3f (P %.3f R %.3f, class F1 %.3f), |d err| median %s nm",
                     size, row["f1"], row["precision"], row["recall"], row["class_f1"],
                     None if e.size == 0 else round(float(np.median(e)), 2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
