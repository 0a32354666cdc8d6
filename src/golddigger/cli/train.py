"""``golddigger train``: train a model on your own annotated images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from golddigger.cli._common import CliError, expand_images, new_parser
from golddigger.recipes import RECIPES, SHIPPED_RECIPE

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger train images/ -o models/my-lab --pixel-size 0.5587 --max-minutes 30
  golddigger train images/ --labels annotations/ -o my-model --classes 6 12
  golddigger train training_set/ -o my-model --init-model fril-gold-v3 --steps 800
  golddigger train images/ -o my-model --resume          # continue from the checkpoint

annotations per image <stem>.<ext>: <stem>.csv (x,y,diameter_nm), <stem>_RoiSet.zip,
<stem>.zip or <stem>.roi (ImageJ point/oval ROIs; class from group, name or file name), a
folder <stem>/ of such files, or ../labels/<stem>.csv; with --labels DIR the same names in
DIR. The loss is computed only inside <stem>_region.roi/.zip/.tif when present, else
inside the convex hull of the labelled particles grown by --buffer-nm.
"""


def add_parser(sub) -> None:
    p = new_parser(sub, "train", help="train a model on annotated images",
                   description="Train the conditional-GAN detector on images with particle "
                               "annotations (ImageJ ROIs, Results tables or CSVs).",
                   examples=EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="MODEL_DIR",
                   help="the model folder to write")
    p.add_argument("--labels", type=Path, metavar="DIR", help="where the annotations are")
    p.add_argument("--pixel-size", type=float, metavar="NM", help="nm per pixel")
    p.add_argument("--classes", type=float, nargs="+", metavar="NM", default=None,
                   help="particle diameters the model learns (default 6 12 18, or the init "
                        "model's)")
    p.add_argument("--val", nargs="*", default=None, metavar="STEM",
                   help="images (by stem) kept for validation and threshold tuning "
                        "(default: 20%% of the images when there are at least 3)")
    p.add_argument("--no-val", action="store_true", help="train on every image")
    p.add_argument("--recipe", default=SHIPPED_RECIPE.name, choices=sorted(RECIPES),
                   help="the training recipe the other defaults come from (default: the "
                        "shipped model's: 4500 steps, no adversarial term, 8 synthetic "
                        "images; fril-gold-v4 trains in three stages)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default: the recipe's, {SHIPPED_RECIPE.train.steps}); "
                        "given, only the recipe's first stage runs")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--adv-weight", type=float, default=None,
                   help="weight of the adversarial (PatchGAN) term; 0 turns the GAN off "
                        "(default: the recipe's, 0)")
    p.add_argument("--synth", type=int, default=None, metavar="N",
                   help="also train on N synthetic images (default: the recipe's, "
                        f"{SHIPPED_RECIPE.synth_images})")
    p.add_argument("--synth-dark-bands", type=float, default=0.0, metavar="PER_UM2",
                   help="heavy dark platinum bands per um2 in the synthetic images "
                        "(default 0)")
    p.add_argument("--synth-dark-gold", type=float, default=0.0, metavar="FRACTION",
                   help="share of the synthetic gold placed on the darkest replica, where "
                        "real gold is easily missed (default 0)")
    p.add_argument("--lr", type=float, default=None,
                   help="generator learning rate (default: the recipe's, 2e-3; 5e-4 with "
                        "--init-model)")
    p.add_argument("--buffer-nm", type=float, default=None)
    p.add_argument("--init-model", default=None, metavar="NAME_OR_DIR",
                   help="start from this model's weights (fine-tuning)")
    p.add_argument("--base-channels", type=int, default=None)
    p.add_argument("--sizing", choices=("maps", "image"), default=None,
                   help="how the model decides a particle's size class: its class maps, or "
                        "measured from the image (default: image; with --init-model, that "
                        "model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--resume", action="store_true",
                   help="continue from MODEL_DIR.ckpt if it exists")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model folder (and an earlier run's checkpoint)")
    p.set_defaults(func=run)


def train_config(recipe, args, n_synth: int, base=None):
    """The recipe's `TrainConfig` (or ``base``, e.g. its fine-tuning stage) with the
    flags the user gave."""
    from golddigger.recipes import TrainConfig

    base = recipe.train if base is None else base
    given = {"steps": args.steps, "batch_size": args.batch_size, "adv_weight": args.adv_weight,
             "buffer_nm": args.buffer_nm,
             "lr": args.lr if args.lr is not None else (5e-4 if args.init_model else None)}
    return TrainConfig(**(base.model_dump() | {k: v for k, v in given.items() if v is not None}
                          | {"max_minutes": args.max_minutes, "seed": args.seed,
                             "threads": args.threads,
                             "synth_fraction": base.synth_fraction if n_synth else 0.0}))


def run(args) -> int:
    import json

    from golddigger.model.config import ModelConfig
    from golddigger.model.folder import read_model_folder, resolve_model, write_model_folder
    from golddigger.train import train_model
    from golddigger.training_data import load_samples

    out: Path = args.output
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise CliError(f"{out} already exists; use --overwrite to replace it")
    if args.labels is not None and not args.labels.is_dir():
        raise CliError(f"{args.labels}: no such folder")
    if not 0.0 <= args.synth_dark_gold <= 1.0:
        raise CliError(f"--synth-dark-gold is a share between 0 and 1, got "
                       f"{args.synth_dark_gold:g}")
    if args.synth_dark_bands < 0:
        raise CliError(f"--synth-dark-bands cannot be negative, got {args.synth_dark_bands:g}")
    if args.lr is not None and not args.lr > 0:
        raise CliError(f"--lr must be positive, got {args.lr:g}")
    paths = [p for p in expand_images(args.inputs)
             if not p.stem.endswith(("_region", "_overlay"))]
    samples = load_samples(paths, args.labels, args.pixel_size)
    recipe = RECIPES[args.recipe]
    n_synth = recipe.synth_images if args.synth is None else args.synth
    if not samples:
        raise CliError("no annotated images found; see 'golddigger train --help' for where "
                       "annotations are looked for")
    init_state = None
    if args.init_model:
        init_cfg, init_state, _, _ = read_model_folder(resolve_model(args.init_model))
        config = init_cfg.model_copy(update={"name": out.name}
                                     | ({"sizing": args.sizing} if args.sizing else {}))
        if args.classes and sorted(args.classes) != config.classes_nm:
            raise CliError("--classes must match the --init-model's classes "
                           f"{config.classes_nm}")
    else:
        fields = recipe.model_fields_for_config()
        if args.base_channels:
            fields["base_channels"] = args.base_channels
        if args.sizing:
            fields["sizing"] = args.sizing
        if args.classes:
            fields["classes_nm"] = args.classes
        try:
            config = ModelConfig(name=out.name, **fields)
        except ValidationError as err:
            raise CliError(f"--recipe {recipe.name}: {err.errors()[0]['msg']}") from None
    # validation split
    names = [s.name for s in samples]
    if args.no_val:
        val_names: list[str] = []
    elif args.val:
        missing = [v for v in args.val if v not in names]
        if missing:
            raise CliError(f"--val {' '.join(missing)}: not among the training images")
        val_names = list(args.val)
    elif len(samples) >= 3:
        rng = np.random.default_rng(args.seed)
        k = max(1, round(0.2 * len(samples)))
        val_names = [names[i] for i in sorted(rng.choice(len(samples), k, replace=False))]
    else:
        val_names = []
    val = [s for s in samples if s.name in val_names]
    train = [s for s in samples if s.name not in val_names]
    if n_synth:
        from golddigger.training_data import synthetic_set

        train += synthetic_set(n_synth, args.seed + recipe.synth_seed_offset,
                               train[0].pixel_size_nm,
                               recipe.synth_classes_nm or config.classes_nm,
                               args.synth_dark_bands, args.synth_dark_gold)
    tcfg = train_config(recipe, args, n_synth)
    ckpt = out.with_name(out.name + ".ckpt")
    # a recipe's later stages keep their own checkpoints, so --resume finds any stage
    later = recipe.fine_tune if args.steps is None and init_state is None else ()
    stage_ckpts = [out.with_name(f"{out.name}.stage{k}.ckpt")
                   for k in range(2, len(recipe.fine_tune) + 2)]
    for old in (ckpt, *stage_ckpts):
        if old.exists() and not args.resume:
            if not args.overwrite:
                raise CliError(f"{old} is the checkpoint of an earlier training run; use "
                               "--resume to continue it, or --overwrite to start over (it "
                               "is then deleted)")
            logger.warning("%s: deleting the earlier run's checkpoint (--overwrite)", old)
            old.unlink()
    if not args.quiet:
        print(f"training on {len(train)} image(s), validating on {len(val)}: "
              f"{', '.join(val_names) or '-'}")
    trainer_init = None
    if init_state is not None:
        def trainer_init(trainer):
            trainer.G.load_state_dict(init_state)
    trainer, thresholds, metrics = train_model(train, config, tcfg, checkpoint=ckpt,
                                               progress=not args.quiet, val=val,
                                               init=trainer_init)
    earlier = []
    for k, stage in enumerate(later):
        # the recipe's next stage, from the weights of the stage before (each stage's
        # checkpoint is kept until the end: a resumed run skips the stages done)
        weights = {key: v.detach().clone() for key, v in trainer.G.state_dict().items()}
        earlier.append({"train_config": tcfg.model_dump(),
                        "train_minutes": metrics["train_minutes"]})
        tcfg = train_config(recipe, args, n_synth, base=stage)
        if not args.quiet:
            print(f"stage {k + 2} of {len(later) + 1}: {tcfg.steps} steps at lr {tcfg.lr:g}")
        trainer, thresholds, metrics = train_model(
            train, config, tcfg, checkpoint=stage_ckpts[k], progress=not args.quiet,
            val=val, init=lambda t, w=weights: t.G.load_state_dict(w))
    if earlier:
        metrics["earlier_stages"] = earlier
    if args.init_model:
        metrics["init_model"] = str(args.init_model)
    write_model_folder(out, config, trainer.G.state_dict(), thresholds, metrics)
    for done in (ckpt, *stage_ckpts):
        done.unlink(missing_ok=True)
    if not args.quiet:
        v = metrics.get("validation")
        if v:
            print(f"validation (thresholds {v['thresholds']}): F1 all "
                  f"{v['scores']['all']['f1']:.3f}")
            print(json.dumps({k: round(x["f1"], 3) for k, x in v["scores"].items()}))
        print(f"model written to {out}/ ({trainer.step} steps, "
              f"{metrics['train_minutes']:.1f} min)")
    return 0
