"""Held-out scores with the labels as given and with an adjudication of the unmatched
detections (gold the annotators left out, gold of an unlabelled size), for the GAN's
cross-validation predictions and the LoG baseline alike.

    python benchmarks/adjudicated_scores.py --data ../shared/data/mpfi-fril \
        --pixel-size 0.5587 --cv runs/cv_v2 \
        --adjudication benchmarks/adjudication/mpfi-fril.json

The thresholds are the ones the cross-validation chose on the labels as given; nothing is
re-tuned on the adjudicated labels, and the scored region stays the given labels' hull +
30 nm (added particles must not widen it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from golddigger.baseline import detect_log
from golddigger.cv import log_params_by_image, measured
from golddigger.evaluate import evaluate_many
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable
from golddigger.train import filter_by_class_thresholds
from golddigger.training_data import load_labelled_folder as load_samples


def adjudicate(name: str, truth: ParticleTable, found: ParticleTable, adj: dict,
               px: float, radius_nm: float = 5.0) -> tuple[ParticleTable, ParticleTable]:
    """Truth with the 'add' particles; detections near 'ignore' sites dropped."""
    add = adj.get("add", {}).get(name, [])
    if add:
        a = np.asarray(add, dtype=float)
        truth = ParticleTable.concat([truth, ParticleTable(a[:, 0], a[:, 1], a[:, 2])])
    ignore = adj.get("ignore", {}).get(name, [])
    if ignore and len(found):
        sites = np.asarray([[x, y] for x, y, *_ in ignore], dtype=float)
        gap = np.hypot(found.x[:, None] - sites[:, 0], found.y[:, None] - sites[:, 1])
        found = found[gap.min(axis=1) * px > radius_nm]
    return truth, found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cv", type=Path, required=True)
    ap.add_argument("--adjudication", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    samples = load_samples(args.data, args.pixel_size)
    cv = json.loads((args.cv / "cv_result_image.json").read_text())
    adj = json.loads(args.adjudication.read_text())
    classes = (6.0, 12.0, 18.0)
    params = log_params_by_image(samples, cv["folds"])
    gan, log = {}, {}
    for s in samples:
        p = measured(s, ParticleTable.from_csv(args.cv / f"pred_{s.name}.csv"), classes)
        thr = cv["thresholds_common"][s.name]
        gan[s.name] = filter_by_class_thresholds(p, {c: thr for c in classes})
        log[s.name] = detect_log(s.image, s.pixel_size_nm, params[s.name])
    out: dict = {}
    for method, preds in (("gan", gan), ("log", log)):
        for labels in ("as given", "adjudicated"):
            pairs = []
            for s in samples:
                truth, found = s.particles, preds[s.name]
                # the scored region stays the given labels' hull + 30 nm
                region = Region.hull_of_points(truth.xy, 30.0 / s.pixel_size_nm)
                if labels == "adjudicated":
                    truth, found = adjudicate(s.name, truth, found, adj, s.pixel_size_nm)
                pairs.append((s.name, truth, found, s.pixel_size_nm, region))
            rep = evaluate_many(pairs).to_dict()
            pooled = rep["pooled"]
            out[f"{method}, {labels}"] = {
                "f1_all": pooled["all"]["f1"], "f1_6": pooled["6"]["f1"],
                "f1_12": pooled["12"]["f1"],
                "tp": pooled["all"]["tp"], "fp": pooled["all"]["fp"], "fn": pooled["all"]["fn"],
                "per_image": {k: round(v["all"]["f1"], 3) for k, v in rep["images"].items()}}
    for k, v in out.items():
        print(f"{k:24} F1 {v['f1_all']:.3f} (6 nm {v['f1_6']:.3f}, 12 nm {v['f1_12']:.3f}) "
              f"TP {v['tp']} FP {v['fp']} FN {v['fn']}  {v['per_image']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
