"""`Detector.predict` as four steps callable alone, and a golden test of the shipped
model's float32 output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import golddigger.model.detector as detector_module
from golddigger.model.detector import DetectionMaps, Detector

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def shipped():
    return Detector.from_pretrained("fril-gold-v3", threads=1, precision="float32")


@pytest.fixture(scope="module")
def image():
    return np.load(DATA / "golden_v3_input.npz")["image"]


def test_predict_is_the_four_steps(shipped, image):
    px = 1.0  # resampled to the model's 1.2 nm/px
    for threshold, classes in ((None, None), (0.25, [6.0])):
        whole = shipped.predict(image, px, threshold=threshold, classes=classes)
        maps = shipped.compute_maps(image, px)
        assert isinstance(maps, DetectionMaps) and maps.maps.shape[0] == 3
        cands = shipped.find_candidates(maps, threshold=threshold)
        measured = shipped.measure(cands, image, px)
        steps = shipped.apply_thresholds(measured, threshold=threshold, classes=classes)
        assert len(whole) > 5
        assert whole == steps


def test_rethresholding_reuses_the_maps(shipped, image, monkeypatch):
    calls = []
    real = detector_module.tiled_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(detector_module, "tiled_forward", counting)
    maps = shipped.compute_maps(image, 1.2)
    assert len(calls) == 1
    cands = shipped.measure(shipped.find_candidates(maps, floor=0.1), image, 1.2)
    counts = [len(shipped.apply_thresholds(cands, threshold=t)) for t in (0.15, 0.4, 0.8)]
    assert counts[0] > counts[1] > counts[2]
    assert len(calls) == 1  # no network run after compute_maps
    # the same as predicting afresh at that threshold
    assert shipped.apply_thresholds(cands, threshold=0.4) == shipped.predict(
        image, 1.2, threshold=0.4)


@pytest.mark.parametrize("model", ["fril-gold-v3", "fril-gold-v4"])
def test_golden_float32_output(model, image):
    """Each shipped model's float32 output on a fixed image: a change here is a change of
    the model or of inference, to be made on purpose (then regenerate the json with
    ``write_golden``)."""
    want = json.loads((DATA / f"golden_{model.split('-')[-1]}_float32.json").read_text())
    det = Detector.from_pretrained(model, threads=1, precision="float32")
    got = det.predict(image, want["pixel_size_nm"], threshold=want["threshold"])
    assert len(got) == len(want["x"]) > 5
    np.testing.assert_allclose(got.x, want["x"], atol=0.02)
    np.testing.assert_allclose(got.y, want["y"], atol=0.02)
    np.testing.assert_array_equal(got.diameter_nm, want["diameter_nm"])
    np.testing.assert_allclose(got.score, want["score"], atol=2e-3)
    if "measured_nm" in want:
        np.testing.assert_allclose(got.measured_nm, want["measured_nm"], atol=0.02)


def write_golden(model: str, threshold: float) -> None:
    """Regenerate a model's golden output (on purpose only)."""
    det = Detector.from_pretrained(model, threads=1, precision="float32")
    image = np.load(DATA / "golden_v3_input.npz")["image"]
    got = det.predict(image, 1.2, threshold=threshold)
    out = {"model": model, "precision": "float32", "pixel_size_nm": 1.2,
           "threshold": threshold,
           "image": "golden_v3_input.npz: synth.generate(SynthConfig(shape=(192, 256), "
                    "pixel_size_nm=1.2), seed=3)",
           "note": "regenerate only on purpose: see tests/test_detector_steps.py",
           "x": got.x.tolist(), "y": got.y.tolist(),
           "diameter_nm": got.diameter_nm.tolist(), "score": got.score.tolist()}
    if np.isfinite(got.measured_nm).any():
        out["measured_nm"] = got.measured_nm.tolist()
    (DATA / f"golden_{model.split('-')[-1]}_float32.json").write_text(json.dumps(out, indent=1))
