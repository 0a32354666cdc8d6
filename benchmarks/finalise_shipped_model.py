"""Store cross-validated thresholds and figures in a trained model folder.

    python benchmarks/finalise_shipped_model.py --model models/fril-gold-v3 \
        --cv benchmarks/results/cv3_noadv_4500steps_image.json

The threshold is the one with the best pooled class-agnostic F1 over *all* folds'
held-out predictions (``threshold_all_folds``) made by models of the same recipe; the
model itself was trained on every image, so no threshold is chosen on its own training
images. The metrics file gains the cross-validated scores (per image and pooled, with the
LoG baseline of the same run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from golddigger.model.folder import read_model_folder, update_model_folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--cv", type=Path, required=True, help="cv_accuracy.py's result JSON")
    args = ap.parse_args(argv)
    cv = json.loads(args.cv.read_text())
    config, _, _, metrics = read_model_folder(args.model)
    if cv["settings"].get("sizing", "maps") != config.sizing:
        raise SystemExit(f"{args.cv} scored sizing={cv['settings'].get('sizing')!r} but the "
                         f"model uses {config.sizing!r}")
    thresholds = {"threshold": float(cv["threshold_all_folds"]),
                  "source": f"cross-validation: best pooled class-agnostic F1 over all "
                            f"folds' held-out predictions ({args.cv.name})"}

    def brief(report: dict) -> dict:
        return {"pooled": report["pooled"],
                "images_f1": {n: v["all"]["f1"] for n, v in report["images"].items()}}

    s = cv["settings"]
    metrics["cross_validation"] = {
        "protocol": f"{s['k']}-fold by image on the {len(cv['thresholds_common'])} "
                    f"development images; same recipe ({s['steps']} steps per fold, "
                    f"adversarial weight {s['adv_weight']}, {s['synth']} synthetic images, "
                    f"sizing {s['sizing']}); threshold per fold chosen on the other folds",
        "gan": brief(cv["gan_common_threshold"]),
        "log_baseline": brief(cv["log"]) if "log" in cv else None,
        "file": args.cv.name,
    }
    update_model_folder(args.model, thresholds=thresholds, metrics=metrics)
    print(f"{args.model}: threshold {thresholds['threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
