"""How a class-map model's own classes are best decided, on held-out fold predictions:
the strongest of the model's scales (``measure_particles``, what ``fril-gold-v3`` does), or
the measured diameter binned into the classes (``golddigger.model.classes``), with
"other" dropped or given the scale choice.

    python benchmarks/sizing_heldout.py --data ../shared/data/mpfi-fril --pixel-size 0.5587 \
        --cv runs/cv_v3/cv_result_image.json --json benchmarks/results/sizing_heldout_v3.json

No network runs: the fold predictions (``pred_<image>.csv`` beside the CV JSON, at a low
floor) are thresholded at each fold's threshold and re-sized on their image.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from golddigger.evaluate import evaluate_many
from golddigger.model.classes import assign_classes, parse_classes
from golddigger.model.sizing import measure_diameters
from golddigger.particles import ParticleTable
from golddigger.training_data import load_labelled_folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--cv", type=Path, required=True, help="a cv_accuracy.py result JSON")
    ap.add_argument("--classes", type=float, nargs="+", default=[6.0, 12.0, 18.0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cv = json.loads(args.cv.read_text())
    samples = {s.name: s for s in load_labelled_folder(args.data, args.pixel_size)}
    classes = parse_classes(args.classes)
    lo = max(1.0, 0.7 * min(c.lo for c in classes))
    hi = 1.3 * max(c.hi for c in classes)
    schemes = ("scale choice", "measured, binned", "measured, binned, other by scale")
    pairs: dict[str, list] = {k: [] for k in schemes}
    for name, thr in sorted(cv["thresholds_common"].items()):
        s = samples[name]
        p = ParticleTable.from_csv(args.cv.parent / f"pred_{name}.csv")
        p = p[p.score >= thr]
        binned = assign_classes(measure_diameters(np.asarray(s.image), p.x, p.y,
                                                  s.pixel_size_nm, lo, hi), classes)
        for scheme, d in zip(schemes, (p.diameter_nm, binned,
                                       np.where(np.isfinite(binned), binned, p.diameter_nm)),
                             strict=True):
            q = ParticleTable(p.x, p.y, d, p.score, p.slice)
            pairs[scheme].append((name, s.particles, q[np.isfinite(q.diameter_nm)],
                                  s.pixel_size_nm, None))
    out = {"cv": str(args.cv), "classes": args.classes, "schemes": {}}
    for scheme, v in pairs.items():
        pooled = evaluate_many(v).to_dict()["pooled"]
        out["schemes"][scheme] = {c: {k: r[k] for k in ("f1", "tp", "fp", "fn")}
                                  for c, r in pooled.items()}
        logging.info("%-34s %s", scheme, {c: round(r["f1"], 3) for c, r in pooled.items()})
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
