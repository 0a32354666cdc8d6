"""The LoG baseline on hand-drawn synthetic images (and, when present, the real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from golddigger.baseline import (
    LogParams,
    _normalise,
    detect_log,
    log_candidates,
    select_blobs,
    tune_log,
)
from golddigger.evaluate import evaluate_image
from golddigger.io.images import CalibratedImage
from golddigger.particles import ParticleTable

PX = 0.55  # nm per pixel
DATA = Path(__file__).parents[1].parent / "shared/data/mpfi-fril"


def draw(particles: ParticleTable, shape=(300, 300), seed=0, ridge: bool = False
         ) -> np.ndarray:
    """Grey background, dark discs of the particles' diameters, slight blur and noise;
    optionally a dark straight ridge (like a membrane edge)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(float)
    img = np.full(shape, 170.0)
    for x, y, d, _, _ in particles:
        r = d / PX / 2
        img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 60.0
    if ridge:
        img[np.abs(yy - (200 + 0.05 * xx)) < 7] = 90.0  # >= 28 px from every disc centre
    img = ndi.gaussian_filter(img, 1.5)
    img += np.random.default_rng(seed).normal(0, 6.0, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def truth(seed: int = 0) -> ParticleTable:
    rng = np.random.default_rng(seed)
    xy = np.array([(60, 60), (150, 70), (240, 60), (70, 160), (160, 150), (230, 170),
                   (80, 240), (240, 250)], dtype=float)
    xy += rng.uniform(-4, 4, xy.shape)
    d = np.array([6, 12, 6, 6, 12, 6, 12, 6], dtype=float)
    return ParticleTable(xy[:, 0], xy[:, 1], d)


def test_log_finds_every_disc_with_its_class():
    t = truth()
    found = detect_log(draw(t), PX, LogParams())
    s = evaluate_image(t, found, PX, radius_nm=2.0)
    assert (s.all.tp, s.all.fp, s.all.fn) == (8, 0, 0)
    assert s.scores["6"].f1 == 1.0 and s.scores["12"].f1 == 1.0
    assert s.all.loc_error_nm < 0.8
    assert ((found.score > 0) & (found.score < 1)).all()


def test_calibrated_image_and_stack():
    t = truth()
    img = draw(t)
    a = detect_log(CalibratedImage(img, PX), params=LogParams())
    assert len(a) == 8
    stack = np.stack([img, draw(ParticleTable.empty(), seed=1)])
    b = detect_log(stack, PX, LogParams())
    assert len(b) == 8 and set(b.slice.tolist()) == {0}
    with pytest.raises(ValueError, match="pixel_size_nm"):
        detect_log(img)


def test_ridges_are_rejected_by_roundness():
    t = truth()
    img = draw(t, ridge=True)
    loose = detect_log(img, PX, LogParams(min_roundness=-1.0))
    strict = detect_log(img, PX, LogParams(min_roundness=0.5))
    assert evaluate_image(t, loose, PX).all.fp > 0  # the ridge gives false blobs...
    s = evaluate_image(t, strict, PX)
    assert (s.all.tp, s.all.fp) == (8, 0)  # ... which the edge test drops


def test_scale_space_maxima_match_skimage_blob_log():
    from skimage.feature import blob_log

    img = draw(truth())
    params = LogParams(working_pixel_size_nm=PX, min_roundness=-1.0, overlap=1.0,
                       threshold=0.3)
    ours = log_candidates(img, PX, params)  # no resampling at the working pixel size
    sig = params.sigmas()
    ref = blob_log(_normalise(img.astype(np.float32)), min_sigma=sig[0], max_sigma=sig[-1],
                   num_sigma=len(sig), log_scale=True, threshold=0.3, overlap=1.0)
    assert len(ours) == len(ref) > 8
    a = np.stack([ours.y, ours.x, ours.diameter_nm / (2 * np.sqrt(2) * PX)], 1)
    a = a[np.lexsort((np.round(a[:, 1]), np.round(a[:, 0])))]
    b = ref[np.lexsort((ref[:, 1], ref[:, 0]))]
    assert np.abs(a[:, :2] - b[:, :2]).max() <= 0.5 + 1e-6  # sub-pixel refinement only
    assert np.allclose(a[:, 2], b[:, 2], rtol=1e-4)


def test_select_blobs_thresholds_like_recomputing():
    img = draw(truth())
    low = log_candidates(img, PX, LogParams(threshold=2.0))
    for thr in (3.0, 6.0, 12.0):
        p = LogParams(threshold=thr)
        assert select_blobs(low, p) == detect_log(img, PX, p)
    with pytest.raises(ValueError, match="floor"):
        select_blobs(low, LogParams(threshold=1.0))


def test_class_cutoffs_and_size_limits():
    t = truth()
    c = log_candidates(draw(t), PX, LogParams())
    all12 = select_blobs(c, LogParams(class_cutoffs_nm=(1.0,)))
    assert set(all12.diameter_nm.tolist()) == {12.0}
    small_only = select_blobs(c, LogParams(max_diameter_nm=9.0))
    assert len(small_only) == 5 and set(small_only.diameter_nm.tolist()) == {6.0}
    strict12 = select_blobs(c, LogParams(class_thresholds=(5.2, 1e6)))
    assert set(strict12.diameter_nm.tolist()) == {6.0}


def test_tune_log_on_synthetic_images():
    ts = [truth(0), truth(1)]
    imgs = [draw(ts[0], seed=0, ridge=True), draw(ts[1], seed=1)]
    grid = {"threshold": (1.0, 3.0, 6.0, 12.0), "min_roundness": (-1.0, 0.5)}
    tuned = tune_log(imgs, ts, PX, grid=grid, names=["a", "b"])
    assert tuned.report.pooled["all"].f1 == 1.0
    assert tuned.report.pooled["6"].f1 == 1.0 and tuned.report.pooled["12"].f1 == 1.0
    assert tuned.params.min_roundness == 0.5
    assert 6 < tuned.params.class_cutoffs_nm[0] < 12
    assert len(tuned.trials) == 8 and list(tuned.report.images) == ["a", "b"]
    assert LogParams.from_dict(tuned.params.to_dict()) == tuned.params
    with pytest.raises(ValueError, match="unknown grid"):
        tune_log(imgs, ts, PX, grid={"thresh": (1.0,)})


def test_params_are_checked():
    with pytest.raises(ValueError, match="overlap"):
        LogParams(overlap=2)
    with pytest.raises(ValueError, match="class_cutoffs_nm"):
        LogParams(classes=(6, 12, 18), class_cutoffs_nm=(9,))
    with pytest.raises(ValueError, match="unknown"):
        LogParams.from_dict({"treshold": 1})
    assert LogParams(classes=(12, 6)).classes == (6.0, 12.0)


@pytest.mark.realdata
@pytest.mark.skipif(not DATA.is_dir(), reason="real data not present")
def test_real_data_one_fold():
    """Tune on five MPFI images, test on S1 (a smaller grid than the default)."""
    from golddigger.io.images import read_image

    stems = ["S1", "S4", "S7", "S13", "S15", "S27"]
    imgs = [read_image(DATA / "images" / f"{s}.jpg", pixel_size_nm=0.5587) for s in stems]
    labels = [ParticleTable.from_csv(DATA / "labels" / f"{s}.csv") for s in stems]
    grid = {"threshold": (4.0, 4.6, 5.2, 6.0, 7.0), "min_roundness": (0.0, 0.5)}
    tuned = tune_log(imgs[1:], labels[1:], grid=grid)
    s = evaluate_image(labels[0], detect_log(imgs[0], params=tuned.params), 0.5587)
    assert s.all.f1 > 0.9
