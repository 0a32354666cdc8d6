"""Randomness tests: calibrated under CSR, powerful against clustering, region-aware."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from golddigger.analysis import analyze
from golddigger.analysis.randomness import (
    NullModel,
    global_mad_test,
    rank_p_value,
    run_monte_carlo,
)
from golddigger.analysis.ripley import PairSet
from golddigger.analysis.simulate import simulate_pattern
from golddigger.particles import ParticleTable

L_SHAPE = Polygon([(0, 0), (600, 0), (600, 200), (200, 200), (200, 600), (0, 600)])
ARM = box(0, 0, 600, 200)  # the L's horizontal arm


def _uniform(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points by plain rejection (independent of the package's sampler)."""
    xmin, ymin, xmax, ymax = geom.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        p = rng.uniform((xmin, ymin), (xmax, ymax), size=(4 * n, 2))
        out = np.vstack([out, p[shapely.contains_xy(geom, p[:, 0], p[:, 1])]])
    return out[:n]


def _thomas(geom, n_parents: int, per_parent: int, sigma: float,
            rng: np.random.Generator) -> np.ndarray:
    """A Thomas cluster process: Gaussian offspring around uniform parents, kept inside."""
    parents = _uniform(geom, n_parents, rng)
    pts = np.repeat(parents, per_parent, axis=0) + rng.normal(0, sigma, (n_parents * per_parent,
                                                                          2))
    return pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]


def test_rank_p_value_by_hand():
    sims = np.arange(1, 20, dtype=float)  # 19 simulations 1..19
    assert rank_p_value(0.0, sims, "less") == pytest.approx(1 / 20)
    assert rank_p_value(0.0, sims) == pytest.approx(2 / 20)
    assert rank_p_value(100.0, sims, "greater") == pytest.approx(1 / 20)
    assert rank_p_value(10.0, sims) == 1.0
    assert rank_p_value(5.0, sims, "less") == pytest.approx(6 / 20)
    assert np.isnan(rank_p_value(np.nan, sims))
    with pytest.raises(ValueError):
        rank_p_value(1.0, sims, "sideways")


def test_global_mad_test_extremes():
    rng = np.random.default_rng(0)
    r = np.linspace(0, 10, 11)
    sims = rng.normal(0, 1, (39, 11))
    far = global_mad_test(np.full(11, 10.0), sims, r)
    assert far.p_value == pytest.approx(1 / 40) and far.sign == 1
    # the envelope holds the simulations' T: exactly k = 2 of the 39 reach it
    assert np.sum(far.t_simulated >= (far.hi - far.centre)[1]) == 2
    typical = global_mad_test(sims[0], sims[1:], r)
    assert typical.p_value > 0.05


def test_csr_k_and_l_are_unbiased_in_an_l_shape():
    """The translation correction makes K(r) unbiased (= pi r^2) and keeps L(r) - r ~ 0 for
    CSR in a concave region; without it the estimate sags far below."""
    model = NullModel(L_SHAPE, ("6",), (6.0,), (150,), hard_core=0.0)
    assert model.r_max == pytest.approx(150.0)  # a quarter of the 600 nm bounding box
    r = model.r
    rng = np.random.default_rng(5)
    ks, naive = [], []
    for _ in range(150):
        pairs = PairSet(_uniform(L_SHAPE, 150, rng), np.zeros(150, int), model.gamma,
                        model.r_max)
        ks.append(pairs.k(r))
        pairs.w = np.ones_like(pairs.w)  # no edge correction
        naive.append(pairs.k(r))
    ks, naive = np.array(ks), np.array(naive)
    use = r >= 10.0
    ratio = ks[:, use] / (np.pi * r[use] ** 2)
    se = ratio.std(axis=0) / np.sqrt(len(ratio))
    assert np.all(np.abs(ratio.mean(axis=0) - 1) < 4 * se + 0.005)
    lr = np.sqrt(ks / np.pi) - r  # L(r) - r is biased low only where K is ~ 0 pairs
    assert np.abs(lr.mean(axis=0)[r >= 20]).max() < 0.5  # nm, for r up to 150 nm
    assert (np.sqrt(naive / np.pi) - r).mean(axis=0)[-1] < -10.0


@pytest.mark.parametrize("hard_core", [0.0, 1.0])
def test_false_positive_rate_is_nominal(hard_core):
    """Uniform points (an independent sampler) are flagged at about the nominal 5 %."""
    n, n_sim, seeds = 60, 39, 100
    model = NullModel(L_SHAPE, ("6",), (6.0,), (n,), hard_core=hard_core)
    rng = np.random.default_rng(2024)
    rejected = {"mean_nnd": 0, "L_mad": 0, "fraction_clustered": 0}
    for seed in range(seeds):
        xy = _uniform(L_SHAPE, n, rng)
        if hard_core:  # redraw overlapping points so the data obey the hard core too
            while True:
                d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
                np.fill_diagonal(d, np.inf)
                bad = np.flatnonzero((d < 6.0).any(axis=1))
                if bad.size == 0:
                    break
                xy[bad[:1]] = _uniform(L_SHAPE, 1, rng)
        res = run_monte_carlo(xy, np.zeros(n, int), model, n_sim=n_sim, seed=seed)
        for t in res.tests:
            rejected[t.statistic] += t.p_value <= 0.05
    rates = {k: v / seeds for k, v in rejected.items()}
    for rate in rates.values():
        assert 0.0 <= rate <= 0.12, rates


def test_clustered_pattern_is_flagged():
    rng = np.random.default_rng(7)
    for seed in range(3):
        xy = _thomas(L_SHAPE, 8, 10, 12.0, rng)
        particles = ParticleTable(xy[:, 0], xy[:, 1], np.full(len(xy), 6.0))
        res = analyze(particles, 1.0, L_SHAPE, n_sim=99, seed=seed, hard_core=0.0)
        mc = res.monte_carlo
        assert mc.test("L_mad", "all").p_value == pytest.approx(1 / 100)
        assert mc.test("L_mad", "all").p_adjusted <= 0.05
        assert mc.test("L_mad", "all").verdict == "clustered"
        nnd = mc.test("mean_nnd", "6")
        assert nnd.p_adjusted <= 0.05 and nnd.verdict == "clustered"
        assert nnd.observed < nnd.sim_lo


def test_cross_class_attraction_is_flagged():
    """12 nm gold placed right next to 6 nm gold: 12->6 NND much shorter than random."""
    rng = np.random.default_rng(8)
    six = _uniform(L_SHAPE, 60, rng)
    angle = rng.uniform(0, 2 * np.pi, 15)
    twelve = six[:15] + 10.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    keep = shapely.contains_xy(L_SHAPE, twelve[:, 0], twelve[:, 1])
    xy = np.vstack([six, twelve[keep]])
    d = np.r_[np.full(60, 6.0), np.full(keep.sum(), 12.0)]
    res = analyze(ParticleTable(xy[:, 0], xy[:, 1], d), 1.0, L_SHAPE, n_sim=299, seed=1)
    mc = res.monte_carlo
    t = mc.test("mean_nnd", "12->6", "12 re-placed, 6 kept")
    assert t.p_value <= 0.01 and t.direction == "associated"
    assert mc.test("L_mad", "6x12", "12 re-placed, 6 kept").verdict == "associated"
    assert mc.test("L_mad", "6x12", "6 re-placed, 12 kept").verdict == "associated"


def test_randomness_respects_the_region():
    """Points filling one arm of the L: random for the arm, clustered for the whole L."""
    rng = np.random.default_rng(9)
    xy, _ = simulate_pattern(ARM, (80,), (6.0,), rng)
    particles = ParticleTable(xy[:, 0], xy[:, 1], np.full(80, 6.0))
    in_l = analyze(particles, 1.0, L_SHAPE, n_sim=99, seed=3).monte_carlo
    assert in_l.test("L_mad", "all").p_adjusted <= 0.05
    assert in_l.test("L_mad", "all").verdict == "clustered"
    in_arm = analyze(particles, 1.0, ARM, n_sim=39, seed=3).monte_carlo
    assert in_arm.test("L_mad", "all").p_value > 0.05
    assert in_arm.test("mean_nnd", "6").p_value > 0.05


def test_simulations_are_seeded():
    model = NullModel(L_SHAPE, ("6", "12"), (6.0, 12.0), (30, 5))
    xy, cls = model.simulate(np.random.default_rng(1))
    a = run_monte_carlo(xy, cls, model, n_sim=9, seed=4)
    b = run_monte_carlo(xy, cls, model, n_sim=9, seed=4)
    c = run_monte_carlo(xy, cls, model, n_sim=9, seed=5)
    assert np.array_equal(a.simulated["L all"], b.simulated["L all"])
    assert not np.array_equal(a.simulated["L all"], c.simulated["L all"])
