"""Any gold size: size classes asked for, diameters measured on the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from golddigger.errors import GoldDiggerError
from golddigger.model.classes import assign_classes, parse_classes
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


def test_limits_warn(caplog):
    det = Detector.from_pretrained(threads=1, precision="float32")
    assert det.check_limits(0.5587) == []
    assert det.check_limits(0.5587, [6, 12]) == []
    msgs = det.check_limits(2.5, [25])
    assert any("outside the 0.37-1.6 nm/px" in m for m in msgs)
    assert any("25 nm gold is outside the 6-18 nm" in m for m in msgs)
    # another shipped model validated on the size is named; none for 60 nm
    assert any("the model fril-gold-v4 was validated on these sizes" in m for m in msgs)
    assert not any("fril-gold-v4" in m for m in det.check_limits(0.5587, [60]))


def test_models_covering(tmp_path, monkeypatch):
    from golddigger.model import folder

    assert folder.validated_gold_nm("fril-gold-v3") == (6.0, 18.0)
    assert folder.validated_gold_nm(tmp_path / "nothing-here") is None
    assert "fril-gold-v4" in folder.models_covering([10, 25])
    assert "fril-gold-v3" not in folder.models_covering([10, 25])
    assert folder.models_covering([10], exclude="fril-gold-v4") == ["fril-gold-v3"]
