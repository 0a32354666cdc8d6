"""A gold-map model (``ModelConfig.output == "gold"``): one map for gold of any size, each
detection's size measured on the image and binned into the classes asked for; trained
with each real image seen at several magnifications, normalised by its specimen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tests.conftest import disc_image

from golddigger.model.config import ModelConfig
from golddigger.model.detector import Detector
from golddigger.model.networks import UNetGenerator
from golddigger.particles import ParticleTable
from golddigger.recipes import TrainConfig
from golddigger.train import _PatchSampler, prepare_pair

PX = 1.2


def gold_config(**kw) -> ModelConfig:
    return ModelConfig(name="g", output="gold", gold_range_nm=[4, 30], sizing="image",
                       base_channels=4, tile_size=128, **kw)


def test_gold_config_needs_its_range_and_image_sizing():
    c = gold_config()
    assert c.n_maps == 1 and c.map_diameters_nm == [4.0]
    assert ModelConfig().n_maps == 3
    with pytest.raises(ValidationError, match="gold_range_nm"):
        ModelConfig(output="gold", sizing="image")
    with pytest.raises(ValidationError, match="sizing"):
        ModelConfig(output="gold", gold_range_nm=[4, 30], sizing="maps")
    with pytest.raises(ValidationError, match="smallest, largest"):
        ModelConfig(output="gold", gold_range_nm=[30, 4], sizing="image")


def _gold_detector() -> Detector:
    torch.manual_seed(0)
    return Detector(UNetGenerator(1, 4, 4).eval(), gold_config(), {"threshold": 0.5})


def test_any_classes_on_a_gold_model():
    det = _gold_detector()
    assert det.report_classes(None) == [6.0, 12.0, 18.0]  # its default binning
    assert det.report_classes([10, 20]) == [10.0, 20.0]
    assert det.report_classes(["5-8"]) == [6.5]
    # the model's own class values are binned too (never "known classes" of a map)
    assert det._free_classes([6]) is not None
    assert det.validated_ranges()["gold_nm"] == (4.0, 30.0)
    assert det.check_limits(1.0, [10, 20]) == []
    assert any("40 nm gold is outside" in m for m in det.check_limits(1.0, [40]))


def test_gold_model_reports_measured_sizes_binned():
    """Whatever the (random) network finds, every reported particle carries its measured
    diameter and a class that contains it, for default and asked classes alike."""
    det = _gold_detector()
    img = disc_image((160, 160), [(40, 40), (110, 60), (70, 120)], radius=6, background=180,
                     depth=-110, noise=4, seed=1)
    for classes in (None, [10, 20], ["8-14"]):
        got = det.predict(img, PX, threshold=0.05, classes=classes)
        assert len(got) > 5  # a random network at a low threshold: many peaks
        assert np.isfinite(got.measured_nm).all()
        from golddigger.model.classes import parse_classes

        bins = parse_classes(classes if classes is not None else det.classes)
        for d, m in zip(got.diameter_nm, got.measured_nm, strict=True):
            c = next(c for c in bins if c.value == d)
            assert c.lo <= m <= c.hi


def test_gold_pairs_take_any_size_and_sigma_follows_it():
    cfg = gold_config()
    img = disc_image((200, 200), [(50, 50), (140, 140)], radius=10, background=180,
                     depth=-110, noise=4, seed=2)
    particles = ParticleTable([50.0, 140.0], [50.0, 140.0], [25.0, 6.0])
    # a class model refuses 25 nm labels; a gold model learns them
    from golddigger.errors import GoldDiggerError

    with pytest.raises(GoldDiggerError):
        prepare_pair("x", img, PX, particles, ModelConfig(classes_nm=[6, 12]))
    pair = prepare_pair("x", img, PX, particles, cfg, scales=[0.7, 1.75], jpeg_variant=False)
    assert pair.scales == [0.7, 1.75]
    assert [v.shape for v in pair.variants] == [(140, 140), (350, 350)]
    np.testing.assert_allclose(pair.xy[1][0], [(50 + 0.5) * 1.75 - 0.5] * 2)
    # the target of each particle: a Gaussian of 0.4 x its radius as seen in the variant
    tcfg = TrainConfig(patch_size=64, batch_size=1, particle_fraction=1.0)
    sampler = _PatchSampler([pair], cfg, tcfg, np.random.default_rng(0))

    def spread(v, i):
        x, y = pair.xy[v][i]
        from golddigger.model.targets import render_targets

        sig = 0.4 * 0.5 * pair.diameter_nm[i] * pair.scales[v] / PX
        t = render_targets((64, 64), np.array([32.0]), np.array([32.0]), np.array([0]), 1,
                           np.array([sig]))[0]
        return float((t > 0.5).sum())

    assert spread(1, 0) > spread(0, 0) > spread(1, 1)
    _, tgt, _ = sampler.sample()
    assert tgt.shape == (1, 64, 64) and tgt.max() == pytest.approx(1.0, abs=0.05)


def test_training_normalises_by_the_specimen():
    """Black padding does not change what the network is trained on (it did when the
    median and spread were those of the whole plane)."""
    cfg = gold_config()
    rng = np.random.default_rng(3)
    img = np.clip(rng.normal(150, 12, (160, 160)), 1, 255).astype(np.uint8)
    padded = np.zeros((400, 400), np.uint8)
    padded[100:260, 100:260] = img
    p = ParticleTable([80.0], [80.0], [6.0])
    a = prepare_pair("a", img, PX, p, cfg, jpeg_variant=False)
    b = prepare_pair("b", padded, PX, ParticleTable([180.0], [180.0], [6.0]), cfg,
                     jpeg_variant=False)
    inner = b.variants[0][100 + 8:260 - 8, 100 + 8:260 - 8]
    np.testing.assert_allclose(inner, a.variants[0][8:-8, 8:-8], atol=0.05)
