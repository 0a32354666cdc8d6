"""How far the BioImage.IO package's declared normalisation (per-image percentiles, the
closest the spec allows) moves results from Gold Digger's own (median / 1.4826 MAD).

    python benchmarks/bioimageio_normalisation.py --data ../shared/data/mpfi-fril \
        --pixel-size 0.5587

For each annotated image: the maps of the shipped model with Gold Digger's normalisation
(`Detector.predict_maps`) and with the package's (`normalise_for_package` on the image
resampled to the model's pixel size, as a deepImageJ user would feed it); particles from
both by the same post-processing (`maps_to_particles`, sizing by maps, the model's
threshold); class-agnostic F1 against the labels (scored region: labels' hull + 30 nm)
and the agreement of the two particle sets (matched within 3 nm).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from golddigger.evaluate import evaluate_image, match_points
from golddigger.export.bioimageio import normalise_for_package, package_normalisation
from golddigger.model.detector import Detector, _sigmoid_inplace, tiled_forward
from golddigger.model.postprocess import maps_to_particles
from golddigger.model.preprocess import resample_plane, robust_stats
from golddigger.particles import ParticleTable
from golddigger.training_data import load_labelled_folder as load_samples


def particles(det: Detector, maps: np.ndarray, fx: float, fy: float) -> ParticleTable:
    x, y, d, s = maps_to_particles(maps, list(det.classes), det.pixel_size_nm,
                                   det.class_thresholds())
    return ParticleTable((x + 0.5) / fx - 0.5, (y + 0.5) / fy - 0.5, d, s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args()
    det = Detector.from_pretrained(args.model, precision="float32")
    cfg = det.config
    rows = []
    for sample in load_samples(args.data, args.pixel_size):
        t0 = time.perf_counter()
        plane = np.asarray(sample.image, dtype=np.float32)
        maps_gd, (fx, fy) = det.predict_maps(plane, sample.pixel_size_nm)
        resampled = resample_plane(plane, sample.pixel_size_nm / cfg.pixel_size_nm)
        resampled = resampled[0, 0].numpy()
        x = normalise_for_package(resampled)
        maps_pkg = _sigmoid_inplace(tiled_forward(
            det._net, x, multiple=2**cfg.depth, halo=cfg.halo_px, tile_size=cfg.tile_size,
            edge_pad=cfg.edge_pad_px))
        a = particles(det, maps_gd, fx, fy)
        b = particles(det, maps_pkg, fx, fy)
        px = sample.pixel_size_nm
        f1_gd = evaluate_image(sample.particles, a, px).scores["all"].f1
        f1_pkg = evaluate_image(sample.particles, b, px).scores["all"].f1
        ia, _, _ = match_points(np.c_[a.x, a.y] * px, np.c_[b.x, b.y] * px, 3.0)
        _, mad = robust_stats(plane)
        norm = package_normalisation()
        p_lo, p_hi = np.percentile(resampled, [norm.centre_percentile,
                                               norm.spread_percentile])
        row = {"image": sample.name, "spread_golddigger": mad,
               "spread_package": norm.spread_factor * float(p_hi - p_lo),
               "max_abs_map_difference": float(np.abs(maps_gd - maps_pkg).max()),
               "n_golddigger": len(a), "n_package": len(b), "matched": int(ia.size),
               "f1_golddigger": f1_gd, "f1_package": f1_pkg,
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    n_a = sum(r["n_golddigger"] for r in rows)
    n_b = sum(r["n_package"] for r in rows)
    m = sum(r["matched"] for r in rows)
    summary = {"images": len(rows), "detections_golddigger": n_a, "detections_package": n_b,
               "matched_within_3nm": m, "agreement_f1": 2 * m / max(1, n_a + n_b),
               "median_f1_golddigger": float(np.median([r["f1_golddigger"] for r in rows])),
               "median_f1_package": float(np.median([r["f1_package"] for r in rows])),
               "median_spread_ratio": float(np.median([r["spread_package"]
                                                       / r["spread_golddigger"]
                                                       for r in rows]))}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
