"""Cross-validation helpers shared by the benchmarks (fold models, per-fold LoG tuning,
stored predictions measured on the image)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from golddigger.model.config import ModelConfig
from golddigger.particles import ParticleTable
from golddigger.train import Sample

__all__ = ["fold_model_file", "load_fold_net", "log_params_by_image", "measured"]


def fold_model_file(folder: Path, held: Sequence[str]) -> Path:
    """Where a CV run keeps the generator trained without the images ``held``."""
    return Path(folder) / f"model_{'+'.join(held)}.pt"


def load_fold_net(folder: Path, held: Sequence[str], cfg: ModelConfig):
    """The generator trained without the images ``held`` (a fold of a CV run)."""
    import torch

    from golddigger.model.networks import UNetGenerator

    net = UNetGenerator(cfg.n_maps, cfg.base_channels, cfg.depth)
    net.load_state_dict(torch.load(fold_model_file(folder, held), weights_only=True))
    return net


def log_params_by_image(samples: Sequence[Sample], folds: Sequence[Sequence[str]]) -> dict:
    """LoG parameters for every image, tuned on the other folds' images only."""
    from golddigger.baseline import tune_log

    out = {}
    for held in folds:
        train = [s for s in samples if s.name not in held]
        if not train or not any(s.name in held for s in samples):
            continue
        params = tune_log([s.image for s in train], [s.particles for s in train],
                          train[0].pixel_size_nm).params
        out.update({h: params for h in held})
    return out


def measured(sample: Sample, table: ParticleTable, classes) -> ParticleTable:
    """Stored predictions with class and centre measured on the image, as
    ``Detector.predict(sizing="image")`` does (thresholds then apply to that class)."""
    from golddigger.model.sizing import measure_particles

    d, x, y = measure_particles(sample.image, table.x, table.y, classes, sample.pixel_size_nm)
    return ParticleTable(x, y, d, table.score, table.slice)
