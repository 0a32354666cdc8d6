"""Training recipes: `TrainConfig` (how to train, stored in a model's metrics.json) and
named `Recipe` s, among them the shipped model's, which ``golddigger train`` and the
benchmarks use by default. Pydantic only (no torch), so the CLI can read them cheaply.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RECIPES", "Recipe", "SHIPPED_RECIPE", "TrainConfig"]


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
    buffer_nm: float = Field(30.0, ge=0)
    outside: str = Field("candidates", pattern="^(ignore|candidates)$",
                         description="outside the annotated region: 'ignore' it, or use it "
                                     "as negatives except around blob-like candidates")
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = Field(250, ge=1)


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


#: How the shipped model fril-gold-v3 was trained (``benchmarks/train_shipped_model.py``,
#: its metrics.json ``train_config``): 4500 steps without the adversarial term, 8
#: synthetic images making a quarter of the batches. The default of ``golddigger train``.
SHIPPED_RECIPE = Recipe(name="fril-gold-v3",
                        train=TrainConfig(steps=4500, adv_weight=0.0, synth_fraction=0.25),
                        synth_images=8)

#: Recipes by name.
RECIPES: dict[str, Recipe] = {SHIPPED_RECIPE.name: SHIPPED_RECIPE}
