"""Flat canvas (padding, black corners) is not specimen: it changes neither the
normalisation nor the detections, holds none, and is reported."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage as ndi

from golddigger.model.detector import Detector
from golddigger.model.preprocess import robust_stats
from golddigger.model.specimen import (
    canvas_blocks,
    excluded_near,
    fill_canvas,
    fill_context,
    specimen_mask,
    specimen_window,
)
from golddigger.synth import SynthConfig, generate

PX = 1.2  # the shipped model's own scale: no resampling, so padding shifts no grid


@pytest.fixture(scope="module")
def synthetic():
    res = generate(SynthConfig(shape=(320, 384), pixel_size_nm=PX), seed=11)
    return res.image


@pytest.fixture(scope="module")
def shipped():
    return Detector.from_pretrained(threads=1, precision="float32")


def _pad(img, side, value=0):
    out = np.full((side, side), value, dtype=img.dtype)
    y0, x0 = (side - img.shape[0]) // 2, (side - img.shape[1]) // 2
    out[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
    return out, x0, y0


def test_plain_micrograph_is_all_specimen(synthetic):
    assert specimen_mask(synthetic, PX) is None


@pytest.mark.parametrize("value", [0, 255, 117])
def test_padding_of_any_value_and_fraction_is_found(synthetic, value):
    for side in (480, 900):  # 25 % and 79 % canvas
        padded, x0, y0 = _pad(synthetic, side, value)
        mask = specimen_mask(padded, PX)
        truth = np.zeros(padded.shape, dtype=bool)
        truth[y0:y0 + synthetic.shape[0], x0:x0 + synthetic.shape[1]] = True
        # specimen pixels that happen to equal the canvas value at its edge may join it
        assert mask is not None
        assert not (mask & ~truth).any()
        assert np.count_nonzero(truth & ~mask) <= 0.002 * truth.sum()
        med, mad = robust_stats(synthetic)
        med_p, mad_p = robust_stats(padded, mask=mask)
        assert abs(med_p - med) <= 1.0 and abs(mad_p - mad) <= 0.05 * mad


@pytest.mark.parametrize("noise", ["dither", "gauss", "bright"])
def test_nearly_flat_canvas_is_found_and_changes_no_detection(synthetic, shipped, noise):
    """A canvas with a grey level or two of noise (an export's dithering, a camera's dark
    level) is canvas too: before, 79 % of it made the specimen look bright and hid every
    particle."""
    rng = np.random.default_rng(5)
    exact, x0, y0 = _pad(synthetic, 900, 255 if noise == "bright" else 0)
    padded = exact.copy()
    truth = np.zeros(padded.shape, dtype=bool)
    truth[y0:y0 + synthetic.shape[0], x0:x0 + synthetic.shape[1]] = True
    n = np.count_nonzero(~truth)
    if noise == "dither":
        padded[~truth] = rng.integers(0, 3, n)
    elif noise == "gauss":
        padded[~truth] = np.clip(np.rint(rng.normal(1.0, 1.0, n)), 0, 255)
    else:
        padded[~truth] = 255 - rng.integers(0, 3, n)
    mask = specimen_mask(padded, PX)
    assert mask is not None and not (mask & ~truth).any()
    assert np.count_nonzero(truth & ~mask) <= 0.002 * truth.sum()
    # detected as on the exactly flat canvas of that level (which is the image's own
    # detections, tested above)
    _same(shipped.predict(padded, PX), shipped.predict(exact, PX), tol=0.01, spare=0)


def test_smooth_mid_grey_area_stays_specimen(synthetic):
    """A featureless area of a denoised micrograph is flat but not at an end of the grey
    scale: it is specimen (gold in it must still be found)."""
    img = synthetic.copy()
    level = int(np.median(img))
    img[60:260, 80:300] = level + (np.indices((200, 220)).sum(axis=0) % 2)  # 100 x 100 nm
    assert specimen_mask(img, PX) is None


def test_small_flat_spots_are_specimen(synthetic):
    img = synthetic.copy()
    img[100:120, 100:120] = 0  # a 11 x 11 nm saturated spot: far under 50 x 50 nm
    assert specimen_mask(img, PX) is None


def test_nan_pixels_are_not_specimen():
    img = np.random.default_rng(0).normal(100, 5, (64, 64))
    img[3, 4] = np.nan
    mask = specimen_mask(img, 1.0)
    assert mask is not None and not mask[3, 4] and mask.sum() == img.size - 1


def test_excluded_near():
    spec = np.ones((50, 50), dtype=bool)
    spec[:, :10] = False
    got = excluded_near(spec, np.array([5.0, 11.0, 14.0, 30.0]), np.full(4, 25.0), 3.0)
    assert got.tolist() == [True, True, False, False]
    assert not excluded_near(None, np.array([1.0]), np.array([1.0]), 3.0).any()


def _same(a, b, tol=1.0, spare=2):
    """The same detections (within ``tol`` px), but for ``spare`` near the threshold
    (their context at the edge is not pixel for pixel the same)."""
    from scipy.spatial import cKDTree

    assert abs(len(a) - len(b)) <= spare
    for u, v in ((a, b), (b, a)):
        d, _ = cKDTree(v.xy).query(u.xy)
        assert np.count_nonzero(d > tol) <= spare


def test_padding_changes_no_detection(synthetic, shipped, caplog):
    plain = shipped.predict(synthetic, PX)
    assert len(plain) > 10
    assert plain.excluded_px == {0: 0}
    padded, x0, y0 = _pad(synthetic, 900)  # 79 % black
    with caplog.at_level(logging.WARNING, logger="golddigger.model.detector"):
        found = shipped.predict(padded, PX)
    assert "85 % of slice 0" in caplog.text and "not specimen" in caplog.text
    assert found.excluded_px[0] == padded.size - synthetic.size
    found.x -= x0
    found.y -= y0
    _same(found, plain)


def test_turned_image_keeps_its_detections_off_the_corners(synthetic, shipped):
    plain = shipped.predict(synthetic, PX)
    turned = ndi.rotate(synthetic, 30, reshape=True, order=1, cval=0)
    found = shipped.predict(turned, PX)
    # detections away from the corners' edges: all of the image's (turning blurs a
    # little, so a particle or two at the threshold may come and go)
    assert abs(len(found) - len(plain)) <= max(2, 0.05 * len(plain))
    canvas = ~specimen_mask(turned, PX)
    dist = ndi.distance_transform_edt(~canvas)
    assert dist[np.rint(found.y).astype(int), np.rint(found.x).astype(int)].min() >= 2


def test_nothing_is_found_on_the_image_edge(shipped):
    """Dark things cut by the edge (a particle mostly outside, a stain) and their mirror
    image look like a whole particle centred on the edge: not reported."""
    from conftest import disc_image

    centres = ((100.0, 0.5), (0.0, 60.0), (150.0, 100.0))  # two on edges, one inside
    img = disc_image(shape=(160, 200), centres=centres, radius=5.0, seed=2)
    found = shipped.predict(img, 1.2, threshold=0.2)
    assert len(found) == 1
    assert abs(found.x[0] - 150.0) < 1 and abs(found.y[0] - 100.0) < 1


def test_counting_area_leaves_the_canvas_out(synthetic, shipped):
    from golddigger.batch import BatchOptions, detect_image
    from golddigger.io.images import CalibratedImage
    from golddigger.io.regions import Region

    padded, x0, y0 = _pad(synthetic, 600)
    um2 = PX * PX / 1e6
    area = detect_image(shipped, CalibratedImage(padded, PX), None, BatchOptions()).area_um2
    assert area[0] == pytest.approx(synthetic.size * um2, rel=0.002)
    # a region half on the canvas counts only its specimen part
    h, w = synthetic.shape
    region = Region.from_polygon([(0, 0), (x0 + w / 2, 0), (x0 + w / 2, 600), (0, 600)])
    area = detect_image(shipped, CalibratedImage(padded, PX), region, BatchOptions()).area_um2
    assert area[0] == pytest.approx(h * w / 2 * um2, rel=0.01)


def test_specimen_and_filled_canvas_of_a_window_equal_the_whole_planes():
    """What chunked detection relies on: read in strips, any window's mask and filled
    canvas (with `fill_context` around it) equal those windows of the whole plane's."""
    rng = np.random.default_rng(2)
    a = rng.normal(100, 10, (900, 1100)).astype(np.float32)
    a[:, :230] = 0.0  # padding, a block, a rotated-image corner and NaNs
    a[700:, 800:] = 255.0
    yy, xx = np.mgrid[:900, :1100]
    a[yy + xx < 400] = 0.0
    a[300:305, 500:520] = np.nan
    a[:120, 600:] = rng.integers(0, 3, (120, 500))  # a dark canvas dithered by 2 levels
    whole = specimen_mask(a, 1.0)
    assert not whole[:120, 608:].any()
    assert whole is not None and not whole.all()
    filled = fill_canvas(a, whole, 100.0, 20.0)
    blocks = canvas_blocks(a, 1.0, strip_px=7 * 1100)  # strips of 7 rows: many
    ctx = fill_context(20.0)
    for r0, r1, c0, c1 in [(0, 900, 0, 1100), (133, 467, 100, 232), (650, 900, 805, 1100),
                           (5, 77, 1000, 1100)]:
        np.testing.assert_array_equal(specimen_window(a, blocks, r0, r1, c0, c1),
                                      whole[r0:r1, c0:c1])
        y0, y1 = max(0, r0 - ctx), min(900, r1 + ctx)
        x0, x1 = max(0, c0 - ctx), min(1100, c1 + ctx)
        win = fill_canvas(a[y0:y1, x0:x1], specimen_window(a, blocks, y0, y1, x0, x1), 100.0,
                          20.0, origin=(y0, x0), shape=a.shape)
        np.testing.assert_array_equal(win[r0 - y0:r1 - y0, c0 - x0:c1 - x0],
                                      filled[r0:r1, c0:c1])
