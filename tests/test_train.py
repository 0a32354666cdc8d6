"""A tiny training run on synthetic images learns; checkpoints resume; the CLI trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import disc_image

from golddigger.evaluate import evaluate_many
from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.train import Sample, TrainConfig, Trainer, prepare_pair, train_model

PX = 1.2  # the model's own pixel size: no resampling, fastest


def _disc_samples(n, seed):
    """Hand-made micrographs: dark discs of 6 nm (5 px) and 12 nm (10 px) on noisy grey,
    plus decoy shadows (elongated dark streaks)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pts, ds = [], []
        while len(pts) < 10:
            x, y = rng.uniform(15, 145, 2)
            if all(np.hypot(x - a, y - b) > 14 for a, b in pts):
                pts.append((x, y))
                ds.append(6.0 if rng.random() < 0.6 else 12.0)
        img = np.full((160, 160), 0.0)
        for (x, y), d in zip(pts, ds, strict=True):
            img += disc_image((160, 160), [(x, y)], radius=d / PX / 2, background=0,
                              depth=-110, noise=0, seed=i).astype(float)
        img = 190 - img + rng.normal(0, 8, img.shape)
        from golddigger.particles import ParticleTable

        p = ParticleTable([q[0] for q in pts], [q[1] for q in pts], ds)
        out.append(Sample(f"disc{seed}-{i}", np.clip(img, 0, 255).astype(np.uint8), PX, p))
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(name="tiny", classes_nm=[6, 12], base_channels=6, tile_size=256)
    tcfg = TrainConfig(steps=150, batch_size=6, patch_size=64, lr=3e-3, seed=0, n_scales=1,
                       checkpoint_every=50)
    train = _disc_samples(4, seed=1)
    val = _disc_samples(2, seed=2)
    ckpt = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer, thresholds, metrics = train_model(train, cfg, tcfg, checkpoint=ckpt,
                                               progress=False, val=val)
    return cfg, trainer, thresholds, metrics, val, ckpt


def test_loss_falls(tiny_run):
    _, trainer, _, _, _, _ = tiny_run
    h = trainer.history
    assert h[0]["rec"] > 1.5 * h[-1]["rec"]


def test_learns_above_floor(tiny_run):
    cfg, trainer, thresholds, metrics, val, _ = tiny_run
    det = Detector(trainer.G, cfg, thresholds)
    preds = [det.predict(s.image, s.pixel_size_nm) for s in val]
    pooled = evaluate_many([(s.name, s.particles, p, PX) for s, p in zip(val, preds,
                                                                         strict=True)]
                           ).to_dict()["pooled"]
    assert pooled["all"]["f1"] >= 0.8, pooled
    assert metrics["validation"]["scores"]["all"]["f1"] == pytest.approx(pooled["all"]["f1"])
    assert 0.1 <= thresholds["threshold"] <= 0.9


def test_checkpoint_resume(tiny_run, tmp_path):
    cfg, trainer, _, _, _, ckpt = tiny_run
    assert ckpt.is_file()
    t2 = Trainer(cfg, TrainConfig(steps=150, batch_size=6, patch_size=64, n_scales=1), ckpt)
    t2.load_checkpoint(ckpt)
    assert t2.step == trainer.step == 150
    for k, v in trainer.G.state_dict().items():
        assert torch.equal(t2.G.state_dict()[k], v)


def test_loss_region_follows_hull():
    cfg = ModelConfig(classes_nm=[6, 12])
    s = _disc_samples(1, seed=5)[0]
    pair = prepare_pair(s.name, s.image, PX, s.particles, cfg, buffer_nm=6.0)
    m = pair.masks[0]
    assert m.shape == s.image.shape
    # every particle inside, the image corners outside (hull + 5 px)
    assert m[np.rint(s.particles.y).astype(int), np.rint(s.particles.x).astype(int)].all()
    assert not m[0, 0] and not m[-1, -1]


def test_unknown_class_is_an_error():
    from golddigger.errors import GoldDiggerError
    from golddigger.particles import ParticleTable

    cfg = ModelConfig(classes_nm=[6, 12])
    img = np.zeros((64, 64), np.uint8)
    with pytest.raises(GoldDiggerError, match="not among the model's classes"):
        prepare_pair("x", img, PX, ParticleTable([10], [10], [30.0]), cfg)
