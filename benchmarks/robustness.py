"""How held-out accuracy holds up when the micrographs change: magnification, contrast,
gamma, JPEG, noise. GAN fold models next to the LoG baseline, both tuned on the other
folds only.

    python benchmarks/robustness.py --data ../shared/data/mpfi-fril --pixel-size 0.5587 \
        --cv runs/cv_v2 --json benchmarks/results/robustness.json

``--cv`` is a `cv_accuracy.py` output folder: its ``model_<fold>.pt`` files and the
per-image thresholds in ``cv_result_image.json``. Every image is scored only by the
model (and the LoG parameters) that never saw it, at the threshold chosen on the other
folds on the unchanged images: the question is what a user gets from a model tuned on
other micrographs when theirs look different. Labels move with the image (a rescaled
image gets rescaled labels and the matching pixel size).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.transform import rescale

from golddigger.baseline import detect_log
from golddigger.cv import load_fold_net, log_params_by_image
from golddigger.evaluate import evaluate_many
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.particles import ParticleTable
from golddigger.recipes import RECIPES, SHIPPED_RECIPE
from golddigger.training_data import load_labelled_folder as load_samples

Case = Callable[[np.ndarray, ParticleTable, float], tuple[np.ndarray, ParticleTable, float]]


def _to_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def magnification(f: float) -> Case:
    """Resample by ``f`` (antialiased); the labels and the pixel size follow."""
    def case(img, truth, px):
        out = rescale(img.astype(np.float32), f, anti_aliasing=f < 1, preserve_range=True)
        moved = ParticleTable((truth.x + 0.5) * f - 0.5, (truth.y + 0.5) * f - 0.5,
                              truth.diameter_nm, truth.score, truth.slice)
        return _to_u8(out), moved, px / f
    return case


def grey(fn: Callable[[np.ndarray], np.ndarray]) -> Case:
    def case(img, truth, px):
        return _to_u8(fn(img.astype(np.float32))), truth, px
    return case


def jpeg(quality: int) -> Case:
    def case(img, truth, px):
        buf = io.BytesIO()
        Image.fromarray(_to_u8(img)).save(buf, format="JPEG", quality=quality)
        return np.asarray(Image.open(buf)), truth, px
    return case


def noise(sigma: float, seed: int = 0) -> Case:
    def case(img, truth, px):
        rng = np.random.default_rng(seed)
        return _to_u8(img + rng.normal(0, sigma, img.shape)), truth, px
    return case


def blur(sigma_nm: float) -> Case:
    """Defocus-like Gaussian blur of ``sigma_nm``."""
    from scipy.ndimage import gaussian_filter

    def case(img, truth, px):
        return _to_u8(gaussian_filter(img.astype(np.float32), sigma_nm / px)), truth, px
    return case


CASES: dict[str, Case] = {
    "as is": grey(lambda a: a),
    "magnification x0.35 (1.60 nm/px)": magnification(0.35),
    "magnification x0.5 (1.12 nm/px)": magnification(0.5),
    "magnification x0.7 (0.80 nm/px)": magnification(0.7),
    "magnification x1.5 (0.37 nm/px)": magnification(1.5),
    "contrast x0.5": grey(lambda a: 0.5 * (a - a.mean()) + a.mean()),
    "darker (x0.6)": grey(lambda a: 0.6 * a),
    "gamma 0.6": grey(lambda a: 255 * (a / 255) ** 0.6),
    "gamma 1.6": grey(lambda a: 255 * (a / 255) ** 1.6),
    "gamma 2.2": grey(lambda a: 255 * (a / 255) ** 2.2),
    "blur sigma 1 nm": blur(1.0),
    "JPEG quality 40": jpeg(40),
    "JPEG quality 15": jpeg(15),
    "noise sigma 8": noise(8.0),
    "noise sigma 16": noise(16.0),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cv", type=Path, required=True, help="a cv_accuracy.py output folder")
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--base", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-log", action="store_true", help="skip the LoG baseline")
    ap.add_argument("--recipe", default=SHIPPED_RECIPE.name, choices=sorted(RECIPES),
                    help="the recipe the fold models were trained with")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    samples = load_samples(args.data, args.pixel_size)
    cv = json.loads((args.cv / "cv_result_image.json").read_text())
    folds: list[list[str]] = cv["folds"]
    cfg = ModelConfig(name="cv", **(RECIPES[args.recipe].model_fields_for_config()
                                    | dict(base_channels=args.base, sizing="image")))
    detectors = {}
    for held in folds:
        det = Detector(load_fold_net(args.cv, held, cfg), cfg, {"threshold": 0.5},
                       threads=args.threads)
        detectors.update({h: det for h in held})
    log_params = ({s.name: None for s in samples} if args.no_log
                  else log_params_by_image(samples, folds))
    results: dict = {"cv": str(args.cv), "precision": next(iter(detectors.values())).precision,
                     "cases": {}}
    for name, case in CASES.items():
        gan_pairs, log_pairs = [], []
        for s in samples:
            img, truth, px = case(np.asarray(s.image), s.particles, s.pixel_size_nm)
            thr = cv["thresholds_common"][s.name]
            found = detectors[s.name].predict(img, px, threshold=thr)
            gan_pairs.append((s.name, truth, found, px, None))
            if log_params[s.name] is not None:
                log_pairs.append((s.name, truth, detect_log(img, px, log_params[s.name]),
                                  px, None))
        row = {"gan": _summary(evaluate_many(gan_pairs).to_dict())}
        if log_pairs:
            row["log"] = _summary(evaluate_many(log_pairs).to_dict())
        results["cases"][name] = row
        logging.info("%-34s GAN %s   LoG %s", name, _fmt(row["gan"]),
                     _fmt(row.get("log")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def _summary(report: dict) -> dict:
    pooled = report["pooled"]
    return {"f1_all": pooled["all"]["f1"], "f1_6": pooled.get("6", {}).get("f1"),
            "f1_12": pooled.get("12", {}).get("f1"),
            "loc_nm": pooled["all"].get("loc_error_nm"),
            "per_image": {k: v["all"]["f1"] for k, v in report["images"].items()}}


def _fmt(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['f1_all']:.3f} (6 nm {s['f1_6']:.3f}, 12 nm {s['f1_12']:.3f})"


def table(results: dict) -> str:
    lines = ["| change | GAN F1 (6 / 12 nm) | LoG F1 (6 / 12 nm) |", "|---|---|---|"]
    for name, row in results["cases"].items():
        cells = []
        for method in ("gan", "log"):
            s = row.get(method)
            cells.append("-" if s is None else
                         f"{s['f1_all']:.3f} ({s['f1_6']:.3f} / {s['f1_12']:.3f})")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
