"""Spatial analysis: hand-computed densities, NNDs, clusters, regions, K, outputs, CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from golddigger.analysis import TABLE_NAMES, analysis_tables, analyze, write_outputs
from golddigger.analysis.clusters import cluster_labels, describe_clusters
from golddigger.analysis.geometry import (
    SetCovariance,
    mask_to_geometry,
    region_geometry_nm,
    uniform_points,
)
from golddigger.analysis.neighbours import cross_nnd, nnd
from golddigger.analysis.pipeline import nearest_by_class
from golddigger.analysis.ripley import PairSet
from golddigger.analysis.simulate import simulate_pattern
from golddigger.errors import GoldDiggerError
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

L_SHAPE = Polygon([(0, 0), (600, 0), (600, 200), (200, 200), (200, 600), (0, 600)])
RING = Point(300, 300).buffer(300, quad_segs=32).difference(
    Point(300, 300).buffer(120, quad_segs=32))


# ---------------------------------------------------------------------------- hand checks
def test_density_and_nnd_match_hand_computation():
    # 2 nm pixels; square region 0..100 px = 200 x 200 nm = 0.04 um2
    particles = ParticleTable([10, 13, 10, 60], [10, 10, 14, 60], [6, 6, 6, 12])
    region = Region.from_polygon([(0, 0), (100, 0), (100, 100), (0, 100)])
    res = analyze(particles, 2.0, region, n_sim=0)
    assert res.area_um2 == pytest.approx(0.04)
    summary = {row["class"]: row for row in res.tables()["summary"]}
    assert summary["6"]["n"] == 3 and summary["12"]["n"] == 1
    assert summary["6"]["density_per_um2"] == pytest.approx(75.0)
    assert summary["all"]["density_per_um2"] == pytest.approx(100.0)
    # within 6 nm: (10,10)-(13,10) = 3 px = 6 nm; (10,14)-(10,10) = 4 px = 8 nm
    assert res.nnd("6") == pytest.approx([6.0, 6.0, 8.0])
    assert summary["6"]["mean_nnd_nm"] == pytest.approx(20 / 3)
    # 12 -> nearest 6: (60,60) to (10,14): hypot(50, 46) px (to (13,10): hypot(47, 50))
    assert res.nnd("12", "6") == pytest.approx([2 * math.hypot(50, 46)])
    assert res.nnd("6", "12")[0] == pytest.approx(2 * math.hypot(50, 50))
    assert np.isnan(res.nnd("12")).all()  # a single 12 nm particle has no 12 nm neighbour
    rows = res.tables()["nnd"]
    assert rows[0]["nearest_6"] == 2 and rows[2]["nearest_6"] == 1
    assert rows[0]["nnd_to_12_nm"] == pytest.approx(2 * math.hypot(50, 50))
    assert rows[3]["nearest_12"] == 0 and rows[0]["nearest_12"] == 4  # 0: none


def test_nnd_functions_and_duplicates():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    d, j = nnd(xy)
    assert d == pytest.approx([0.0, 0.0, 5.0])
    assert j[0] == 1 and j[1] == 0 and j[2] in (0, 1)
    d, j = cross_nnd(np.array([[1.0, 1.0]]), np.array([[4.0, 5.0], [10.0, 10.0]]))
    assert d == pytest.approx([5.0]) and j.tolist() == [0]
    assert np.isnan(nnd(np.array([[1.0, 2.0]]))[0]).all()
    out = nearest_by_class(np.array([[0.0, 0], [3, 0], [0, 4]]), np.array([0, 0, 1]), 2)
    assert out[0][0] == pytest.approx([3, 3, 4])  # to the nearest other 0
    assert out[1][0][:2] == pytest.approx([4, 5]) and np.isnan(out[1][0][2])


def test_clusters_hand_computation():
    # square of side 10 nm (4 points, 1 of class 1) + triangle + a loner
    xy = np.array([[0, 0], [10, 0], [10, 10], [0, 10],
                   [100, 0], [110, 0], [100, 12],
                   [300, 300]], dtype=float)
    cls = np.array([0, 0, 0, 1, 0, 0, 0, 0])
    labels = cluster_labels(xy, distance_nm=12.0, min_size=3)
    assert labels.tolist() == [1, 1, 1, 1, 2, 2, 2, 0]
    clusters = describe_clusters(xy, cls, labels, ("6", "12"))
    a, b = clusters
    assert a.n == 4 and a.counts == {"6": 3, "12": 1} and a.classes == "6;12"
    assert a.hull_area_nm2 == pytest.approx(100.0)
    assert a.centroid_nm == pytest.approx((5.0, 5.0))
    assert b.hull_area_nm2 == pytest.approx(0.5 * 10 * 12)
    assert b.centroid_nm == pytest.approx((310 / 3, 4.0))
    # edge to edge: (10,0) to (100,0) = 90; centroid to centroid
    assert a.nearest_edge_id == 2 and a.nearest_edge_nm == pytest.approx(90.0)
    assert a.nearest_centroid_nm == pytest.approx(math.hypot(310 / 3 - 5, 1.0))
    assert b.nearest_edge_id == 1 and b.nearest_centroid_id == 1
    # a larger distance joins them; a bigger min size drops the triangle
    assert cluster_labels(xy, 90.0, 3).tolist() == [1] * 7 + [0]
    assert cluster_labels(xy, 12.0, 4).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]


# ---------------------------------------------------------------------------- regions
def test_mask_to_geometry_ring_has_hole_and_area():
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(xx - 100, yy - 100)
    mask = (r <= 80) & (r >= 30)
    geom = mask_to_geometry(mask)
    assert geom.area == pytest.approx(mask.sum(), rel=0.02)
    assert not geom.contains(Point(100, 100))  # the hole
    assert geom.contains(Point(100 + 55, 100))
    scaled = region_geometry_nm(Region.from_mask(mask), 0.5)
    assert scaled.area == pytest.approx(geom.area * 0.25)


def test_uniform_and_hard_core_patterns_stay_inside_concave_regions():
    rng = np.random.default_rng(3)
    for geom in (L_SHAPE, RING):
        pts = uniform_points(geom, 2000, rng)
        assert len(pts) == 2000
        assert shapely.contains_xy(geom, pts[:, 0], pts[:, 1]).all()
        xy, cls = simulate_pattern(geom, (300, 20), (6.0, 12.0), rng)
        assert np.bincount(cls).tolist() == [300, 20]
        assert shapely.contains_xy(geom, xy[:, 0], xy[:, 1]).all()
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        need = (np.array([6.0, 12.0])[cls][:, None] + np.array([6.0, 12.0])[cls][None]) / 2
        assert (d >= need - 1e-9).all()
    # the ring's hole: nothing near the centre
    xy, _ = simulate_pattern(RING, (500,), (6.0,), rng)
    assert np.hypot(xy[:, 0] - 300, xy[:, 1] - 300).min() >= 120 - 1e-6


def test_crowded_region_fails_clearly():
    with pytest.raises(GoldDiggerError, match="cannot hold"):
        simulate_pattern(box(0, 0, 50, 50), (200,), (6.0,), np.random.default_rng(0))


def test_set_covariance_matches_exact_polygon_overlap():
    for geom in (L_SHAPE, RING):
        gamma = SetCovariance(geom, 150.0)
        for hx, hy in [(0, 0), (30, 0), (0, -70), (100, 100), (-140, 20)]:
            exact = geom.intersection(affinity.translate(geom, hx, hy)).area
            assert gamma(np.array([hx]), np.array([hy]))[0] == pytest.approx(exact, rel=0.01)


def test_k_function_matches_brute_force():
    """Translation-corrected K and cross-K against a loop with exact overlaps."""
    rng = np.random.default_rng(11)
    xy = uniform_points(L_SHAPE, 25, rng)
    cls = np.array([0] * 15 + [1] * 10)
    r = np.array([20.0, 60.0, 120.0])
    area = L_SHAPE.area
    pairs = PairSet(xy, cls, SetCovariance(L_SHAPE, 120.0), 120.0)

    def brute(sel_i, sel_j, same):
        total = np.zeros(r.size)
        for i in np.flatnonzero(sel_i):
            for j in np.flatnonzero(sel_j):
                if i == j:
                    continue
                h = xy[j] - xy[i]
                dist = math.hypot(*h)
                overlap = L_SHAPE.intersection(affinity.translate(L_SHAPE, *h)).area
                total += (dist <= r) * area / overlap
        n_i, n_j = sel_i.sum(), sel_j.sum()
        return area * total / (n_i * (n_i - 1) if same else n_i * n_j)

    everyone = np.ones(25, dtype=bool)
    assert pairs.k(r) == pytest.approx(brute(everyone, everyone, True), rel=0.02)
    assert pairs.k(r, 0) == pytest.approx(brute(cls == 0, cls == 0, True), rel=0.02)
    assert pairs.k(r, 0, 1) == pytest.approx(brute(cls == 0, cls == 1, False), rel=0.02)


# ---------------------------------------------------------------------------- analyze / outputs
def _ring_particles(n: int = 60, seed: int = 0) -> tuple[ParticleTable, Region]:
    """Particles in a ring region given as a mask (1 nm pixels)."""
    yy, xx = np.mgrid[:400, :400]
    r = np.hypot(xx - 200, yy - 200)
    mask = (r <= 180) & (r >= 60)
    rng = np.random.default_rng(seed)
    geom = mask_to_geometry(mask)
    pts = uniform_points(geom.buffer(-2), n, rng)
    d = np.where(np.arange(n) % 5 == 0, 12.0, 6.0)
    return ParticleTable(pts[:, 0], pts[:, 1], d), Region.from_mask(mask)


def test_analyze_with_mask_region_drops_outside_and_writes_outputs(tmp_path):
    particles, region = _ring_particles()
    outside = ParticleTable([200, 5], [200, 5], [6, 6])  # the hole and a corner
    res = analyze(ParticleTable.concat([particles, outside]), 1.0, region, n_sim=19, seed=1,
                  name="ring")
    assert len(res.cls) == 60 and res.n_outside == 2
    assert res.area_nm2 == pytest.approx(region.area_px(), rel=0.02)
    mc = res.monte_carlo
    assert mc is not None and mc.n_sim == 19
    assert {t.statistic for t in mc.tests} == {"mean_nnd", "L_mad", "fraction_clustered"}
    assert {(t.relation, t.null_model) for t in mc.tests if t.statistic == "mean_nnd"} == {
        ("6", "random"), ("12", "random"), ("12->6", "12 re-placed, 6 kept"),
        ("6->12", "6 re-placed, 12 kept")}
    assert {(t.relation, t.null_model) for t in mc.tests if t.statistic == "L_mad"} == {
        ("all", "random"), ("6", "random"), ("12", "random"),
        ("6x12", "12 re-placed, 6 kept"), ("6x12", "6 re-placed, 12 kept"),
        ("6x12", "random labels")}
    for t in mc.tests:
        assert 1 / 20 <= t.p_value <= t.p_adjusted <= 1.0
    tables = analysis_tables(res)
    assert set(tables) == set(TABLE_NAMES)
    for name, rows in tables.items():
        assert rows, name
        cols = list(rows[0])
        assert all(list(row) == cols for row in rows), name
    written = write_outputs(res, tmp_path / "ring", image=np.zeros((400, 400), np.uint8))
    for name in (*TABLE_NAMES, "settings", "nnd_plot", "l_plot", "map_plot"):
        assert written[name].is_file() and written[name].stat().st_size > 0, name
    assert written["map_plot"].read_bytes()[:4] == b"\x89PNG"
    with open(written["summary"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["class"] for r in rows] == ["6", "12", "all"]
    assert {r["image"] for r in rows} == {"ring"} and rows[0]["region_rule"] == "given"
    assert int(rows[2]["n"]) == 60 and int(rows[2]["n_outside_region"]) == 2
    assert [int(r["n_outside_region"]) for r in rows[:2]] == [2, 0]
    with open(written["randomness"], newline="") as fh:
        head = next(csv.reader(fh))
    assert head == ["image", "region", "statistic", "relation", "observed", "sim_mean",
                    "sim_2.5%", "sim_97.5%", "p_value", "alternative", "n_sim", "verdict",
                    "p_adjusted", "null_model"]
    settings = json.loads(written["settings"].read_text())
    assert settings["n_sim"] == 19 and settings["classes_nm"] == [6.0, 12.0]
    with pytest.raises(GoldDiggerError, match="overwrite"):
        write_outputs(res, tmp_path / "ring")
    # overwrite without tests or plots: no stale file of the first run is left
    quick = analyze(particles, 1.0, region, n_sim=0)
    written = write_outputs(quick, tmp_path / "ring", overwrite=True, plots=False)
    assert sorted(p.name for p in (tmp_path / "ring").iterdir()) == sorted(
        p.name for p in written.values())
    assert not (tmp_path / "ring" / "l_function.png").exists()
    assert (tmp_path / "ring" / "randomness.csv").read_text().startswith(
        "image,region,statistic,")


def test_analyze_default_region_and_input_checks():
    # default region: Ripley-Rasson. A 10 x 10 lattice (1 nm pixels at 0.5 nm/px): hull =
    # the 4.5 nm square, m = 4 corners of n = 100 points: area 4.5^2 * 100 / 96
    gx, gy = np.meshgrid(np.arange(10.0), np.arange(10.0))
    lattice = ParticleTable(gx.ravel(), gy.ravel(), np.full(100, 6.0))
    res = analyze(lattice, 0.5, n_sim=0)
    assert res.area_nm2 == pytest.approx(4.5 ** 2 * 100 / 96, rel=1e-9)
    assert res.settings["region_rule"].startswith("estimated from the particles")
    assert res.tables()["summary"][0]["region"] == "ripley-rasson"
    old = analyze(lattice, 0.5, n_sim=0, buffer_nm=30)  # the old rule, on request
    assert old.area_nm2 == pytest.approx(Polygon([(0, 0), (4.5, 0), (4.5, 4.5), (0, 4.5)])
                                         .buffer(30, quad_segs=16).area, rel=1e-9)
    particles = ParticleTable([100, 150, 130], [100, 100, 160], [6, 6, 6])
    with pytest.raises(GoldDiggerError, match="too few to estimate the region"):
        analyze(particles, 0.5, n_sim=0)
    with pytest.raises(GoldDiggerError, match="given twice"):
        analyze(particles, 0.5, box(0, 0, 200, 200), classes=[6, 6], n_sim=0)
    stack = ParticleTable([1, 2, 3], [1, 2, 3], [6, 6, 6], slice=[0, 0, 1])
    with pytest.raises(GoldDiggerError, match="slice"):
        analyze(stack, 1.0, box(0, 0, 10, 10), n_sim=0)
    assert len(analyze(stack, 1.0, box(0, 0, 10, 10), n_sim=0, slice=0).cls) == 2
    with pytest.raises(GoldDiggerError, match="no particles"):
        analyze(ParticleTable.empty(), 1.0)
    with pytest.raises(GoldDiggerError):
        analyze(particles, -1.0)
    empty = analyze(ParticleTable.empty(), 1.0, box(0, 0, 100, 100), classes=[6, 12])
    assert empty.monte_carlo is None and empty.tables()["summary"][0]["n"] == 0


def test_no_region_runs_no_tests_and_says_why(tmp_path, capsys):
    """Without a region, counts/densities/NND/clusters on the Ripley-Rasson estimate, but no
    randomness tests (a convex estimate misleads for non-convex membranes); the summary,
    settings and the CLI line say why, and randomness.csv keeps its header."""
    from golddigger.cli.main import main

    particles, _ = _ring_particles(40, seed=3)
    res = analyze(particles, 1.0, n_sim=9, name="ring")
    assert res.monte_carlo is None and res.randomness_rows() == []
    assert len(res.cls) == 40 and res.area_um2 > 0
    note = res.settings["tests_note"]
    assert note.startswith("randomness tests not run") and "--roi" in note
    assert "--estimate-region convex" in note
    assert "estimate" in res.settings["region_rule"]
    assert {row["tests_note"] for row in res.summary_rows()} == {note}
    written = write_outputs(res, tmp_path / "w", plots=False)
    header = written["randomness"].read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("image,region,statistic,relation")
    assert "p_adjusted" in header[0] and "verdict" in header[0]
    # n_sim = 0: the user asked for no tests; nothing to explain
    assert analyze(particles, 1.0, n_sim=0).settings["tests_note"] == ""
    with pytest.raises(ValueError, match="estimate_region"):
        analyze(particles, 1.0, n_sim=0, estimate_region="hull")
    csv_path = tmp_path / "ring.csv"
    particles.to_csv(csv_path)
    assert main(["analyze", str(csv_path), "-o", str(tmp_path / "cli"), "--pixel-size", "1",
                 "--n-sim", "9", "--no-plots"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("ring [")]
    assert len(line) == 1 and "randomness tests not run" in line[0]
    assert "--estimate-region convex" in line[0]
    assert len((tmp_path / "cli" / "ring" / "randomness.csv").read_text().splitlines()) == 1


def test_convex_estimate_opt_in_runs_the_tests(tmp_path):
    from golddigger.cli.main import main

    particles, region = _ring_particles(40, seed=3)
    res = analyze(particles, 1.0, n_sim=9, estimate_region="convex")
    assert res.monte_carlo is not None and len(res.randomness_rows()) > 0
    assert res.settings["tests_note"] == "" and res.settings["estimate_region"] == "convex"
    assert "by request" in res.settings["region_rule"]
    # with a region given, the tests run whatever estimate_region says
    given = analyze(particles, 1.0, region, n_sim=9)
    assert given.monte_carlo is not None and given.settings["tests_note"] == ""
    csv_path = tmp_path / "ring.csv"
    particles.to_csv(csv_path)
    assert main(["analyze", str(csv_path), "-o", str(tmp_path / "cli"), "--pixel-size", "1",
                 "--n-sim", "9", "--no-plots", "-q", "--estimate-region", "convex"]) == 0
    rows = (tmp_path / "cli" / "ring" / "randomness.csv").read_text().splitlines()
    assert len(rows) > 1
    settings = json.loads((tmp_path / "cli" / "ring" / "settings.json").read_text())
    assert settings["estimate_region"] == "convex"


def test_cli_analyze(tmp_path):
    from golddigger.cli.main import main

    particles, region = _ring_particles(40, seed=2)
    csv_path = tmp_path / "ring.csv"
    particles.to_csv(csv_path)
    # the ring's outer circle as polygon vertices (x,y in pixels)
    verts = np.asarray(Point(200, 200).buffer(180, quad_segs=16).exterior.coords)[:-1]
    roi = tmp_path / "ring_region.csv"
    roi.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in verts))
    out = tmp_path / "out"
    args = ["analyze", str(csv_path), "-o", str(out), "--pixel-size", "1", "--n-sim", "9",
            "--roi", str(tmp_path), "-q"]
    assert main(args) == 0
    summary = (out / "ring" / "summary.csv").read_text()
    assert summary.splitlines()[-1].startswith("ring,ring_region,all,40,")
    assert (out / "ring" / "l_function.png").is_file()
    assert main(args) == 2  # refuses to overwrite
    assert main(args + ["--overwrite", "--no-plots", "--cluster-distance", "20"]) == 0
    assert not (out / "ring" / "map.png").exists()
    assert json.loads((out / "ring" / "settings.json").read_text())[
        "cluster_distance_nm"] == 20
    # no pixel size anywhere
    assert main(["analyze", str(csv_path), "-o", str(tmp_path / "x"), "-q"]) == 2
    # a stack: one folder per slice
    stack = ParticleTable.concat([particles, ParticleTable(particles.x[:10], particles.y[:10],
                                                           particles.diameter_nm[:10],
                                                           slice=np.ones(10, int))])
    stack.to_csv(tmp_path / "stack.csv")
    assert main(["analyze", str(tmp_path / "stack.csv"), "-o", str(out), "--pixel-size", "1",
                 "--n-sim", "0", "--no-plots", "-q"]) == 0
    assert (out / "stack" / "slice1" / "summary.csv").read_text().splitlines()[-1].startswith(
        "stack slice 1,ripley-rasson,all,40,")
    assert (out / "stack" / "slice2" / "summary.csv").read_text().splitlines()[-1].startswith(
        "stack slice 2,ripley-rasson,all,10,")


REAL = Path(__file__).parents[1].parent / "shared/data/mpfi-fril"


@pytest.mark.realdata
def test_real_labels_s4(tmp_path):
    path = REAL / "labels/S4.csv"
    if not path.is_file():
        pytest.skip("real data not available")
    particles = ParticleTable.from_csv(path)
    res = analyze(particles, 0.5587, n_sim=19, seed=0, name="S4")
    assert res.counts() == {"6": 111, "12": 2}
    assert 0.15 < res.area_um2 < 0.30
    summary = {row["class"]: row for row in res.tables()["summary"]}
    assert summary["6"]["density_per_um2"] == pytest.approx(111 / res.area_um2)
    assert 15 < summary["6"]["mean_nnd_nm"] < 40
