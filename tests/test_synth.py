"""Synthetic FRIL images: determinism, truth that matches the pixels, physical scaling,
counts, validation and the ``golddigger synth`` command."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from golddigger.synth import SynthConfig, generate, write_example

#: No relief, no IMPs, no hard negatives: only grain, noise and gold.
FLAT = dict(imp_density_per_um2=0, imp_cluster_density_per_um2=0,
            dark_blob_density_per_um2=0, edge_artefact_density_per_um2=0,
            domain_density_per_um2=0, ridge_density_per_um2=0, patch_step_nm=(0, 0),
            undulation_nm=(0, 0))


def darkest_point(image: np.ndarray, x: float, y: float, r_px: float) -> tuple[float, float]:
    """Sub-pixel darkest point near (x, y) (within 0.6 radii) of the image divided by a
    plane fitted to the particle's surround (removes the relief's gradient) and smoothed
    at the particle's scale."""
    R = int(np.ceil(r_px + 10))
    cx, cy = int(round(x)), int(round(y))
    r0, r1 = max(cy - R, 0), min(cy + R + 1, image.shape[0])
    c0, c1 = max(cx - R, 0), min(cx + R + 1, image.shape[1])
    p = image[r0:r1, c0:c1].astype(float)
    yy, xx = np.mgrid[r0:r1, c0:c1]
    d = np.hypot(xx - x, yy - y)
    ring = (d >= r_px + 3) & (d <= r_px + 9)
    A = np.stack([np.ones(ring.sum()), xx[ring] - x, yy[ring] - y], axis=1)
    coef = np.linalg.lstsq(A, p[ring], rcond=None)[0]
    plane = coef[0] + coef[1] * (xx - x) + coef[2] * (yy - y)
    s = ndi.gaussian_filter(p / np.maximum(plane, 1.0), max(1.0, r_px / 2))
    s[d > max(2.0, 0.6 * r_px)] = np.inf
    iy, ix = np.unravel_index(np.argmin(s), s.shape)

    def vertex(left: float, mid: float, right: float) -> float:
        den = left - 2 * mid + right
        if not np.isfinite(den) or den <= 0:
            return 0.0
        return float(np.clip(0.5 * (left - right) / den, -1.0, 1.0))

    vx = vertex(s[iy, ix - 1], s[iy, ix], s[iy, ix + 1]) if 0 < ix < s.shape[1] - 1 else 0.0
    vy = vertex(s[iy - 1, ix], s[iy, ix], s[iy + 1, ix]) if 0 < iy < s.shape[0] - 1 else 0.0
    return float(xx[iy, ix] + vx), float(yy[iy, ix] + vy)


@pytest.fixture(scope="module")
def busy():
    """A default-looking 512 x 512 image with a known mix of particles."""
    cfg = SynthConfig(shape=(512, 512), counts={6: 14, 12: 8, 18: 3})
    return cfg, generate(cfg, seed=11)


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_image_different_seed_different():
    cfg = SynthConfig(shape=(200, 240))
    a, b, c = generate(cfg, seed=5), generate(cfg, seed=5), generate(cfg, seed=6)
    assert a.image.dtype == np.uint8 and a.image.shape == (200, 240)
    assert np.array_equal(a.image, b.image)
    assert a.particles == b.particles and a.negatives == b.negatives
    assert a.region.geometry.equals(b.region.geometry)
    assert not np.array_equal(a.image, c.image)
    assert a.particles != c.particles


def test_generator_seed_is_accepted():
    cfg = SynthConfig(shape=(96, 96))
    a = generate(cfg, seed=np.random.default_rng(3))
    b = generate(cfg, seed=np.random.default_rng(3))
    assert np.array_equal(a.image, b.image)


# ---------------------------------------------------------------------- truth vs pixels
def test_every_centre_is_the_darkest_point_on_a_flat_replica():
    cfg = SynthConfig(shape=(400, 400), counts={6: 12, 12: 8, 18: 3}, **FLAT)
    for seed in (0, 1):
        res = generate(cfg, seed=seed)
        assert len(res.particles) == 23
        for x, y, d, *_ in res.particles:
            ex, ey = darkest_point(res.image, x, y, d / 2 / cfg.pixel_size_nm)
            assert np.hypot(ex - x, ey - y) <= 1.0, (seed, x, y, d, ex, ey)


def test_centres_match_darkest_points_on_a_busy_replica(busy):
    # relief, IMPs under the gold and touching neighbours may shift a few minima slightly
    cfg, res = busy
    off = np.array([np.hypot(*(np.subtract(darkest_point(res.image, x, y, d / 2 / 0.5587),
                                           (x, y))))
                    for x, y, d, *_ in res.particles])
    assert np.mean(off <= 1.0) >= 0.9, off
    assert off.max() <= 3.0, off


def test_particles_are_darker_than_their_surround(busy):
    cfg, res = busy
    img = res.image.astype(float)
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    for x, y, d, *_ in res.particles:
        r = d / 2 / cfg.pixel_size_nm
        dist = np.hypot(xx - x, yy - y)
        core = img[dist <= 0.5 * r].mean()
        ring = np.median(img[(dist >= r + 4) & (dist <= r + 10)])
        assert core < 0.75 * ring, (x, y, d, core, ring)
        if d >= 12:
            assert core < 0.5 * ring, (x, y, d, core, ring)


def test_particles_inside_image_and_not_overlapping(busy):
    cfg, res = busy
    p = res.particles
    h, w = res.image.shape
    r = p.diameter_nm / 2 / cfg.pixel_size_nm
    assert np.all((p.x >= r - 1) & (p.x <= w - r) & (p.y >= r - 1) & (p.y <= h - r))
    dx = p.x[:, None] - p.x[None, :]
    dy = p.y[:, None] - p.y[None, :]
    dist = np.hypot(dx, dy) + np.eye(len(p)) * 1e9
    # drawn diameters vary by ~8 % around the apparent size; nominal sum of radii * 0.8
    assert np.all(dist >= 0.8 * (r[:, None] + r[None, :]))


def test_most_gold_is_in_the_region_and_label_outside_false_keeps_only_region():
    cfg = SynthConfig(shape=(512, 512), counts={6: 30, 12: 10})
    res = generate(cfg, seed=2)
    inside = res.region.contains(res.particles.x, res.particles.y)
    assert inside.mean() >= 0.6
    only = generate(cfg.model_copy(update={"label_outside": False}), seed=2)
    assert len(only.particles) == int(inside.sum())
    assert np.all(only.region.contains(only.particles.x, only.particles.y))
    # the unlabelled gold is still drawn: same pixels
    assert np.array_equal(only.image, res.image)


def test_hard_negatives_are_drawn_away_from_gold():
    cfg = SynthConfig(shape=(512, 512), counts={6: 14, 12: 8}, dark_blob_density_per_um2=300,
                      edge_artefact_density_per_um2=100)
    res = generate(cfg, seed=11)
    neg, p = res.negatives, res.particles
    assert len(neg) >= 10
    assert np.all((neg.diameter_nm >= 4) & (neg.diameter_nm <= 15))
    d = np.hypot(neg.x[:, None] - p.x[None, :], neg.y[:, None] - p.y[None, :])
    assert d.min() >= 4.0 / cfg.pixel_size_nm


# ---------------------------------------------------------------------- physical scale
def dark_disc_area(res, threshold_frac: float = 0.5) -> float:
    """Mean number of pixels darker than halfway from background to core."""
    px = res.pixel_size_nm
    a = ndi.gaussian_filter(res.image.astype(float), 0.5 / px)
    bg = np.median(a)
    areas = []
    for x, y, *_ in res.particles:
        cx, cy = int(round(x)), int(round(y))
        lab, _ = ndi.label(a < bg - threshold_frac * (bg - a[cy, cx]))
        areas.append(np.sum(lab == lab[cy, cx]))
    return float(np.mean(areas))


def test_particle_size_scales_with_pixel_size():
    areas = {}
    for px in (1.0, 0.5):
        n = int(round(300 / px))
        cfg = SynthConfig(shape=(n, n), pixel_size_nm=px, classes=(12.0,), counts={12: 20},
                          size_cv=0.0, **FLAT)
        areas[px] = dark_disc_area(generate(cfg, seed=4))
    # a 12 nm disc is pi * 6^2 = 113 nm^2; real 12 nm gold is ~11 nm across at half depth
    assert 0.65 * 113 <= areas[1.0] <= 1.1 * 113, areas
    assert 3.4 <= areas[0.5] / areas[1.0] <= 4.6, areas


def test_six_nm_gold_is_smaller_than_twelve():
    cfg = SynthConfig(shape=(300, 300), counts={6: 15, 12: 15}, size_cv=0.0, **FLAT)
    res = generate(cfg, seed=8)
    small = dark_disc_area(type(res)(res.image, res.particles.of_class(6), res.region,
                                     res.pixel_size_nm, res.negatives))
    large = dark_disc_area(type(res)(res.image, res.particles.of_class(12), res.region,
                                     res.pixel_size_nm, res.negatives))
    assert 2.5 <= large / small <= 4.5


# ---------------------------------------------------------------------- counts and config
def test_counts_follow_the_config():
    cfg = SynthConfig(shape=(400, 400), counts={6: 9, 12: 4, 18: 2})
    p = generate(cfg, seed=3).particles
    assert (len(p.of_class(6)), len(p.of_class(12)), len(p.of_class(18))) == (9, 4, 2)
    cfg = SynthConfig(shape=(300, 300), classes=(6.0, 12.0), counts={12: 5})
    p = generate(cfg, seed=3).particles
    assert p.classes == [12.0] and len(p) == 5


def test_density_sets_the_expected_number():
    cfg = SynthConfig(shape=(1000, 1000), pixel_size_nm=1.0, classes=(6.0, 12.0),
                      density_per_um2={6: 60.0, 12: 20.0})
    p = generate(cfg, seed=9).particles
    # area 1 um^2: Poisson means 60 and 20
    assert abs(len(p.of_class(6)) - 60) <= 4 * np.sqrt(60)
    assert abs(len(p.of_class(12)) - 20) <= 4 * np.sqrt(20)


@pytest.mark.parametrize("bad", [
    dict(shape=(10, 10)),
    dict(pixel_size_nm=0),
    dict(classes=()),
    dict(classes=(6.0, 6.0)),
    dict(counts={7: 3}),
    dict(size_cv=-0.1),
    dict(gamma=(1.2, 0.8)),
    dict(background_grey=(0, 300)),
    dict(jpeg_quality=0),
    dict(jpeg_quality=(95, 60)),
    dict(unknown_option=1),
])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        SynthConfig(**bad)


def test_jpeg_and_scale_bar_options():
    cfg = SynthConfig(shape=(300, 400), jpeg_quality=(60, 70), scale_bar=True,
                      counts={6: 6, 12: 3})
    res = generate(cfg, seed=1)
    bar = res.image[-10:]
    assert (bar <= 12).mean() > 0.8 and bar.max() > 200  # black band, white bar (JPEG)
    assert np.all(res.particles.y < 300 - 10)
    assert res.region.bounds()[3] <= 300 - 9
    plain = generate(cfg.model_copy(update={"jpeg_quality": None}), seed=1)
    assert res.particles == plain.particles
    diff = np.abs(res.image[:-12].astype(int) - plain.image[:-12])
    assert 0 < diff.mean() < 8


def test_other_pixel_sizes_and_shapes_work():
    for px, shape in ((0.25, (128, 160)), (2.0, (96, 64)), (5.0, (64, 64))):
        res = generate(SynthConfig(shape=shape, pixel_size_nm=px), seed=0)
        assert res.image.shape == shape and res.pixel_size_nm == px


# ---------------------------------------------------------------------- files and CLI
def test_write_example_round_trip(tmp_path):
    from golddigger.io.images import read_image
    from golddigger.particles import ParticleTable

    res = generate(SynthConfig(shape=(256, 256), counts={6: 5, 12: 2}), seed=1)
    paths = write_example(tmp_path, "ex", res)
    assert [p.name for p in paths][:2] == ["ex.tif", "ex.csv"]
    img = read_image(paths[0])
    assert img.pixel_size_nm == pytest.approx(0.5587, rel=1e-6)
    assert np.array_equal(img.data, res.image)
    truth = ParticleTable.from_csv(paths[1])
    assert np.allclose(truth.x, res.particles.x, atol=0.006)
    assert np.array_equal(truth.diameter_nm, res.particles.diameter_nm)
    from golddigger.errors import GoldDiggerError

    with pytest.raises(GoldDiggerError):
        write_example(tmp_path, "ex", res)
    write_example(tmp_path, "ex", res, overwrite=True)


def test_region_file_reads_back(tmp_path):
    rois = pytest.importorskip("golddigger.io.rois")
    res = generate(SynthConfig(shape=(256, 256), counts={6: 8}), seed=2)
    reg_path = write_example(tmp_path, "ex", res)[2]
    region = rois.read_region(reg_path, image_shape=res.image.shape)
    want = res.region.to_mask(res.image.shape)
    got = region.to_mask(res.image.shape)
    assert (want ^ got).sum() <= 0.01 * want.size


def test_cli_writes_readable_files_and_refuses_to_overwrite(tmp_path, capsys):
    from golddigger.cli.main import main
    from golddigger.io.images import read_image
    from golddigger.particles import ParticleTable

    out = tmp_path / "synth"
    args = ["synth", "-o", str(out), "-n", "2", "--seed", "7", "--size", "200", "160",
            "--pixel-size", "0.8", "--classes", "6", "12"]
    assert main(args) == 0
    tifs = sorted(out.glob("*.tif"))
    images = [p for p in tifs if not p.stem.endswith("_region")]
    assert [p.name for p in images] == ["synth_0007.tif", "synth_0008.tif"]
    img = read_image(images[0])
    assert img.data.shape == (160, 200) and img.pixel_size_nm == pytest.approx(0.8)
    truth = ParticleTable.from_csv(out / "synth_0007.csv")
    want = generate(SynthConfig(shape=(160, 200), pixel_size_nm=0.8, classes=(6, 12)),
                    seed=7)
    assert np.array_equal(img.data, want.image)
    assert len(truth) == len(want.particles) and set(truth.classes) <= {6.0, 12.0}
    assert len(list(out.glob("synth_0007_region.*"))) == 1
    before = images[0].stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert images[0].stat().st_mtime_ns == before
    assert main(args + ["--overwrite", "-q"]) == 0


def test_cli_rejects_bad_options(tmp_path, capsys):
    from golddigger.cli.main import main

    assert main(["synth", "-o", str(tmp_path), "--classes", "0.5"]) == 2
    assert main(["synth", "-o", str(tmp_path), "-n", "0"]) == 2
    assert main(["synth", "-o", str(tmp_path), "--pixel-size", "-1"]) == 2
    assert not list(tmp_path.iterdir())


def test_no_bright_or_dark_frame_at_the_image_border():
    # the cast-shadow pass once left a bright frame: borders must look like the inside
    diffs = []
    for seed in range(3):
        img = generate(SynthConfig(shape=(256, 256), counts={6: 2}), seed=seed).image
        img = img.astype(float)
        for edge, inner in ((img[0], img[6]), (img[-1], img[-7]),
                            (img[:, 0], img[:, 6]), (img[:, -1], img[:, -7])):
            diffs.append(abs(edge.mean() - inner.mean()))
    assert np.median(diffs) < 3.0 and max(diffs) < 12.0, diffs


def test_bundled_example_is_consistent():
    from pathlib import Path

    from golddigger.io.images import read_image
    from golddigger.particles import ParticleTable

    ex = Path(__file__).resolve().parents[1] / "examples"
    img = read_image(ex / "synthetic_fril.tif")
    assert img.data.shape == (1024, 1024) and img.data.dtype == np.uint8
    assert img.pixel_size_nm == pytest.approx(0.5587, rel=1e-6)
    truth = ParticleTable.from_csv(ex / "synthetic_fril.csv")
    assert 40 <= len(truth) <= 60 and set(truth.classes) == {6.0, 12.0, 18.0}
    off = np.array([np.hypot(*np.subtract(darkest_point(img.data, x, y, d / 2 / 0.5587),
                                          (x, y)))
                    for x, y, d, *_ in truth])
    # a busy replica: faint 6 nm gold on IMPs and steep relief shifts a few minima a little
    assert np.mean(off <= 1.0) >= 0.85 and np.mean(off <= 2.0) >= 0.95, off
    regions = list(ex.glob("synthetic_fril_region.*"))
    assert len(regions) == 1
    # the example is exactly what the generator makes today (regenerate it if not:
    # write_example("examples", "synthetic_fril", generate(SynthConfig(), seed=3)))
    assert np.array_equal(generate(SynthConfig(), seed=3).image, img.data)


# ---------------------------------------------------------------------- dark replica
def test_dark_bands_darken_the_replica_and_dark_gold_sits_on_them():
    # without IMPs: their bright cast shadows speckle the rings measured below, and the
    # property is about the bands
    base = SynthConfig(shape=(512, 512), counts={6: 20, 12: 4}, imp_density_per_um2=0,
                       imp_cluster_density_per_um2=0)
    plain = generate(base, seed=5)
    banded = generate(base.model_copy(update={"dark_band_density_per_um2": 12.0}), seed=5)
    # bands are broad dark areas: a good share of the pixels darkens a lot, the bright
    # end barely moves
    darker = plain.image.astype(int) - banded.image.astype(int) > 15
    assert darker.mean() > 0.05
    assert abs(np.percentile(banded.image, 98) - np.percentile(plain.image, 98)) < 10

    def surround(r):
        """Median grey of a ring around each particle, relative to the image median."""
        img = ndi.median_filter(r.image.astype(float), 5)
        yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
        out = []
        for x, y, d, *_ in r.particles:
            rr = np.hypot(xx - x, yy - y)
            out.append(np.median(img[(rr > d / 2 / 0.5587 + 4) & (rr < d / 2 / 0.5587 + 12)]))
        return np.asarray(out) / np.median(img)

    on_dark = generate(base.model_copy(update={"dark_band_density_per_um2": 12.0,
                                               "dark_gold_fraction": 1.0}), seed=5)
    assert len(on_dark.particles) >= 20
    # gold placed on the darkest tenth sits on a darker surround than gold placed anywhere
    assert np.median(surround(on_dark)) < np.median(surround(banded)) - 0.03


def test_dark_options_off_draw_exactly_as_before():
    a = generate(SynthConfig(shape=(256, 256)), seed=9)
    b = generate(SynthConfig(shape=(256, 256), dark_band_width_nm=(20.0, 30.0)), seed=9)
    assert np.array_equal(a.image, b.image)
    with pytest.raises(ValueError):
        SynthConfig(dark_gold_fraction=1.5)
    with pytest.raises(ValueError):
        SynthConfig(dark_band_density_per_um2=-1)


def test_imps_are_bright_shadowed_bumps_not_dark_discs():
    """IMPs as replicas show them (a thin dark cap, a bright cast shadow); the legacy
    look (dark caps like small gold) stays available, and nothing else changes."""
    cfg = SynthConfig(shape=(384, 384), counts={6: 0}, imp_density_per_um2=4000.0)
    new = generate(cfg, seed=2)
    old = generate(cfg.model_copy(update={"imp_shadows": False}), seed=2)
    assert new.particles == old.particles and new.negatives == old.negatives
    med = np.median(old.image)
    # legacy caps are dark blots; the new IMPs darken far less and brighten more
    dark_old = np.mean(old.image < med - 40)
    dark_new = np.mean(new.image < med - 40)
    assert dark_new < 0.5 * dark_old
    assert np.percentile(new.image, 99) > np.percentile(old.image, 99)
