"""Estimators pinned by hand, the association and multiple-testing machinery, several
regions, many images: the statistics of issue 10."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from golddigger.analysis.geometry import SetCovariance, distance_to_edge, ripley_rasson_window
from golddigger.analysis.pipeline import analyze_regions
from golddigger.analysis.randomness import NullModel, holm, run_monte_carlo
from golddigger.analysis.replicates import ReplicateK, group_test, pool
from golddigger.analysis.ripley import PairSet, cross_pairs
from golddigger.errors import GoldDiggerError
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

L_SHAPE = Polygon([(0, 0), (600, 0), (600, 200), (200, 200), (200, 600), (0, 600)])


# ---------------------------------------------------------------------------- by hand
def test_ripley_rasson_window_by_hand():
    # lattice: hull = the 9 x 9 square, 4 corners are its only vertices (collinear points
    # are not), n = 100: area 81 * 100 / 96, same centre
    gx, gy = np.meshgrid(np.arange(10.0), np.arange(10.0))
    w = ripley_rasson_window(np.column_stack([gx.ravel(), gy.ravel()]))
    assert w.area == pytest.approx(81 * 100 / 96)
    assert w.centroid.x == pytest.approx(4.5) and w.centroid.y == pytest.approx(4.5)
    # L shape: its 6 corners (the inner one is not a hull vertex: m = 5) and 14 interior
    # points, n = 20; hull = the 600 x 600 square less the 400 x 400 / 2 corner triangle
    rng = np.random.default_rng(0)
    inner = rng.uniform(20, 180, size=(14, 2))
    pts = np.vstack([np.asarray(L_SHAPE.exterior.coords)[:-1], inner])
    w = ripley_rasson_window(pts)
    assert w.area == pytest.approx((600 * 600 - 400 * 400 / 2) * 20 / 15)
    with pytest.raises(GoldDiggerError, match="too few"):
        ripley_rasson_window(pts[:5])
    with pytest.raises(GoldDiggerError, match="line"):
        ripley_rasson_window(np.column_stack([np.arange(12.0), np.arange(12.0)]))


def test_distance_to_edge_by_hand():
    rect = box(0, 0, 100, 40)
    d = distance_to_edge(rect, np.array([[50, 20], [5, 30], [99, 1]]))
    assert np.allclose(d, [20, 5, 1])
    # near the L's inner corner (200, 200): the corner is nearest
    assert distance_to_edge(L_SHAPE, np.array([[150, 150]]))[0] == pytest.approx(50 * 2 ** .5)


def test_cross_k_and_g_by_hand():
    """One a-b pair 5 nm apart in a 100 x 100 nm square."""
    sq = box(0, 0, 100, 100)
    gamma = SetCovariance(sq, 20.0)
    w = 100 * 100 / (95 * 100)  # gamma(5, 0) = 95 x 100
    r = np.array([4.0, 5.0, 10.0])
    ps = cross_pairs(np.array([[10.0, 10.0]]), np.array([[15.0, 10.0]]), gamma, 20.0)
    assert np.allclose(ps.k(r, 0, 1), [0, 1e4 * w, 1e4 * w], rtol=2e-3)
    # the full pair set gives the same cross K
    full = PairSet(np.array([[10.0, 10.0], [15.0, 10.0]]), np.array([0, 1]), gamma, 20.0)
    assert np.allclose(full.k(r, 0, 1), ps.k(r, 0, 1))
    # g at r = 5 with half-width h = 2: |W| / (2 pi r) * (3 / (4 h)) * w
    g = ps.g(np.array([1.0, 5.0, 6.0, 19.0]), 2.0, 0, 1)
    assert math.isnan(g[0]) and math.isnan(g[3])  # r < h, r > r_max - h
    assert g[1] == pytest.approx(1e4 / (2 * np.pi * 5) * 0.375 * w, rel=2e-3)
    assert g[2] == pytest.approx(1e4 / (2 * np.pi * 6) * 0.375 * (1 - 0.25) * w, rel=2e-3)


def test_pair_correlation_of_random_points_is_one():
    rng = np.random.default_rng(3)
    sq = box(0, 0, 1000, 1000)
    gamma = SetCovariance(sq, 100.0)
    r = np.linspace(20, 90, 8)
    gs = [PairSet(rng.uniform(0, 1000, (400, 2)), np.zeros(400, int), gamma, 100.0)
          .g(r, 10.0) for _ in range(10)]
    assert np.abs(np.mean(gs, axis=0) - 1).max() < 0.06


def test_holm_by_hand():
    adj = holm([0.01, 0.04, 0.03, float("nan")])
    # sorted 0.01, 0.03, 0.04 (m = 3): 0.03, max(0.03, 0.06), max(0.06, 0.04)
    assert np.allclose(adj[:3], [0.03, 0.06, 0.06]) and math.isnan(adj[3])
    assert np.allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_pool_and_group_test_by_hand():
    r = np.array([0.0, 1.0])
    a = ReplicateK("a", "s", "all", 2, r, np.array([0.0, 1.0]))  # weight 2
    b = ReplicateK("b", "s", "all", 3, r, np.array([0.0, 3.0]))  # weight 6
    assert np.allclose(pool([a, b]), [0.0, (2 * 1 + 6 * 3) / 8])
    reps = [ReplicateK(f"i{k}", "s", "all", 10, r, np.array([0.0, 1.0 + 5 * (k >= 4)]))
            for k in range(8)]
    groups = {f"i{k}": "KO" if k >= 4 else "WT" for k in range(8)}
    t = group_test(reps, groups, n_perm=199, seed=1)
    # the observed split is the most extreme of the C(8, 4) / 2 = 35 distinct splits
    assert t.groups == ("KO", "WT") and t.p_value < 0.05
    with pytest.raises(GoldDiggerError, match="two groups"):
        group_test(reps, {k: "WT" for k in groups})


# ---------------------------------------------------------------------------- calibration
def _thomas(geom, rng, n_par=6, per=12, sigma=15.0):
    xmin, ymin, xmax, ymax = geom.bounds
    par = rng.uniform((xmin, ymin), (xmax, ymax), (n_par * 3, 2))
    par = par[shapely.contains_xy(geom, par[:, 0], par[:, 1])][:n_par]
    pts = np.repeat(par, per, axis=0) + rng.normal(0, sigma, (len(par) * per, 2))
    pts = pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]
    keep = [0]
    for i in range(1, len(pts)):  # thin to the 6 nm hard core
        if np.min(np.hypot(*(pts[keep] - pts[i]).T)) >= 6.0:
            keep.append(i)
    return pts[keep]


def test_association_tests_calibrated_on_a_seeded_set():
    """Clustered 6 nm gold with independent random 12 nm gold: the test that keeps the
    6 nm gold rejects at its nominal rate; random labels of a clustered pattern: the
    labelling test does too. (n_sim 19: p <= 0.10 is a 10 % test.)"""
    geom = box(0, 0, 500, 300)
    rng = np.random.default_rng(11)
    cond = lab = 0
    n_pat = 20
    for seed in range(n_pat):
        six = _thomas(geom, rng)
        model = NullModel(geom, ("6", "12"), (6.0, 12.0), (len(six), 10))
        twelve, _ = model.simulate(rng, six, np.zeros(len(six), int), moved=1)
        xy = np.vstack([six, twelve])
        cls = np.r_[np.zeros(len(six), int), np.ones(len(twelve), int)]
        mc = run_monte_carlo(xy, cls, model, n_sim=19, seed=seed)
        cond += mc.test("L_mad", "6x12", "12 re-placed, 6 kept").p_value <= 0.10
        cls_lab = rng.permutation(cls)  # the same positions, random labels
        mc = run_monte_carlo(xy, cls_lab, model, n_sim=19, seed=seed)
        lab += mc.test("L_mad", "6x12", "random labels").p_value <= 0.10
    # binomial(20, 0.1): P(X >= 7) = 0.002
    assert cond <= 6 and lab <= 6, (cond, lab)


def test_conditional_test_is_not_valid_for_a_clustered_re_placed_class():
    geom = box(0, 0, 500, 300)
    rng = np.random.default_rng(5)
    six = _thomas(geom, rng, n_par=4, per=20, sigma=10.0)
    model = NullModel(geom, ("6", "12"), (6.0, 12.0), (len(six), 12))
    twelve, _ = model.simulate(rng, six, np.zeros(len(six), int), moved=1)
    xy = np.vstack([six, twelve])
    cls = np.r_[np.zeros(len(six), int), np.ones(len(twelve), int)]
    mc = run_monte_carlo(xy, cls, model, n_sim=299, seed=0)
    assert mc.test("L_mad", "6").verdict == "clustered"
    for t in mc.tests:
        if t.null_model == "6 re-placed, 12 kept":
            assert t.verdict == "not valid (6 is not random)"
    # no duplicate tests when a class is empty
    one = NullModel(geom, ("6", "12"), (6.0, 12.0), (len(six), 0))
    mc = run_monte_carlo(six, np.zeros(len(six), int), one, n_sim=5, seed=0)
    keys = [(t.statistic, t.relation, t.null_model) for t in mc.tests]
    assert sorted(keys) == sorted({("mean_nnd", "6", "random"), ("L_mad", "all", "random"),
                                   ("fraction_clustered", "all", "random")})


# ---------------------------------------------------------------------------- regions
def test_several_regions_background_and_edges():
    synapse = Region(geometry=box(100, 100, 200, 200), name="synapse")
    extra = Region(geometry=box(50, 50, 250, 250), name="extrasynaptic")  # around it
    back = Region(geometry=box(400, 0, 500, 100), name="background")
    xy = np.array([[150, 150], [120, 130], [60, 60], [240, 60], [450, 50], [700, 700]])
    particles = ParticleTable(xy[:, 0], xy[:, 1], np.full(len(xy), 6.0))
    res = analyze_regions(particles, 1.0, [synapse, extra, back], n_sim=0)
    assert [len(r.cls) for r in res] == [2, 2, 1]
    assert res[1].area_nm2 == pytest.approx(200 * 200 - 100 * 100)  # synapse cut out
    rows = {r["region"]: r for res_ in res for r in res_.summary_rows() if r["class"] == "all"}
    assert rows["background"]["density_per_um2"] == pytest.approx(1 / 0.01)
    assert rows["synapse"]["background_density_per_um2"] == pytest.approx(100.0)
    assert rows["synapse"]["specific_density_per_um2"] == pytest.approx(2 / 0.01 - 100)
    nnd_rows = res[0].nnd_rows()
    assert [r["edge_distance_nm"] for r in nnd_rows] == pytest.approx([50, 20])
    assert {r["image"] for r in nnd_rows} == {""} and nnd_rows[0]["region"] == "synapse"
    with pytest.raises(GoldDiggerError, match="named"):
        analyze_regions(particles, 1.0, [synapse, Region(geometry=box(0, 0, 9, 9),
                                                         name="synapse")], n_sim=0)


def _roiset(path, regions):
    from roifile import roiwrite

    from golddigger.io.rois import region_to_imagej_roi

    roiwrite(path, [region_to_imagej_roi(r, r.name) for r in regions], mode="w")


def test_cli_regions_folder_groups_and_bad_input(tmp_path):
    from golddigger.cli.main import main

    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    data.mkdir()
    groups = ["image,group"]
    for k in range(6):
        xy = rng.uniform(10, 290, (25, 2))
        ParticleTable(xy[:, 0], xy[:, 1], np.where(np.arange(25) < 20, 6.0, 12.0)).to_csv(
            data / f"syn{k}.csv")
        groups.append(f"syn{k},{'KO' if k % 2 else 'WT'}")
    (tmp_path / "groups.csv").write_text("\n".join(groups) + "\n")
    rois = tmp_path / "rois"
    rois.mkdir()
    for k in range(6):
        _roiset(rois / f"syn{k}.zip", [Region(geometry=box(0, 0, 150, 300), name="synapse"),
                                       Region(geometry=box(150, 0, 300, 300),
                                              name="background")])
    out = tmp_path / "out"
    assert main(["analyze", str(data), "-o", str(out), "--pixel-size", "1", "--roi",
                 str(rois), "--n-sim", "0", "--groups", str(tmp_path / "groups.csv"),
                 "--no-plots", "-q"]) == 0
    assert (out / "syn0" / "synapse" / "summary.csv").is_file()
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 2 * 3  # images x regions x (6, 12, all)
    assert {r["image"] for r in rows} == {f"syn{k}" for k in range(6)}
    assert {r["region"] for r in rows} == {"synapse", "background"}
    with open(out / "groups.csv", newline="") as fh:
        tests = list(csv.DictReader(fh))
    assert {(t["region"], t["relation"]) for t in tests} >= {("synapse", "all")}
    assert all(0 < float(t["p_value"]) <= 1 for t in tests)
    pooled = (out / "pooled_l.csv").read_text().splitlines()
    assert pooled[0].startswith("region,relation,group,r_nm,k_nm2,l_minus_r_nm")
    # bad input: one clear line, exit 1 or 2, nothing written for that input
    bad = tmp_path / "bad"
    assert main(["analyze", str(data / "syn0.csv"), "-o", str(bad), "--pixel-size", "1",
                 "--roi", str(data / "syn1.csv"), "-q"]) == 1
    assert not (bad / "syn0").exists()
    nan_roi = tmp_path / "nan.csv"
    nan_roi.write_text("x,y\n0,0\n100,nan\n100,100\n")
    assert main(["analyze", str(data / "syn0.csv"), "-o", str(bad), "--pixel-size", "1",
                 "--roi", str(nan_roi), "-q"]) == 1
    assert main(["analyze", str(data / "syn0.csv"), "-o", str(bad), "--pixel-size", "1",
                 "--classes", "6", "6", "-q"]) == 2
    assert not bad.exists() or not any(bad.rglob("*.csv"))


def test_fiji_analyze_named_regions_append_columns_and_log(tmp_path):
    """The installed macro's call: several named area ROIs of the ROI Manager are analysed
    region by region; the tables carry image and region; the Log names the folder."""
    from argparse import Namespace

    from roifile import roiwrite

    from golddigger.imagej.analyze import run_from_files
    from golddigger.imagej.backend import safe_stem
    from golddigger.imagej.calls import ANALYZE_FIELDS
    from golddigger.imagej.options import parse_options
    from golddigger.io.images import write_tiff
    from golddigger.io.rois import region_to_imagej_roi, write_roiset

    write_tiff(tmp_path / "image.tif", np.zeros((300, 300), np.uint8), 1.0)
    rng = np.random.default_rng(2)
    xy = rng.uniform(10, 290, (40, 2))
    rois = tmp_path / "rois.zip"
    write_roiset(rois, ParticleTable(xy[:, 0], xy[:, 1], np.full(40, 6.0)), 1.0)
    roiwrite(rois, [region_to_imagej_roi(Region(geometry=box(0, 0, 150, 300)), "synapse"),
                    region_to_imagej_roi(Region(geometry=box(150, 0, 300, 300)),
                                         "background")], mode="a")
    values = parse_options("region=roi_manager simulations=0 cluster_distance=20 "
                           f"min_cluster_size=2 output=[{tmp_path / 'res'}]", ANALYZE_FIELDS)
    args = Namespace(out=str(tmp_path), image=str(tmp_path / "image.tif"), current_slice=0,
                     rois=str(rois), roi="", name="syn A.tif")
    status = run_from_files(args, values)
    assert status["regions"] == 2 and status["particles"] == 40
    with open(tmp_path / "ij-summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["region"] for r in rows} == {"synapse", "background"}
    assert {r["image"] for r in rows} == {safe_stem("syn A.tif")}
    log = (tmp_path / "ij-log.txt").read_text()
    assert str(tmp_path / "res") in log.splitlines()[0]
    settings = list((tmp_path / "res").rglob("settings.json"))
    assert len(settings) == 2
    assert all('"cluster_distance_nm": 20.0' in p.read_text() for p in settings)


def test_fiji_analyze_hull_says_why_no_tests_and_convex_opt_in(tmp_path):
    """Region=hull: no tests, one Log line says why; Convex_estimate runs them."""
    from argparse import Namespace

    from golddigger.imagej.analyze import run_from_files
    from golddigger.imagej.calls import ANALYZE_FIELDS
    from golddigger.imagej.options import parse_options
    from golddigger.io.images import write_tiff
    from golddigger.io.rois import write_roiset

    write_tiff(tmp_path / "image.tif", np.zeros((300, 300), np.uint8), 1.0)
    xy = np.random.default_rng(4).uniform(10, 290, (40, 2))
    rois = tmp_path / "rois.zip"
    write_roiset(rois, ParticleTable(xy[:, 0], xy[:, 1], np.full(40, 6.0)), 1.0)
    for opt_in, out in (("", "a"), (" convex_estimate", "b")):
        (tmp_path / out).mkdir()
        values = parse_options(f"region=hull simulations=9{opt_in} "
                               f"output=[{tmp_path / out / 'res'}]", ANALYZE_FIELDS)
        args = Namespace(out=str(tmp_path / out), image=str(tmp_path / "image.tif"),
                         current_slice=0, rois=str(rois), roi="", name="hull.tif")
        run_from_files(args, values)
        log = (tmp_path / out / "ij-log.txt").read_text()
        with open(tmp_path / out / "ij-randomness.csv", newline="") as fh:
            tests = list(csv.DictReader(fh))
        if opt_in:
            assert tests and "tests not run" not in log and "tests significant" in log
        else:
            assert not tests and "randomness tests not run" in log and "Convex_estimate" in log
