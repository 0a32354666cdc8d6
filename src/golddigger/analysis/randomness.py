"""Is the pattern random? Monte Carlo tests against hard-core CSR inside the same region.

The observed pattern is compared with ``n_sim`` random patterns (`simulate.simulate_pattern`:
same counts per class, uniform in the same region, no overlapping gold). The same statistics
are computed on each:

- mean nearest-neighbour distance within each class (``"6"``) and from one class to another
  (``"6->12"``: from each 6 nm particle to the nearest 12 nm one);
- L(r) - r (`ripley`) for all particles, each class and each pair of classes (``"6x12"``);
- the fraction of particles in clusters (`clusters`).

P-values are Monte Carlo rank tests, ``(1 + #{sims as or more extreme}) / (n_sim + 1)``.
Scalar statistics are two-sided: ``min(1, 2 min(p_low, p_high))``. L(r) - r is tested
globally over ``0 < r <= r_max`` with the maximum absolute deviation (MAD) statistic
``T = max_r |L(r) - r - c(r)|`` where ``c`` is the mean curve of the observed and simulated
patterns together (so the ``n_sim + 1`` patterns are exchangeable under the null), and
``p = (1 + #{T_sim >= T_obs}) / (n_sim + 1)``. The plotted global envelope is
``c(r) ± T_(k)``, ``T_(k)`` the k-th largest simulated T, ``k = floor(alpha (n_sim + 1))``;
the observed curve leaves it exactly when ``p <= k / (n_sim + 1)``. Pointwise envelopes
(2.5 and 97.5 percentiles of the simulations) are reported too; they are descriptive, not a
test. P-values are not corrected for testing several statistics.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from golddigger.analysis.clusters import (
    DEFAULT_CLUSTER_DISTANCE_NM,
    DEFAULT_MIN_CLUSTER_SIZE,
    fraction_clustered,
)
from golddigger.analysis.geometry import SetCovariance
from golddigger.analysis.neighbours import cross_nnd, nnd
from golddigger.analysis.ripley import PairSet, l_function
from golddigger.analysis.simulate import simulate_pattern

__all__ = [
    "DEFAULT_N_SIM",
    "MonteCarloResult",
    "NullModel",
    "TestResult",
    "default_r_max",
    "global_mad_test",
    "pattern_statistics",
    "rank_p_value",
    "run_monte_carlo",
]

logger = logging.getLogger(__name__)

#: Default number of simulated patterns (p-values in steps of 1/200).
DEFAULT_N_SIM = 199
#: Default significance level for envelopes and interpretations.
DEFAULT_ALPHA = 0.05
#: Points on the r grid of L(r).
N_R = 101
#: A class gets its own L function from this many particles (with 2 it is one pair).
MIN_POINTS_FOR_L = 3


def default_r_max(geom) -> float:
    """A quarter of the shorter side of the region's bounding box (nm)."""
    xmin, ymin, xmax, ymax = geom.bounds
    return 0.25 * min(xmax - xmin, ymax - ymin)


@dataclass
class NullModel:
    """What the random patterns share with the observed one.

    Attributes
    ----------
    geom : shapely geometry
        The region (nm).
    class_names : tuple of str
        ``("6", "12")``.
    diameters_nm : tuple of float
    counts : tuple of int
        Observed particles per class (the simulations use the same).
    hard_core : float
        Minimum centre distance as a multiple of the pair's mean diameter (0: plain CSR).
    r : numpy.ndarray
        Distances (nm) at which L is computed, from 0 to ``r_max``.
    cluster_distance_nm, min_cluster_size
        The cluster rule of the fraction-clustered statistic.
    gamma : SetCovariance
        The region's set covariance (edge correction), built on first use.
    """

    geom: object
    class_names: tuple[str, ...]
    diameters_nm: tuple[float, ...]
    counts: tuple[int, ...]
    hard_core: float = 1.0
    r: np.ndarray = field(default=None)  # type: ignore[assignment]
    cluster_distance_nm: float = DEFAULT_CLUSTER_DISTANCE_NM
    min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE
    gamma: SetCovariance | None = None

    def __post_init__(self) -> None:
        if self.r is None:
            self.r = np.linspace(0.0, default_r_max(self.geom), N_R)
        self.r = np.asarray(self.r, dtype=float)
        if self.r.ndim != 1 or self.r.size < 2 or self.r.max() <= 0:
            raise ValueError("the r grid must be a 1D array reaching above 0")
        if self.gamma is None:
            self.gamma = SetCovariance(self.geom, float(self.r.max()))

    @property
    def r_max(self) -> float:
        return float(self.r.max())

    def relations(self) -> tuple[list[str], list[str]]:
        """The NND keys (``"6"``, ``"6->12"``, ...) and L keys (``"all"``, ``"6"``,
        ``"6x12"``, ...) that this pattern's counts allow."""
        names, counts = self.class_names, self.counts
        nnd_keys, l_keys = [], []
        if sum(counts) >= MIN_POINTS_FOR_L:
            l_keys.append("all")
        for a, na in enumerate(counts):
            if na >= 2:
                nnd_keys.append(names[a])
            if na >= MIN_POINTS_FOR_L and len(names) > 1:
                l_keys.append(names[a])
        for a, na in enumerate(counts):
            for b, nb in enumerate(counts):
                if a != b and na >= 1 and nb >= 1:
                    nnd_keys.append(f"{names[a]}->{names[b]}")
                    if a < b:
                        l_keys.append(f"{names[a]}x{names[b]}")
        return nnd_keys, l_keys

    def simulate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random pattern (xy in nm, class index)."""
        return simulate_pattern(self.geom, self.counts, self.diameters_nm, rng,
                                hard_core=self.hard_core)


def pattern_statistics(xy: np.ndarray, cls: np.ndarray, model: NullModel
                       ) -> dict[str, np.ndarray | float]:
    """Every statistic of one pattern, by key.

    Keys: ``"nnd <rel>"`` (array of the NNDs, nm), ``"L <rel>"`` (L(r) - r on
    ``model.r``, nm) and ``"fraction_clustered"``.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    cls = np.asarray(cls, dtype=np.int64)
    nnd_keys, l_keys = model.relations()
    index = {name: i for i, name in enumerate(model.class_names)}
    by_class = [xy[cls == c] for c in range(len(model.class_names))]
    out: dict[str, np.ndarray | float] = {}
    for key in nnd_keys:
        if "->" in key:
            a, b = (index[k] for k in key.split("->"))
            out[f"nnd {key}"] = cross_nnd(by_class[a], by_class[b])[0]
        else:
            out[f"nnd {key}"] = nnd(by_class[index[key]])[0]
    reach = max(model.r_max, model.cluster_distance_nm)
    pairs = PairSet(xy, cls, model.gamma, model.r_max)
    for key in l_keys:
        if key == "all":
            k = pairs.k(model.r)
        elif "x" in key:
            a, b = (index[k] for k in key.split("x"))
            k = pairs.k(model.r, a, b)
        else:
            k = pairs.k(model.r, index[key])
        out[f"L {key}"] = l_function(k) - model.r
    if len(xy):
        if reach <= model.r_max and len(pairs.dist):
            near = pairs.dist <= model.cluster_distance_nm
            link = np.column_stack([pairs.i[near], pairs.j[near]])
        else:
            link = cKDTree(xy).query_pairs(model.cluster_distance_nm, output_type="ndarray")
        out["fraction_clustered"] = fraction_clustered(
            xy, model.cluster_distance_nm, model.min_cluster_size, pairs=link)
    return out


def rank_p_value(observed: float, simulated: np.ndarray,
                 alternative: str = "two-sided") -> float:
    """Monte Carlo rank p-value ``(1 + #{sims as or more extreme}) / (n_sim + 1)``.

    Parameters
    ----------
    observed : float
    simulated : numpy.ndarray
        The statistic on each simulated pattern (NaNs are dropped).
    alternative : {"two-sided", "less", "greater"}
        ``"less"``: small values are extreme; two-sided doubles the smaller tail (capped at 1).
    """
    sims = np.asarray(simulated, dtype=float)
    sims = sims[np.isfinite(sims)]
    if not np.isfinite(observed) or sims.size == 0:
        return float("nan")
    n = sims.size
    p_low = (1 + np.sum(sims <= observed)) / (n + 1)
    p_high = (1 + np.sum(sims >= observed)) / (n + 1)
    if alternative == "less":
        return float(p_low)
    if alternative == "greater":
        return float(p_high)
    if alternative != "two-sided":
        raise ValueError(f"alternative must be two-sided, less or greater, not {alternative!r}")
    return float(min(1.0, 2 * min(p_low, p_high)))


@dataclass
class GlobalEnvelope:
    """A global MAD envelope test of one curve (see the module docstring)."""

    centre: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    t_observed: float
    t_simulated: np.ndarray
    p_value: float
    sign: int  # sign of the observed deviation where it is largest


def global_mad_test(observed: np.ndarray, simulated: np.ndarray, r: np.ndarray,
                    alpha: float = DEFAULT_ALPHA) -> GlobalEnvelope:
    """Maximum-absolute-deviation global envelope test over ``r > 0``.

    Parameters
    ----------
    observed : numpy.ndarray
        (n_r,) observed curve.
    simulated : numpy.ndarray
        (n_sim, n_r) simulated curves.
    r : numpy.ndarray
        (n_r,) distances; ``r = 0`` is left out of the statistic.
    alpha : float
        Level of the plotted envelope.
    """
    obs = np.asarray(observed, dtype=float)
    sims = np.asarray(simulated, dtype=float)
    use = np.asarray(r) > 0
    centre = np.nanmean(np.vstack([sims, obs[None]]), axis=0)
    dev_obs = np.abs(obs - centre)[use]
    t_obs = float(np.nanmax(dev_obs)) if dev_obs.size else float("nan")
    t_sims = np.nanmax(np.abs(sims - centre)[:, use], axis=1) if use.any() else np.empty(0)
    n = t_sims.size
    p = float((1 + np.sum(t_sims >= t_obs)) / (n + 1)) if n else float("nan")
    k = max(1, int(math.floor(alpha * (n + 1))))
    t_crit = float(np.sort(t_sims)[::-1][k - 1]) if n >= k else float("nan")
    signed = (obs - centre)[use]
    sign = int(np.sign(signed[np.nanargmax(np.abs(signed))])) if signed.size else 0
    return GlobalEnvelope(centre, centre - t_crit, centre + t_crit, t_obs, t_sims, p, sign)


def quantile_names(alpha: float) -> tuple[str, str]:
    """Column names of the simulations' (alpha/2, 1 - alpha/2) quantiles."""
    return f"sim_{100 * alpha / 2:g}%", f"sim_{100 * (1 - alpha / 2):g}%"


@dataclass
class TestResult:
    """One row of the randomness table."""

    statistic: str
    relation: str
    observed: float
    sim_mean: float
    sim_lo: float
    sim_hi: float
    p_value: float
    alternative: str
    n_sim: int
    verdict: str

    def to_row(self, alpha: float = DEFAULT_ALPHA) -> dict:
        """The row; ``sim_lo``/``sim_hi`` are named by their quantiles (``sim_2.5%``)."""
        lo, hi = quantile_names(alpha)
        return {"statistic": self.statistic, "relation": self.relation,
                "observed": self.observed, "sim_mean": self.sim_mean,
                lo: self.sim_lo, hi: self.sim_hi,
                "p_value": self.p_value, "alternative": self.alternative,
                "n_sim": self.n_sim, "verdict": self.verdict}


@dataclass
class MonteCarloResult:
    """The observed statistics, the simulated ones, and the tests.

    Attributes
    ----------
    model : NullModel
    observed : dict
        `pattern_statistics` of the observed pattern.
    simulated : dict
        Same keys; values stacked over simulations: ``(n_sim, ...)`` arrays.
    tests : list of TestResult
    envelopes : dict
        `GlobalEnvelope` of each ``"L <rel>"`` key.
    alpha : float
    seed : int or None
    """

    model: NullModel
    observed: dict
    simulated: dict
    tests: list[TestResult]
    envelopes: dict[str, GlobalEnvelope]
    alpha: float
    seed: int | None

    @property
    def n_sim(self) -> int:
        return next((len(v) for v in self.simulated.values()), 0)

    def test(self, statistic: str, relation: str) -> TestResult:
        """The test of ``statistic`` (``"mean_nnd"``, ``"L_mad"``, ``"fraction_clustered"``)
        for ``relation`` (``"6"``, ``"6->12"``, ``"all"``, ``"6x12"``)."""
        for t in self.tests:
            if t.statistic == statistic and t.relation == relation:
                return t
        raise KeyError(f"no test {statistic} {relation}")

    def pointwise(self, key: str, alpha: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and pointwise (alpha/2, 1-alpha/2) quantiles of a simulated curve."""
        a = self.alpha if alpha is None else alpha
        sims = np.asarray(self.simulated[key], dtype=float)
        return (np.nanmean(sims, axis=0), np.nanquantile(sims, a / 2, axis=0),
                np.nanquantile(sims, 1 - a / 2, axis=0))


def _verdict(p: float, alpha: float, clustered: bool | None) -> str:
    if not np.isfinite(p):
        return "not tested"
    if p > alpha:
        return "consistent with random"
    return "clustered" if clustered else "dispersed"


def run_monte_carlo(xy: np.ndarray, cls: np.ndarray, model: NullModel, n_sim: int = DEFAULT_N_SIM,
                    seed: int | None = 0, alpha: float = DEFAULT_ALPHA,
                    progress: Callable[[int, int], None] | None = None) -> MonteCarloResult:
    """Compare a pattern with ``n_sim`` random patterns of the null model.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) observed positions (nm), inside ``model.geom``.
    cls : numpy.ndarray
        (N,) class index of each point.
    model : NullModel
    n_sim : int
        Number of random patterns (199: p-values in steps of 0.005).
    seed : int or None
        Seed of the random generator (None: not reproducible).
    alpha : float
        Level for the envelopes and the verdicts.
    progress : callable, optional
        Called as ``progress(done, n_sim)`` after each simulation.

    Raises
    ------
    GoldDiggerError
        If the region cannot hold the particles (see `simulate.simulate_pattern`).
    """
    if n_sim < 1:
        raise ValueError(f"n_sim must be >= 1, got {n_sim}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    observed = pattern_statistics(xy, cls, model)
    runs: dict[str, list] = {k: [] for k in observed}
    for s in range(n_sim):
        sxy, scls = model.simulate(rng)
        stats = pattern_statistics(sxy, scls, model)
        for k in runs:
            runs[k].append(stats[k])
        if progress is not None:
            progress(s + 1, n_sim)
    simulated = {k: np.asarray(v, dtype=float) for k, v in runs.items()}

    tests: list[TestResult] = []
    envelopes: dict[str, GlobalEnvelope] = {}

    def quantiles(v: np.ndarray) -> tuple[float, float, float]:
        v = v[np.isfinite(v)]
        if v.size == 0:
            return (float("nan"),) * 3
        lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
        return float(v.mean()), float(lo), float(hi)

    for key in observed:
        if key.startswith("nnd "):
            rel = key[4:]
            obs = float(np.nanmean(observed[key]))
            sims = np.nanmean(simulated[key], axis=1)
            p = rank_p_value(obs, sims)
            mean, lo, hi = quantiles(sims)
            tests.append(TestResult("mean_nnd", rel, obs, mean, lo, hi, p, "two-sided",
                                    n_sim, _verdict(p, alpha, obs < mean)))
    for key in observed:
        if key.startswith("L "):
            rel = key[2:]
            env = global_mad_test(observed[key], simulated[key], model.r, alpha)
            envelopes[rel] = env
            mean, lo, hi = quantiles(env.t_simulated)
            tests.append(TestResult("L_mad", rel, env.t_observed, mean, lo, hi, env.p_value,
                                    "greater", n_sim, _verdict(env.p_value, alpha, env.sign > 0)))
    if "fraction_clustered" in observed:
        obs = float(observed["fraction_clustered"])
        sims = simulated["fraction_clustered"]
        p = rank_p_value(obs, sims)
        mean, lo, hi = quantiles(sims)
        tests.append(TestResult("fraction_clustered", "all", obs, mean, lo, hi, p, "two-sided",
                                n_sim, _verdict(p, alpha, obs > mean)))
    return MonteCarloResult(model, observed, simulated, tests, envelopes, alpha, seed)


def counts_of(cls: np.ndarray, n_classes: int) -> tuple[int, ...]:
    """Points per class index."""
    return tuple(int(v) for v in np.bincount(np.asarray(cls, dtype=np.int64),
                                             minlength=n_classes))


def make_null_model(geom, cls: np.ndarray, class_names: Sequence[str],
                    diameters_nm: Sequence[float], **kwargs) -> NullModel:
    """A `NullModel` with the counts of ``cls``."""
    return NullModel(geom, tuple(class_names), tuple(float(d) for d in diameters_nm),
                     counts_of(cls, len(class_names)), **kwargs)
