"""The training-recipe flags shared by the training benchmarks: ``--recipe`` and the
values that may override it (each defaults to the recipe's)."""

from __future__ import annotations

import argparse

from golddigger.recipes import RECIPES, SHIPPED_RECIPE, Recipe


def add_recipe_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--recipe", default=SHIPPED_RECIPE.name, choices=sorted(RECIPES),
                    help="the recipe whose model kind, scales and synthetic gold sizes "
                         "are used (the flags below override its values)")
    ap.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--adv-weight", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--synth", type=int, default=None,
                    help="synthetic images added to the real ones (default: the recipe's)")
    ap.add_argument("--synth-fraction", type=float, default=None,
                    help="default: the recipe's")
    ap.add_argument("--n-scales", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--scale-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="magnifications of the real images (default: the recipe's)")


def apply_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe named by ``args.recipe``; flags left unset take its values (in place)."""
    recipe = RECIPES[args.recipe]
    for flag, value in (("steps", recipe.train.steps), ("adv_weight", recipe.train.adv_weight),
                        ("synth", recipe.synth_images),
                        ("synth_fraction", recipe.train.synth_fraction),
                        ("n_scales", recipe.train.n_scales),
                        ("scale_range", recipe.train.scale_range)):
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    return recipe
