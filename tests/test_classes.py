"""Any gold size: size classes asked for, diameters measured on the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from golddigger.errors import GoldDiggerError
from golddigger.model.classes import (
    MATCH_LIMIT,
    assign_classes,
    parse_classes,
    scale_passes,
    size_match_factor,
)
from golddigger.model.detector import Detector
from golddigger.model.sizing import measure_diameters
from golddigger.particles import ParticleTable
from golddigger.synth import SynthConfig, generate


def test_parse_classes():
    got = parse_classes(["10", 5, "5-8"])
    assert [c.value for c in got] == [5.0, 6.5, 10.0]
    # 25 % or 2.5 nm, whichever is more; neighbours split at their midpoint
    assert [(c.lo, c.hi) for c in got] == [(2.5, 7.5), (5.0, 8.0), (7.5, 12.5)]
    assert [c.label for c in got] == ["5", "5-8", "10"]
    # never below half the diameter
    assert (parse_classes([3])[0].lo, parse_classes([3])[0].hi) == (1.5, 5.5)
    for bad in (["0"], ["8-5"], ["x"], [], ["6", "6.0"]):
        with pytest.raises(GoldDiggerError):
            parse_classes(bad)


def test_assign_classes_nearest_within_tolerance_else_other():
    classes = parse_classes([10, 20])
    assert [(c.lo, c.hi) for c in classes] == [(7.5, 15.0), (15.0, 25.0)]
    got = assign_classes(np.array([7.4, 7.6, 12.4, 14.9, 15.1, 24.9, 25.1]), classes)
    np.testing.assert_array_equal(got, [np.nan, 10, 10, 10, 20, 20, np.nan])
    # 6 and 12 nm split at 9 nm (real 6 nm gold often reads 7-8.5 nm)
    got = assign_classes(np.array([3.4, 3.6, 8.9, 9.1, 15.0, 15.1]), parse_classes([6, 12]))
    np.testing.assert_array_equal(got, [np.nan, 6, 6, 12, 12, np.nan])
    # close classes keep their tolerance; the nearest (in nm) wins where they overlap
    got = assign_classes(np.array([6.4, 6.6, 9.4, 9.6]), parse_classes([6, 7]))
    np.testing.assert_array_equal(got, [6, 7, 7, np.nan])
    got = assign_classes(np.array([5.0, 8.0, 8.1]), parse_classes(["5-8"]))
    np.testing.assert_array_equal(got, [6.5, 6.5, np.nan])


def _sphere(d_nm, px, noise=0.0, seed=0):
    n = int(3 * d_nm / px) | 1
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2 - 0.3) * px
    t = 2 * np.sqrt(np.clip((d_nm / 2) ** 2 - xx**2 - yy**2, 0, None))
    img = 180 * np.exp(-0.153 * t)
    img = ndi.gaussian_filter(img, 1.3 / px)
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    c = (n - 1) / 2 + 0.3
    return img, np.array([c]), np.array([c])


@pytest.mark.parametrize("d", [5.0, 8.0, 15.0, 25.0])
def test_measure_diameters_of_gold_spheres(d):
    px = 0.6
    img, x, y = _sphere(d, px, noise=3.0)
    got = measure_diameters(img, x, y, px, 2.0, 40.0)[0]
    assert abs(got - d) <= 0.06 * d
    raw = measure_diameters(img, x, y, px, 2.0, 40.0, sphere=False)[0]
    assert raw != pytest.approx(got)


def test_any_gold_size_is_found_measured_and_binned():
    px = 0.5587
    cfg = SynthConfig(shape=(400, 400), pixel_size_nm=px, classes=(10.0,),
                      counts={10.0: 12}, size_cv=0.0)
    res = generate(cfg, seed=5)
    det = Detector.from_pretrained(threads=1, precision="float32")
    found = det.predict(res.image, px, classes=[10, 20])
    assert len(found) >= 10 and set(found.diameter_nm) == {10.0}
    assert abs(np.median(found.measured_nm) - 10.0) < 1.0
    assert det.report_classes([10, 20]) == [10.0, 20.0]
    assert det.report_classes([6, 12]) == [6.0, 12.0, 18.0]


@pytest.mark.parametrize("asked, model, expected", [
    ([10, 20], [6, 12, 18], 5 / 3),  # 10/20 nm gold looks like 6/12 nm at 5/3
    ([5, 10], [6, 12, 18], 5 / 6),
    ([25], [6, 12, 18], 25 / 18),
    ([8], [6, 12, 18], 8 / 6),
    ([6, 12], [6, 12, 18], 1.0),
    ([6.2], [6, 12, 18], 1.0),  # within MATCH_TOLERANCE: the image's own scale
    ([100], [6, 12, 18], MATCH_LIMIT),
])
def test_size_match_factor_for_class_maps(asked, model, expected):
    assert size_match_factor(asked, model_nm=model) == pytest.approx(expected, rel=1e-9)


def test_size_match_factor_for_a_gold_range():
    # sizes inside the range keep the image's scale; others move just inside it
    assert size_match_factor([10, 20], model_range_nm=(6, 25)) == 1.0
    assert size_match_factor([5], model_range_nm=(6, 25)) == pytest.approx(5 / 6)
    assert size_match_factor([5, 10], model_range_nm=(6, 25)) == pytest.approx(5 / 6)
    assert size_match_factor([40], model_range_nm=(6, 25)) == pytest.approx(40 / 25)
    # wider than the range: the log hinge cost balanced at both ends
    g = size_match_factor([2, 50], model_range_nm=(6, 25))
    assert 2 / g < 6 and 50 / g > 25
    assert np.log(6 / (2 / g)) == pytest.approx(np.log((50 / g) / 25), abs=0.01)
    with pytest.raises(GoldDiggerError):
        size_match_factor([10])
    with pytest.raises(GoldDiggerError):
        size_match_factor([], model_nm=[6])


def test_sizes_too_far_apart_for_one_scale_get_a_pass_each():
    six = [6, 12, 18]
    assert scale_passes([10, 20], model_nm=six) == [(pytest.approx(5 / 3), (0, 1))]
    assert scale_passes([5, 25], model_nm=six) == [(pytest.approx(5 / 6), (0,)),
                                                   (pytest.approx(25 / 18), (1,))]
    got = scale_passes([5, 10, 15, 20, 25], model_nm=six)
    assert [i for _, i in got] == [(0, 1, 2), (3,), (4,)]  # 5/10/15 as 6/12/18 together
    assert scale_passes([5, 25], model_range_nm=(4, 30)) == [(1.0, (0, 1))]


def test_two_passes_are_one_engine(monkeypatch):
    """5 and 25 nm gold: two network passes (5 nm shown as 6 nm, 25 nm as 18 nm), each
    size kept from its own; the live candidates (Preview, napari) give the same."""
    from golddigger.live import find_candidates

    px = 0.5587
    cfg = SynthConfig(shape=(500, 500), pixel_size_nm=px, classes=(5.0, 25.0),
                      counts={5.0: 8, 25.0: 5}, size_cv=0.0)
    img = generate(cfg, seed=21).image
    det = Detector.from_pretrained(threads=1, precision="float32")
    calls = []
    real = Detector.compute_maps
    monkeypatch.setattr(Detector, "compute_maps",
                        lambda self, *a, **k: calls.append(k.get("match")) or real(self, *a, **k))
    found = det.predict(img, px, classes=[5, 25])
    assert calls == [pytest.approx(5 / 6), pytest.approx(25 / 18)]
    assert set(found.diameter_nm) == {5.0, 25.0}
    live = det.apply_thresholds(find_candidates(det, img, px, classes=[5, 25]), None,
                                [5, 25])
    np.testing.assert_allclose(live.xy, found.xy)
    np.testing.assert_array_equal(live.diameter_nm, found.diameter_nm)


def test_asked_gold_is_shown_to_the_network_as_gold_it_knows():
    """Declaring a micrograph's pixels 5/3 larger makes its 6/12 nm gold read 10/20 nm;
    asked for 10 and 20 nm, the network sees exactly what it saw before, so the same
    particles are found, reported as 10 and 20 nm."""
    px = 0.5587
    cfg = SynthConfig(shape=(400, 400), pixel_size_nm=px, classes=(6.0, 12.0),
                      counts={6.0: 12, 12.0: 4}, size_cv=0.0)
    img = generate(cfg, seed=11).image
    det = Detector.from_pretrained(threads=1, precision="float32")
    assert det.size_match_factor([10, 20]) == pytest.approx(5 / 3)
    assert det.size_match_factor() == det.size_match_factor([6, 12]) == 1.0
    before = det.compute_maps(img, px)
    assert det.scale_passes([10, 20]) == [(pytest.approx(5 / 3), None)]
    after = det.compute_maps(img, px * 5 / 3, match=5 / 3)
    np.testing.assert_array_equal(after.maps, before.maps)
    assert after.pixel_size_nm == pytest.approx(px * 5 / 3)  # measured at the true size
    own = det.predict(img, px)
    asked = det.predict(img, px * 5 / 3, classes=[10, 20])
    assert len(own) >= 12 and len(asked) == len(own)
    np.testing.assert_allclose(asked.xy, own.xy, atol=0.5)
    assert set(asked.diameter_nm) <= {10.0, 20.0}
    np.testing.assert_array_equal(asked.diameter_nm == 20.0, own.diameter_nm == 12.0)


def test_candidates_sized_for_other_classes_are_refused():
    """Candidates found for the model's classes carry those classes; selecting 10/20 nm
    gold from them would relabel 12 nm as 10 nm, so it is refused."""
    from golddigger.live import find_candidates

    px = 0.5587
    cfg = SynthConfig(shape=(300, 300), pixel_size_nm=px, classes=(10.0,),
                      counts={10.0: 6}, size_cv=0.0)
    img = generate(cfg, seed=5).image
    det = Detector.from_pretrained(threads=1, precision="float32")
    own = find_candidates(det, img, px)
    with pytest.raises(GoldDiggerError, match="sized for other classes"):
        det.apply_thresholds(own, None, [10, 20])
    theirs = find_candidates(det, img, px, classes=[10, 20])
    got = det.apply_thresholds(theirs, None, [10, 20])
    want = det.predict(img, px, classes=[10, 20])
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got.xy, want.xy)


def test_measured_column_round_trips(tmp_path):
    t = ParticleTable([1.0, 2.0], [3.0, 4.0], [10.0, 20.0], [0.9, 0.8], [0, 0],
                      [10.43, 19.2])
    t.to_csv(tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == \
        "x,y,diameter_nm,score,slice,measured_nm"
    assert ParticleTable.from_csv(tmp_path / "a.csv") == t
    old = ParticleTable([1.0], [3.0], [6.0])
    old.to_csv(tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_text().splitlines()[0] == "x,y,diameter_nm,score,slice"
    assert np.isnan(ParticleTable.from_csv(tmp_path / "b.csv").measured_nm).all()


def test_limits_warn(caplog, monkeypatch):
    det = Detector.from_pretrained(threads=1, precision="float32")
    assert det.check_limits(0.5587) == []
    assert det.check_limits(0.5587, [6, 12]) == []
    assert det.check_limits(0.5587, [10, 25]) == []  # validated through size matching
    msgs = det.check_limits(2.5, [30])
    assert any("outside the 0.37-1.6 nm/px" in m for m in msgs)
    assert any("30 nm gold is outside the 6-25 nm" in m for m in msgs)
    # no shipped model was validated on 30 nm gold; another one that was is named
    assert not any("the model" in m for m in msgs)
    import golddigger.model.detector as detector_module

    monkeypatch.setattr(detector_module, "models_covering", lambda sizes, exclude: ["big"])
    assert any("the model big was validated on these sizes" in m
               for m in det.check_limits(0.5587, [30]))


def test_models_covering(tmp_path, monkeypatch):
    from golddigger.model import folder

    assert folder.validated_gold_nm("fril-gold-v3") == (6.0, 25.0)
    assert folder.validated_gold_nm(tmp_path / "nothing-here") is None
    assert {"fril-gold-v3", "fril-gold-v4"} <= set(folder.models_covering([10, 25]))
    assert folder.models_covering([10, 30]) == []
    assert folder.models_covering([10], exclude="fril-gold-v4") == ["fril-gold-v3"]


def test_a_plane_too_small_at_the_matched_scale_says_so():
    det = Detector.from_pretrained(threads=1, precision="float32")
    img = np.full((40, 40), 120, np.uint8)
    img[18:22, 18:22] = 40
    with pytest.raises(GoldDiggerError, match=r"40 x 40 px, 6 x 6 at the model's scale"):
        det.predict(img, 0.5587, classes=[60])  # shown 60/18 times smaller: 60 nm gold as 18 nm
