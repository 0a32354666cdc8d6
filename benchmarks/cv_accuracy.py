"""Leave-one-image-out accuracy of the GAN detector on a labelled set, next to a tuned
LoG baseline measured in the same run.

    python benchmarks/cv_accuracy.py --data ../shared/data/mpfi-fril --out runs/cv

The data folder holds ``images/<stem>.{jpg,tif}`` and ``labels/<stem>.csv``
(``x,y,diameter_nm``). For each held-out image a model is trained on the others; its
predictions are kept at a low threshold. The threshold used to score image k is the one
with the best pooled class-agnostic F1 on the *other* images' held-out predictions, so no
image's labels choose its own threshold. Folds already done (predictions on disk) are
skipped, so a run can be resumed; a fold whose model is on disk but whose predictions
are not is predicted again without training (to try ``--tta`` or ``--edge-pad``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from golddigger.cv import fold_model_file, load_fold_net, log_params_by_image, measured
from golddigger.evaluate import evaluate_many
from golddigger.model.config import ModelConfig
from golddigger.model.detector import PRECISIONS, TTA_CHOICES, Detector
from golddigger.particles import ParticleTable
from golddigger.recipes import add_recipe_arguments, apply_recipe
from golddigger.train import (
    THRESHOLD_GRID,
    TrainConfig,
    filter_by_class_thresholds,
    train_model,
    tune_class_thresholds,
    tune_threshold,
)
from golddigger.training_data import load_labelled_folder as load_samples
from golddigger.training_data import synthetic_set as synth_samples

GRID = THRESHOLD_GRID


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--base", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, default=0,
                    help="k-fold by image (images dealt round-robin, by name); default: "
                         "leave one image out")
    ap.add_argument("--folds", type=str, default=None,
                    help="train only these folds (comma-separated indices), e.g. to split "
                         "the work over processes; scoring uses every fold on disk")
    ap.add_argument("--sizing", choices=("maps", "image"), default="image",
                    help="size class from the strongest map or measured from the image")
    ap.add_argument("--class-balance", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dark-bands", type=float, default=0.0,
                    help="synthetic heavy platinum bands per um2 (SynthConfig)")
    ap.add_argument("--dark-gold", type=float, default=0.0,
                    help="share of synthetic gold on the darkest replica (SynthConfig)")
    ap.add_argument("--init-dir", type=Path, default=None,
                    help="start each fold from model_<fold>.pt in this folder (fine-tuning)")
    ap.add_argument("--tta", type=int, default=1, choices=TTA_CHOICES,
                    help="test-time augmentation passes when predicting")
    ap.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="network arithmetic when predicting")
    ap.add_argument("--edge-pad", type=int, default=None,
                    help="mirrored context at image edges, model px (default: the config's)")
    ap.add_argument("--baseline", action="store_true", help="also tune and score LoG")
    ap.add_argument("--summarise-only", action="store_true",
                    help="train nothing: score the folds whose predictions exist")
    add_recipe_arguments(ap)
    args = ap.parse_args(argv)
    recipe = apply_recipe(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    samples = load_samples(args.data, args.pixel_size)
    names = [s.name for s in samples]
    k = args.k if args.k and args.k < len(names) else len(names)
    folds = [names[i::k] for i in range(k)]
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = ModelConfig(name="cv", **(recipe.model_fields_for_config()
                                    | dict(base_channels=args.base)))
    if args.edge_pad is not None:
        cfg = cfg.model_copy(update={"edge_pad_px": args.edge_pad})
    tcfg = TrainConfig(**(recipe.train.model_dump() | dict(
        steps=args.steps, adv_weight=args.adv_weight, seed=args.seed,
        synth_fraction=args.synth_fraction if args.synth else 0.0,
        class_balance=args.class_balance, lr=args.lr, n_scales=args.n_scales,
        scale_range=args.scale_range)))
    synth = synth_samples(args.synth, recipe.synth_seed_offset + args.seed,
                          samples[0].pixel_size_nm, recipe.synth_classes_nm,
                          dark_bands=args.dark_bands, dark_gold=args.dark_gold)
    times = {}
    chosen = (set(range(len(folds))) if args.folds is None
              else {int(i) for i in args.folds.split(",")})
    for index, held in enumerate(folds):
        if index not in chosen:
            continue
        pred_files = [args.out / f"pred_{h}.csv" for h in held]
        if all(f.exists() for f in pred_files) or args.summarise_only:
            continue
        train = [s for s in samples if s.name not in held] + synth
        t0 = time.monotonic()
        model_file = fold_model_file(args.out, held)
        if model_file.exists():  # trained before: predict again (e.g. with --tta)
            net = load_fold_net(args.out, held, cfg)
        else:
            init = None
            if args.init_dir is not None:
                start = load_fold_net(args.init_dir, held, cfg).state_dict()

                def init(trainer, start=start):
                    trainer.G.load_state_dict(start)
            net = train_model(train, cfg, tcfg, progress=False, init=init)[0].G
            torch.save(net.state_dict(), model_file)
        det = Detector(net, cfg, {"threshold": 0.5}, precision=args.precision)
        for h, f in zip(held, pred_files, strict=True):
            test = next(s for s in samples if s.name == h)
            det.predict(test.image, test.pixel_size_nm, threshold=0.05,
                        tta=args.tta).to_csv(f)
        fold = "+".join(held)
        times[fold] = round((time.monotonic() - t0) / 60, 2)
        logging.info("fold %s done in %.1f min", fold, times[fold])
    done = [s for s in samples if (args.out / f"pred_{s.name}.csv").exists()]
    preds = [ParticleTable.from_csv(args.out / f"pred_{s.name}.csv") for s in done]
    if args.sizing == "image" and cfg.output != "gold":
        # the stored predictions carry the class of the strongest map and the map's centre
        preds = [measured(s, p, cfg.classes_nm) for s, p in zip(done, preds, strict=True)]
    # thresholds for fold k are chosen on the other folds' held-out predictions only
    classes = [float(c) for c in cfg.classes_nm]

    def pooled_f1(idx, thr: dict[float, float]) -> float:
        pairs = [(done[j].name, done[j].particles,
                  filter_by_class_thresholds(preds[j], thr), done[j].pixel_size_nm, None)
                 for j in idx]
        return evaluate_many(pairs).to_dict()["pooled"]["all"]["f1"]

    common, per_class = {}, {}
    for i, s in enumerate(done):
        fold = next(f for f in folds if s.name in f)
        others = [j for j in range(len(done)) if done[j].name not in fold] or [i]
        common[s.name] = tune_threshold(
            lambda t, o=others: pooled_f1(o, {c: t for c in classes}), GRID)[0]
        per_class[s.name] = tune_class_thresholds(lambda thr, o=others: pooled_f1(o, thr),
                                                  classes, GRID)[0]

    def report(thr_by_image):
        return evaluate_many([(s.name, s.particles,
                               filter_by_class_thresholds(p, thr_by_image[s.name]),
                               s.pixel_size_nm, None)
                              for s, p in zip(done, preds, strict=True)]).to_dict()

    gan_common = report({n: {c: t for c in classes} for n, t in common.items()})
    gan = report(per_class)
    everything = list(range(len(done)))
    final_common = tune_threshold(lambda t: pooled_f1(everything, {c: t for c in classes}),
                                  GRID)[0]
    final_per_class = tune_class_thresholds(lambda thr: pooled_f1(everything, thr), classes,
                                            GRID)[0]
    result = {"settings": vars(args) | {"data": str(args.data), "out": str(args.out)},
              "folds": folds, "fold_minutes": times,
              "thresholds_common": common,
              "thresholds_per_class": {n: {f"{c:g}": t for c, t in thr.items()}
                                       for n, thr in per_class.items()},
              "threshold_all_folds": final_common,
              "per_class_all_folds": {f"{c:g}": t for c, t in final_per_class.items()},
              "gan": gan, "gan_common_threshold": gan_common}
    if args.baseline:
        from golddigger.baseline import detect_log

        params = log_params_by_image(done, folds)
        log_preds = [detect_log(s.image, s.pixel_size_nm, params[s.name]) for s in done]
        result["log"] = evaluate_many([(s.name, s.particles, p, s.pixel_size_nm, None)
                                       for s, p in zip(done, log_preds, strict=True)]).to_dict()
    (args.out / f"cv_result_{args.sizing}.json").write_text(
        json.dumps(result, indent=2, default=str))
    print(summary_table(result))
    return 0


def summary_table(result: dict) -> str:
    lines = [f"{'method':20} {'image':8} {'F1 6':>6} {'F1 12':>6} {'F1 all':>6} {'loc nm':>6}"]
    for method in ("gan", "gan_common_threshold", "log"):
        if method not in result:
            continue
        rows = list(result[method]["images"].items()) + [("pooled", result[method]["pooled"])]
        for name, sc in rows:
            def f(k, sc=sc):
                v = sc.get(k, {}).get("f1")
                return f"{v:6.3f}" if v is not None else "     -"
            loc = sc.get("all", {}).get("loc_error_nm")
            lines.append(f"{method:20} {name:8} {f('6')} {f('12')} {f('all')} "
                         f"{loc if loc is None else round(loc, 2)!s:>6}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
