"""Train the shipped model on every labelled image of a data folder.

How fril-gold-v3 was made (the cross-validation and the model used the same recipe):

    python benchmarks/cv_accuracy.py --data ../shared/data/mpfi-fril --pixel-size 0.5587 \
        --out runs/cv_noadv_4500 --k 3 --steps 4500 --adv-weight 0 --synth 8 --threads 2
    python benchmarks/cv_accuracy.py ... --summarise-only --baseline --sizing image
    python benchmarks/train_shipped_model.py --data ../shared/data/mpfi-fril \
        --pixel-size 0.5587 --out runs/fril-gold-v3 --name fril-gold-v3 --steps 4500 \
        --synth 8 --threads 2 --adv-weight 0
    python benchmarks/finalise_shipped_model.py --model runs/fril-gold-v3 \
        --cv benchmarks/results/cv3_noadv_4500steps_image.json

fril-gold-v2 was the same with ``--adv-weight 0.05`` (runs/cv_v2,
cv3_adv_4500steps_image.json).

The detection threshold comes from the cross-validation run (`cv_accuracy.py`: the best
pooled class-agnostic F1 over all held-out predictions), since no image is left to tune it on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from golddigger.model.config import ModelConfig
from golddigger.model.folder import read_model_folder, write_model_folder
from golddigger.recipes import add_recipe_arguments, apply_recipe
from golddigger.train import TrainConfig, train_model
from golddigger.training_data import load_labelled_folder, synthetic_set


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--base", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threshold-from", type=Path, default=None)
    ap.add_argument("--name", default="fril-gold-v3")
    ap.add_argument("--pixel-size", type=float, default=None)
    ap.add_argument("--sizing", choices=("maps", "image"), default="image")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dark-bands", type=float, default=0.0)
    ap.add_argument("--dark-gold", type=float, default=0.0)
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this model folder's weights (fine-tuning)")
    add_recipe_arguments(ap)
    args = ap.parse_args(argv)
    recipe = apply_recipe(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    samples = load_labelled_folder(args.data, args.pixel_size)
    synth = synthetic_set(args.synth, recipe.synth_seed_offset + args.seed,
                          samples[0].pixel_size_nm, recipe.synth_classes_nm, args.dark_bands,
                          args.dark_gold)
    cfg = ModelConfig(name=args.name, **(recipe.model_fields_for_config()
                                         | dict(base_channels=args.base, sizing=args.sizing)))
    tcfg = TrainConfig(**(recipe.train.model_dump() | dict(
        steps=args.steps, adv_weight=args.adv_weight, seed=args.seed,
        synth_fraction=args.synth_fraction if args.synth else 0.0, lr=args.lr,
        n_scales=args.n_scales, scale_range=args.scale_range)))
    ckpt = args.out.with_suffix(".ckpt")
    init = None
    if args.init is not None:
        start = read_model_folder(args.init)[1]

        def init(trainer):
            trainer.G.load_state_dict(start)
    trainer, thresholds, metrics = train_model(samples + synth, cfg, tcfg, checkpoint=ckpt,
                                               init=init)
    if args.init is not None:
        # a recipe's later stage: the stages that made the starting weights go along
        before = read_model_folder(args.init)[3]
        metrics["fine_tuned_from"] = args.init.name
        metrics["earlier_stages"] = before.get("earlier_stages", []) + [
            {"train_config": before["train_config"],
             "train_minutes": before.get("train_minutes")}]
    if args.synth:
        metrics["synthetic_dark"] = {"bands_per_um2": args.dark_bands,
                                     "gold_fraction": args.dark_gold}
    if args.threshold_from:
        cv = json.loads(args.threshold_from.read_text())
        thresholds = {"threshold": cv["threshold_all_folds"],
                      "source": f"cross-validation ({args.threshold_from.name})"}
        metrics["cross_validation"] = {"gan": cv["gan"]["pooled"], "log": cv.get("log", {})
                                       .get("pooled")}
    metrics["data"] = str(args.data.name)
    write_model_folder(args.out, cfg, trainer.G.state_dict(), thresholds, metrics)
    logging.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
