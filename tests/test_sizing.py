"""Size classes measured from the image (golddigger.model.sizing)."""

from __future__ import annotations

import numpy as np
import pytest

from golddigger.model.sizing import measure_classes, measure_particles
from golddigger.synth import SynthConfig, generate


def _disc_image(centres, diameters_nm, px, shape=(200, 300), noise=0.0, seed=0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 200.0)
    for (cx, cy), d in zip(centres, diameters_nm, strict=True):
        r = 0.5 * d / px
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 60.0
    rng = np.random.default_rng(seed)
    return img + rng.normal(0, noise, shape)


@pytest.mark.parametrize("px", [0.56, 1.2])
def test_hand_made_discs_get_their_size(px):
    centres = [(60, 60), (150, 60), (240, 60), (60, 150), (150, 150), (240, 150)]
    diam = [6.0, 12.0, 18.0, 12.0, 6.0, 18.0]
    img = _disc_image(centres, diam, px, noise=10.0)
    # detections a pixel or so off the true centres
    x = np.array([c[0] for c in centres], float) + 0.7
    y = np.array([c[1] for c in centres], float) - 0.6
    got = measure_classes(img, x, y, [6.0, 12.0, 18.0], px)
    np.testing.assert_array_equal(got, diam)


def test_two_classes_only_and_edges():
    px = 0.8
    img = _disc_image([(3, 3), (290, 190)], [12.0, 6.0], px)
    got = measure_classes(img, [3.0, 290.0], [3.0, 190.0], [6.0, 12.0], px)
    np.testing.assert_array_equal(got, [12.0, 6.0])
    # one class: nothing to decide; no positions: empty
    assert measure_classes(img, [3.0], [3.0], [6.0], px).tolist() == [6.0]
    assert measure_classes(img, [], [], [6.0, 12.0], px).size == 0


def test_synthetic_image_sizes_match_truth():
    cfg = SynthConfig(shape=(768, 768), pixel_size_nm=0.56, classes=(6.0, 12.0))
    r = generate(cfg, seed=5)
    p = r.particles
    got = measure_classes(r.image, p.x, p.y, [6.0, 12.0], r.pixel_size_nm)
    assert (got == p.diameter_nm).mean() >= 0.95


def test_bad_input():
    with pytest.raises(ValueError, match="2D"):
        measure_classes(np.zeros((2, 3, 4)), [1], [1], [6, 12], 1.0)
    with pytest.raises(ValueError, match="positive"):
        measure_classes(np.zeros((9, 9)), [1], [1], [6, 12], 0)
    with pytest.raises(ValueError, match="shape"):
        measure_classes(np.zeros((9, 9)), [1, 2], [1], [6, 12], 1.0)


def test_centres_are_refined_to_the_disc():
    px = 0.56
    rng = np.random.default_rng(1)
    grid = np.array([(60.0 + 60 * i, 60.0 + 80 * j) for i in range(4) for j in range(2)])
    true = grid + rng.uniform(-0.5, 0.5, grid.shape)  # sub-pixel centres, well apart
    diam = [6.0, 12.0] * 4
    yy, xx = np.mgrid[:200, :300]
    img = np.full((200, 300), 200.0)
    for (cx, cy), d in zip(true, diam, strict=True):  # sub-pixel centred discs
        img -= 140 * ((xx - cx) ** 2 + (yy - cy) ** 2 <= (0.5 * d / px) ** 2)
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(img, 1.0)
    guess = true + rng.uniform(-1.5, 1.5, true.shape)  # up to 1.5 px (0.8 nm) off
    d, x, y = measure_particles(img, guess[:, 0], guess[:, 1], [6.0, 12.0], px)
    np.testing.assert_array_equal(d, diam)
    err = np.hypot(x - true[:, 0], y - true[:, 1])
    before = np.hypot(*(guess - true).T)
    assert err.max() < 0.5 and err.mean() < 0.5 * before.mean()


def test_refined_centres_stay_inside_the_image():
    """A particle cut by the image border: its refined centre is kept on the image."""
    px = 0.5587
    img = np.full((60, 60), 200.0)
    yy, xx = np.mgrid[:60, :60]
    img[np.hypot(xx - 0.0, yy - 30.0) < 6 / 2 / px] = 60.0  # centred on the left edge
    d, x, y = measure_particles(img, np.array([0.4]), np.array([30.0]), [6.0, 12.0], px,
                                search_nm=3.0)
    assert 0 <= x[0] <= 59 and 0 <= y[0] <= 59
