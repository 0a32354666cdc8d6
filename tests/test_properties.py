"""Property-based tests: the readers never fail with anything but a clear
GoldDiggerError/ValueError whatever the bytes, and the evaluator's counts always add up."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from golddigger.errors import GoldDiggerError
from golddigger.evaluate import ALL, evaluate_image
from golddigger.io.annotations import read_particles
from golddigger.io.images import read_image
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def scratch() -> Path:
    with tempfile.TemporaryDirectory(prefix="gd-props-") as d:
        yield Path(d)


@pytest.fixture(autouse=True)
def _quiet_tifffile():
    # tifffile logs about every broken file it is shown; hundreds of them here
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


def _expect_clean(fn):
    """Run ``fn``: it may succeed or raise ValueError (GoldDiggerError is one); anything
    else (IndexError, OverflowError, csv.Error, struct.error, ...) fails the test."""
    try:
        return fn()
    except (GoldDiggerError, ValueError):
        return None


# ---------------------------------------------------------------------------- CSV readers
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**40, 10**40).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-0", "1e400", "1,5", "0x10", "NaN", "1.5e-3",
                     '"', '""', "\r", "\x00"]),
)
CELLS = st.one_of(NUMBERS, st.text(max_size=5))
HEADER = st.lists(st.sampled_from(["x", "y", "diameter_nm", "score", "slice", "X", "Y", "XM",
                                   "YM", "Area", "Slice", "Frame", " ", "", "x "]),
                  max_size=6)


@st.composite
def csv_text(draw) -> str:
    sep = draw(st.sampled_from([",", "\t", ";"]))
    header = draw(HEADER)
    rows = draw(st.lists(st.lists(CELLS, max_size=7), max_size=6))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return sep.join(header) + eol + eol.join(sep.join(r) for r in rows)


@SETTINGS
@given(text=csv_text(), name=st.sampled_from(["p.csv", "gold 12nm.csv", "r.txt", "t.tsv"]),
       px=st.sampled_from([None, 0.5587]))
def test_csv_readers_never_crash(scratch, text, name, px):
    path = scratch / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    for table in (_expect_clean(lambda: ParticleTable.from_csv(path)),
                  _expect_clean(lambda: read_particles(path, px))):
        if table is not None:  # whatever is accepted is usable
            assert np.isfinite(table.x).all() and np.isfinite(table.y).all()
            assert np.isfinite(table.diameter_nm).all()
            assert (table.slice >= 0).all()


@SETTINGS
@given(data=st.binary(max_size=400))
def test_csv_readers_on_random_bytes(scratch, data):
    path = scratch / "b.csv"
    path.write_bytes(data)
    _expect_clean(lambda: ParticleTable.from_csv(path))
    _expect_clean(lambda: read_particles(path, 1.0, 6.0))


finite = st.floats(-1e6, 1e6, allow_nan=False)


@SETTINGS
@given(rows=st.lists(st.tuples(finite, finite, st.sampled_from([6.0, 12.0, 18.0]),
                               st.floats(0, 1), st.integers(0, 100)), max_size=20))
def test_particle_csv_round_trip(scratch, rows):
    table = ParticleTable(*(np.array(c) for c in zip(*rows, strict=True))) if rows \
        else ParticleTable.empty()
    path = scratch / "rt.csv"
    table.to_csv(path)
    back = ParticleTable.from_csv(path)
    assert len(back) == len(table)
    np.testing.assert_allclose(back.x, table.x, atol=0.005 + 1e-9)
    np.testing.assert_allclose(back.y, table.y, atol=0.005 + 1e-9)
    np.testing.assert_array_equal(back.diameter_nm, table.diameter_nm)
    np.testing.assert_array_equal(back.slice, table.slice)


# ---------------------------------------------------------------------------- image reader
MAGIC = st.sampled_from([b"", b"II*\x00", b"MM\x00*", b"II+\x00", b"II*\x00\x08\x00\x00\x00",
                         b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"PK\x03\x04"])


@SETTINGS
@given(magic=MAGIC, body=st.binary(max_size=600),
       name=st.sampled_from(["a.tif", "a.png", "a.jpg", "a.dat", "a"]))
def test_read_image_on_random_bytes(scratch, magic, body, name):
    path = scratch / name
    path.write_bytes(magic + body)
    img = _expect_clean(lambda: read_image(path, 1.0))
    if img is not None:
        assert img.data.ndim in (2, 3) and min(img.data.shape[-2:]) >= 16


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), cut=st.floats(0.05, 0.95),
       compression=st.sampled_from([None, "zlib"]))
@example(seed=6990, cut=0.15625, compression=None)  # a series of shape (): was IndexError
def test_read_image_on_damaged_tiff(scratch, seed, cut, compression):
    """A real TIFF, cut short and with a few bytes flipped."""
    import tifffile

    rng = np.random.default_rng(seed)
    path = scratch / "d.tif"
    tifffile.imwrite(path, rng.integers(0, 255, (32, 40)).astype(np.uint8),
                     compression=compression, rowsperstrip=8)
    data = bytearray(path.read_bytes())
    data = data[: max(8, int(len(data) * cut))]
    for i in rng.integers(0, len(data), 3):
        data[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    _expect_clean(lambda: read_image(path, 1.0))


# ---------------------------------------------------------------------------- evaluator
@st.composite
def point_sets(draw):
    n_lab = draw(st.integers(0, 25))
    n_pred = draw(st.integers(0, 25))
    coord = st.floats(0, 200, allow_nan=False)
    cls = st.sampled_from([6.0, 12.0, 18.0])
    sl = st.integers(0, 2)

    def table(n):
        if n == 0:
            return ParticleTable.empty()
        cols = [draw(st.lists(s, min_size=n, max_size=n)) for s in (coord, coord, cls)]
        return ParticleTable(*cols, score=None, slice=draw(st.lists(sl, min_size=n,
                                                                      max_size=n)))

    labels, preds = table(n_lab), table(n_pred)
    region = None
    if draw(st.booleans()):
        x0, y0 = draw(coord), draw(coord)
        w, h = draw(st.floats(5, 150)), draw(st.floats(5, 150))
        region = Region.from_polygon([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)])
    return labels, preds, region


@SETTINGS
@given(case=point_sets(), px=st.sampled_from([0.5587, 1.0, 2.0]),
       radius=st.floats(1.0, 20.0))
def test_evaluator_counts_add_up(case, px, radius):
    labels, preds, region = case
    score = evaluate_image(labels, preds, px, region=region, radius_nm=radius)
    where = score.region
    n_lab = int(where.contains(labels.x, labels.y).sum()) if where is not None else len(labels)
    n_pred = int(where.contains(preds.x, preds.y).sum()) if where is not None else len(preds)
    if region is None and len(labels):
        assert n_lab == len(labels)  # the labels' own hull holds them all
    total = score.scores[ALL]
    assert total.tp + total.fn == n_lab
    assert total.tp + total.fp == n_pred
    per_class_tp = sum(s.tp for k, s in score.scores.items() if k != ALL)
    assert sum(s.tp + s.fn for k, s in score.scores.items() if k != ALL) == n_lab
    assert sum(s.tp + s.fp for k, s in score.scores.items() if k != ALL) == n_pred
    assert per_class_tp <= total.tp  # ignoring class can only match more
    for s in score.scores.values():
        assert 0.0 <= s.f1 <= 1.0
        assert 0.0 <= s.precision <= 1.0 and 0.0 <= s.recall <= 1.0
        assert (s.errors_nm <= radius + 1e-9).all() and s.errors_nm.size == s.tp


@SETTINGS
@given(case=point_sets(), px=st.sampled_from([0.5587, 1.0]))
def test_evaluator_perfect_predictions(case, px):
    labels, _, region = case
    assume(len(labels) > 0)
    score = evaluate_image(labels, labels, px, region=region)
    for s in score.scores.values():
        assert s.f1 == 1.0 and s.fp == 0 and s.fn == 0
        assert s.loc_error_nm in (None, 0.0)

