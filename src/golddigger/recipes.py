"""Training recipes: `TrainConfig` (how to train, stored in a model's metrics.json) and
named `Recipe` s, among them the shipped model's, which ``golddigger train`` and the
benchmarks use by default. Pydantic only (no torch), so the CLI can read them cheaply.
"""

from __future__ import annotations

import argparse

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["GOLD_ANY_SIZE_RECIPE", "RECIPES", "Recipe", "SHIPPED_RECIPE", "TrainConfig",
           "add_recipe_arguments", "apply_recipe"]


class TrainConfig(BaseModel):
    """How to train (stored in the model's metrics.json)."""

    model_config = ConfigDict(extra="forbid")

    patch_size: int = Field(128, ge=32, description="model pixels; multiple of 16")
    batch_size: int = Field(8, ge=1)
    steps: int = Field(3000, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    lr: float = Field(2e-3, gt=0)
    lr_d: float = Field(1e-3, gt=0)
    adv_weight: float = Field(0.05, ge=0, description="0 disables the discriminator")
    pos_weight: float = Field(30.0, ge=0, description="extra weight on target pixels")
    particle_fraction: float = Field(0.7, ge=0, le=1,
                                     description="patches centred near a labelled particle")
    class_balance: float = Field(0.5, ge=0, le=1,
                                 description="particle-centred patches pick particle i with "
                                             "weight n_class(i)**-class_balance: 0 = as "
                                             "labelled, 1 = every class equally often")
    synth_fraction: float = Field(0.0, ge=0, le=1)
    scale_jitter: float = Field(0.12, ge=0, lt=0.5)
    n_scales: int = Field(3, ge=1)
    scale_range: tuple[float, float] | None = Field(
        None, description="magnify each real image by n_scales factors spread evenly (in "
                          "log) over this range, instead of 1 +- scale_jitter: gold of one "
                          "labelled size then teaches every size in between")
    buffer_nm: float = Field(30.0, ge=0)
    outside: str = Field("candidates", pattern="^(ignore|candidates)$",
                         description="outside the annotated region: 'ignore' it, or use it "
                                     "as negatives except around blob-like candidates")
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = Field(250, ge=1)

    @field_validator("scale_range")
    @classmethod
    def _scale_range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0.2 <= v[0] <= v[1] <= 5.0:
            raise ValueError(f"scale_range must be (low, high) with 0.2 <= low <= high <= 5, "
                             f"got {v}")
        return v

    def scales(self) -> list[float] | None:
        """The magnifications of each real image's variants (None: ``1 +- scale_jitter``,
        see `golddigger.train.prepare_pair`)."""
        if self.scale_range is None:
            return None
        lo, hi = self.scale_range
        return [float(v) for v in np.geomspace(lo, hi, self.n_scales)]


class Recipe(BaseModel):
    """A named way to train a model: the `TrainConfig`, the synthetic images added, and
    the network's width and sizing."""

    model_config = ConfigDict(extra="forbid")

    name: str
    train: TrainConfig
    synth_images: int = Field(0, ge=0, description="synthetic images added to the real ones")
    synth_seed_offset: int = Field(1000, description="their seed is the run's seed + this")
    base_channels: int = Field(12, ge=2, le=64)
    sizing: str = Field("image", pattern="^(maps|image)$")
    output: str = Field("classes", pattern="^(classes|gold)$",
                        description="one map per class, or one gold map (ModelConfig.output)")
    gold_range_nm: tuple[float, float] | None = Field(
        None, description="for output 'gold': the gold diameters it learns to find")
    synth_classes_nm: tuple[float, ...] | None = Field(
        None, description="gold diameters drawn in the synthetic images (default: the "
                          "model's classes)")
    fine_tune: tuple[TrainConfig, ...] = Field(
        (), description="later stages, each started from the weights of the stage before "
                        "(e.g. more steps at lower learning rates)")

    @field_validator("fine_tune", mode="before")
    @classmethod
    def _one_or_more_stages(cls, v):
        if v is None:
            return ()
        if isinstance(v, TrainConfig | dict):
            return (v,)
        return v

    @property
    def stages(self) -> tuple[TrainConfig, ...]:
        """Every stage's `TrainConfig`, the first one first."""
        return (self.train, *self.fine_tune)

    def model_fields_for_config(self) -> dict:
        """The `golddigger.model.config.ModelConfig` fields this recipe sets."""
        out: dict = {"base_channels": self.base_channels, "sizing": self.sizing,
                     "output": self.output}
        if self.gold_range_nm is not None:
            out["gold_range_nm"] = list(self.gold_range_nm)
        return out


#: How the shipped model fril-gold-v3 was trained (``benchmarks/train_shipped_model.py``,
#: its metrics.json ``train_config``): 4500 steps without the adversarial term, 8
#: synthetic images making a quarter of the batches. The default of ``golddigger train``.
SHIPPED_RECIPE = Recipe(name="fril-gold-v3",
                        train=TrainConfig(steps=4500, adv_weight=0.0, synth_fraction=0.25),
                        synth_images=8)

#: A model for gold of any size (issue 13): one gold map, sizes measured on the image.
#: Every real image is also seen magnified 0.7-1.75x (its 6 nm gold then looks like 4-11
#: nm gold, its 12 nm gold like 8-21 nm), and the synthetic images draw gold of nine
#: diameters from 4.5 to 29 nm. Three stages: 4500 steps at lr 2e-3, then 1500 at 5e-4
#: and 1500 at 2.5e-4, each from the weights of the one before (cross-validated F1 0.933,
#: 0.954, 0.966 after each; README).
GOLD_ANY_SIZE_RECIPE = Recipe(
    name="fril-gold-v4",
    train=TrainConfig(steps=4500, adv_weight=0.0, synth_fraction=0.3, n_scales=7,
                      scale_range=(0.7, 1.75)),
    fine_tune=tuple(TrainConfig(steps=1500, lr=lr, adv_weight=0.0, synth_fraction=0.3,
                                n_scales=7, scale_range=(0.7, 1.75)) for lr in (5e-4, 2.5e-4)),
    synth_images=10, output="gold", gold_range_nm=(4.0, 30.0),
    synth_classes_nm=(4.5, 7.0, 9.0, 11.0, 14.0, 17.0, 21.0, 25.0, 29.0))

#: Recipes by name.
RECIPES: dict[str, Recipe] = {r.name: r for r in (SHIPPED_RECIPE, GOLD_ANY_SIZE_RECIPE)}


# ---------------------------------------------------------------- for training scripts
def add_recipe_arguments(ap: argparse.ArgumentParser) -> None:
    """``--recipe`` and the flags that override its values (each defaults to the
    recipe's; `apply_recipe` fills them in)."""
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
