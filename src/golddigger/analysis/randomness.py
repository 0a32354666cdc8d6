"""Is the pattern random? Are two classes associated? Monte Carlo tests in the same region.

Three null models, each simulated ``n_sim`` times inside the same region (`simulate`):

1. **Random placement** (``null_model = "random"``): every class re-placed uniformly, no
   overlapping gold (hard core). Statistics: the mean nearest-neighbour distance (NND) of
   each class, L(r) - r (`ripley`) of all particles and, with two or more non-empty classes,
   of each class, and the fraction of particles in clusters (`clusters`). Question: is the
   gold clustered (or regular) in this region?
2. **Conditional placement** (``"12 re-placed, 6 kept"``, and the reverse): one class kept
   where it is, the other re-placed uniformly in the region (keeping the hard core to the
   kept gold and among itself). Statistics: the mean NND from the re-placed class to the
   kept one (``"12->6"``) and the cross L function (``"6x12"``). Question: given where the
   6 nm gold is, does the 12 nm gold lie closer to it (``associated``) or further from it
   (``segregated``) than gold placed at random? Valid when the re-placed class would be
   random without association; so keep the clustered class fixed (AMPA gold), re-place
   the other.
3. **Random labelling** (``"random labels"``): the positions of both classes kept, the
   labels permuted. Statistic: the cross L function. Question: are the two kinds of gold
   distributed alike (e.g. both in the same clusters), given where gold is at all?

P-values are Monte Carlo rank tests, ``(1 + #{sims as or more extreme}) / (n_sim + 1)``.
Scalar statistics are two-sided: ``min(1, 2 min(p_low, p_high))``. L(r) - r is tested
globally over ``0 < r <= r_max`` with the maximum absolute deviation (MAD) statistic
``T = max_r |L(r) - r - c(r)|`` where ``c`` is the mean curve of the observed and simulated
patterns together (so the ``n_sim + 1`` patterns are exchangeable under the null), and
``p = (1 + #{T_sim >= T_obs}) / (n_sim + 1)``. The plotted global envelope is
``c(r) ± T_(k)``, ``T_(k)`` the k-th largest simulated T, ``k = floor(alpha (n_sim + 1))``.
Pointwise envelopes (2.5 and 97.5 percentiles) are descriptive, not a test.

**Multiple testing.** All tests reported for one image (and region) are corrected together
by Holm's step-down method (`holm`): ``p_adjusted``; the verdicts use ``p_adjusted``, so the
chance of any false "clustered"/"associated" verdict per image is at most ``alpha``.
"""

from __future__ import annotations

import logging
import math
import warnings
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
from golddigger.analysis.ripley import PairSet, cross_pairs, l_function, pcf_bandwidth
from golddigger.analysis.simulate import simulate_pattern

__all__ = [
    "DEFAULT_N_SIM",
    "NULL_LABELS",
    "NULL_RANDOM",
    "MonteCarloResult",
    "NullModel",
    "TestResult",
    "conditional_null",
    "default_r_max",
    "global_mad_test",
    "holm",
    "pattern_statistics",
    "rank_p_value",
    "run_monte_carlo",
]

logger = logging.getLogger(__name__)

#: Default number of simulated patterns per null model (p-values in steps of 1/500: after
#: Holm's correction over the up to 12 tests of a two-class image the smallest p is 0.024,
#: so the corrected tests keep their power).
DEFAULT_N_SIM = 499
#: Default significance level for envelopes and interpretations.
DEFAULT_ALPHA = 0.05
#: Points on the r grid of L(r).
N_R = 101
#: A class gets its own L function from this many particles (with 2 it is one pair).
MIN_POINTS_FOR_L = 3
#: The null-model names in ``randomness.csv``.
NULL_RANDOM = "random"
NULL_LABELS = "random labels"


def conditional_null(moved: str, kept: str) -> str:
    """Name of the conditional null model: ``"12 re-placed, 6 kept"``."""
    return f"{moved} re-placed, {kept} kept"


def default_r_max(geom) -> float:
    """A quarter of the shorter side of the region's bounding box (nm)."""
    xmin, ymin, xmax, ymax = geom.bounds
    return 0.25 * min(xmax - xmin, ymax - ymin)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaNs stay NaN and do not count as tests).

    ``p_(i)`` sorted ascending among ``m`` tests: ``adj_(i) = max_{j <= i} min(1,
    (m - j + 1) p_(j))``. Rejecting where ``adj <= alpha`` keeps the family-wise error rate
    at ``alpha`` under any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


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
        Distances (nm) at which L and g are computed, from 0 to ``r_max``.
    cluster_distance_nm, min_cluster_size
        The cluster rule of the fraction-clustered statistic.
    gamma : SetCovariance
        The region's set covariance (edge correction), built on first use.
    association : bool
        Also run the conditional and random-labelling tests between classes.
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
    association: bool = True

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

    def nonempty(self) -> list[int]:
        """Indices of the classes with particles."""
        return [c for c, n in enumerate(self.counts) if n > 0]

    def relations(self) -> tuple[list[str], list[str]]:
        """The within-class NND keys (``"6"``) and L keys (``"all"``, ``"6"``) of the
        random-placement null. Empty classes give no test (no duplicates of ``"all"``)."""
        names, counts = self.class_names, self.counts
        nnd_keys = [names[c] for c in self.nonempty() if counts[c] >= 2]
        l_keys = ["all"] if sum(counts) >= MIN_POINTS_FOR_L else []
        if len(self.nonempty()) > 1:
            l_keys += [names[c] for c in self.nonempty() if counts[c] >= MIN_POINTS_FOR_L]
        return nnd_keys, l_keys

    def class_pairs(self) -> list[tuple[int, int]]:
        """Pairs ``(a, b)``, ``a < b``, of non-empty classes (association tests)."""
        if not self.association:
            return []
        ne = self.nonempty()
        return [(a, b) for i, a in enumerate(ne) for b in ne[i + 1:]]

    def simulate(self, rng: np.random.Generator, fixed_xy: np.ndarray | None = None,
                 fixed_cls: np.ndarray | None = None, moved: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """One random pattern (xy in nm, class index): all classes, or only class ``moved``
        around the fixed particles (which are not returned)."""
        counts = self.counts
        if moved is not None:
            counts = tuple(n if c == moved else 0 for c, n in enumerate(self.counts))
        return simulate_pattern(self.geom, counts, self.diameters_nm, rng,
                                hard_core=self.hard_core, fixed_xy=fixed_xy,
                                fixed_cls=fixed_cls)

    def bandwidth(self, n: int) -> float:
        """Pair-correlation kernel half-width for ``n`` points in the region."""
        return pcf_bandwidth(n, float(self.geom.area))

    def cross_bandwidth(self, n_a: int, n_b: int) -> float:
        """Half-width for the cross g of two classes: Stoyan's rule at the geometric mean
        of their intensities."""
        return pcf_bandwidth(int(round(math.sqrt(max(n_a, 1) * max(n_b, 1)))),
                             float(self.geom.area))


def pattern_statistics(xy: np.ndarray, cls: np.ndarray, model: NullModel
                       ) -> dict[str, np.ndarray | float]:
    """The random-placement statistics of one pattern, by key.

    Keys: ``"nnd <class>"`` (array of the NNDs, nm), ``"L <rel>"`` (L(r) - r on
    ``model.r``, nm), ``"g <rel>"`` (pair correlation, descriptive) and
    ``"fraction_clustered"``.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    cls = np.asarray(cls, dtype=np.int64)
    nnd_keys, l_keys = model.relations()
    index = {name: i for i, name in enumerate(model.class_names)}
    out: dict[str, np.ndarray | float] = {}
    for key in nnd_keys:
        out[f"nnd {key}"] = nnd(xy[cls == index[key]])[0]
    reach = max(model.r_max, model.cluster_distance_nm)
    pairs = PairSet(xy, cls, model.gamma, model.r_max)
    for key in l_keys:
        a = None if key == "all" else index[key]
        n = len(xy) if a is None else model.counts[a]
        out[f"L {key}"] = l_function(pairs.k(model.r, a)) - model.r
        out[f"g {key}"] = pairs.g(model.r, model.bandwidth(n), a)
    if len(xy):
        if reach <= model.r_max and len(pairs.dist):
            near = pairs.dist <= model.cluster_distance_nm
            link = np.column_stack([pairs.i[near], pairs.j[near]])
        else:
            link = cKDTree(xy).query_pairs(model.cluster_distance_nm, output_type="ndarray")
        out["fraction_clustered"] = fraction_clustered(
            xy, model.cluster_distance_nm, model.min_cluster_size, pairs=link)
    return out


def cross_statistics(xy_a: np.ndarray, xy_b: np.ndarray, model: NullModel, a: int, b: int,
                     nnd_from: int | None) -> dict[str, np.ndarray | float]:
    """Association statistics of classes ``a`` and ``b`` (positions ``xy_a``, ``xy_b``).

    Keys: ``"L axb"`` (cross L(r) - r), ``"g axb"`` (cross pair correlation) and, when
    ``nnd_from`` is ``a`` or ``b``, ``"nnd from->to"`` (NNDs from that class to the other).
    """
    na, nb = model.class_names[a], model.class_names[b]
    pairs = cross_pairs(xy_a, xy_b, model.gamma, model.r_max)
    out: dict[str, np.ndarray | float] = {
        f"L {na}x{nb}": l_function(pairs.k(model.r, 0, 1)) - model.r,
        f"g {na}x{nb}": pairs.g(model.r, model.cross_bandwidth(len(xy_a), len(xy_b)),
                                0, 1)}
    if nnd_from == a:
        out[f"nnd {na}->{nb}"] = cross_nnd(xy_a, xy_b)[0]
    elif nnd_from == b:
        out[f"nnd {nb}->{na}"] = cross_nnd(xy_b, xy_a)[0]
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
    null_model: str = NULL_RANDOM
    p_adjusted: float = float("nan")
    direction: str = ""  # the verdict if significant: clustered/dispersed/associated/...

    def to_row(self, alpha: float = DEFAULT_ALPHA) -> dict:
        """The row; ``sim_lo``/``sim_hi`` are named by their quantiles (``sim_2.5%``).
        The original columns come first, in their order; ``p_adjusted`` and ``null_model``
        follow."""
        lo, hi = quantile_names(alpha)
        return {"statistic": self.statistic, "relation": self.relation,
                "observed": self.observed, "sim_mean": self.sim_mean,
                lo: self.sim_lo, hi: self.sim_hi,
                "p_value": self.p_value, "alternative": self.alternative,
                "n_sim": self.n_sim, "verdict": self.verdict,
                "p_adjusted": self.p_adjusted, "null_model": self.null_model}


#: Columns of ``randomness.csv`` after the two quantile columns.
RANDOMNESS_COLUMNS = ("statistic", "relation", "observed", "sim_mean", "<lo>", "<hi>",
                      "p_value", "alternative", "n_sim", "verdict", "p_adjusted",
                      "null_model")


def _split(key: str) -> tuple[str, str]:
    """``"6x12 | 12 re-placed, 6 kept"`` -> (relation, null model)."""
    rel, _, null = key.partition(" | ")
    return rel, (null or NULL_RANDOM)


def _key(rel: str, null: str) -> str:
    return rel if null == NULL_RANDOM else f"{rel} | {null}"


@dataclass
class MonteCarloResult:
    """The observed statistics, the simulated ones, and the tests.

    Attributes
    ----------
    model : NullModel
    observed : dict
        Statistics of the observed pattern: ``"nnd <rel>"``, ``"L <rel>"``, ``"g <rel>"``,
        ``"fraction_clustered"``; keys of the association null models end in
        ``" | <null model>"`` (``"L 6x12 | 12 re-placed, 6 kept"``).
    simulated : dict
        Same keys; values stacked over simulations: ``(n_sim, ...)`` arrays.
    tests : list of TestResult
        With Holm-adjusted p-values over all of them.
    envelopes : dict
        `GlobalEnvelope` of each L curve, by the key after ``"L "``.
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

    def test(self, statistic: str, relation: str, null_model: str | None = None) -> TestResult:
        """The test of ``statistic`` (``"mean_nnd"``, ``"L_mad"``, ``"fraction_clustered"``)
        for ``relation`` (``"6"``, ``"12->6"``, ``"all"``, ``"6x12"``, or a key with
        ``" | <null model>"``) under ``null_model`` (default: random placement, or the one in
        the key)."""
        rel, null = _split(relation)
        if null_model is not None:
            null = null_model
        for t in self.tests:
            if t.statistic == statistic and t.relation == rel and t.null_model == null:
                return t
        raise KeyError(f"no test {statistic} {relation} ({null})")

    def pointwise(self, key: str, alpha: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and pointwise (alpha/2, 1-alpha/2) quantiles of a simulated curve."""
        a = self.alpha if alpha is None else alpha
        sims = np.asarray(self.simulated[key], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (np.nanmean(sims, axis=0), np.nanquantile(sims, a / 2, axis=0),
                        np.nanquantile(sims, 1 - a / 2, axis=0))


def _words(null: str) -> tuple[str, str]:
    """Verdicts for (closer than the null, further than the null)."""
    if null == NULL_RANDOM:
        return "clustered", "dispersed"
    if null == NULL_LABELS:
        return "co-located", "differently distributed"
    return "associated", "segregated"


def _verdict(p_adj: float, alpha: float, direction: str, null: str) -> str:
    if not np.isfinite(p_adj):
        return "not tested"
    if p_adj > alpha:
        return "consistent with random labels" if null == NULL_LABELS else \
            "consistent with random"
    return direction


def run_monte_carlo(xy: np.ndarray, cls: np.ndarray, model: NullModel, n_sim: int = DEFAULT_N_SIM,
                    seed: int | None = 0, alpha: float = DEFAULT_ALPHA,
                    progress: Callable[[int, int], None] | None = None) -> MonteCarloResult:
    """Compare a pattern with ``n_sim`` random patterns of each null model.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) observed positions (nm), inside ``model.geom``.
    cls : numpy.ndarray
        (N,) class index of each point.
    model : NullModel
    n_sim : int
        Random patterns per null model (499: p-values in steps of 0.002).
    seed : int or None
        Seed of the random generator (None: not reproducible).
    alpha : float
        Level for the envelopes and the verdicts (on Holm-adjusted p-values).
    progress : callable, optional
        Called as ``progress(done, total)`` after each simulation (``total`` = ``n_sim``
        times the number of null models).

    Raises
    ------
    GoldDiggerError
        If the region cannot hold the particles (see `simulate.simulate_pattern`).
    """
    if n_sim < 1:
        raise ValueError(f"n_sim must be >= 1, got {n_sim}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    cls = np.asarray(cls, dtype=np.int64)
    rng = np.random.default_rng(seed)
    names = model.class_names
    pairs = model.class_pairs()
    # each family: (null name, observed stats, function drawing one simulated set)
    families: list[tuple[str, dict, Callable[[], dict]]] = [
        (NULL_RANDOM, pattern_statistics(xy, cls, model),
         lambda: pattern_statistics(*model.simulate(rng), model))]
    for a, b in pairs:
        xa, xb = xy[cls == a], xy[cls == b]
        for moved, kept in ((b, a), (a, b)):
            fixed = cls == kept

            def draw(moved=moved, kept=kept, fixed=fixed, a=a, b=b) -> dict:
                new_xy, _ = model.simulate(rng, xy[fixed], cls[fixed], moved=moved)
                pa, pb = (xy[fixed], new_xy) if kept == a else (new_xy, xy[fixed])
                return cross_statistics(pa, pb, model, a, b, nnd_from=moved)

            families.append((conditional_null(names[moved], names[kept]),
                             cross_statistics(xa, xb, model, a, b, nnd_from=moved), draw))
        both = np.flatnonzero((cls == a) | (cls == b))
        labels = cls[both]
        if both.size >= MIN_POINTS_FOR_L:
            ps = PairSet(xy[both], labels, model.gamma, model.r_max)
            h = model.cross_bandwidth(int(np.sum(labels == a)), int(np.sum(labels == b)))

            def relabel(ps=ps, labels=labels, a=a, b=b, h=h) -> dict:
                ps.cls = rng.permutation(labels)
                return {f"L {names[a]}x{names[b]}": l_function(ps.k(model.r, a, b)) - model.r,
                        f"g {names[a]}x{names[b]}": ps.g(model.r, h, a, b)}

            ps.cls = labels
            observed_lab = {f"L {names[a]}x{names[b]}": l_function(ps.k(model.r, a, b))
                            - model.r, f"g {names[a]}x{names[b]}": ps.g(model.r, h, a, b)}
            families.append((NULL_LABELS, observed_lab, relabel))

    total = n_sim * len(families)
    done = 0
    observed: dict = {}
    simulated: dict = {}
    for null, obs, draw in families:
        runs: dict[str, list] = {k: [] for k in obs}
        for _ in range(n_sim):
            stats = draw()
            for k in runs:
                runs[k].append(stats[k])
            done += 1
            if progress is not None:
                progress(done, total)
        for k in obs:
            full = _key(k, null)
            observed[full] = obs[k]
            simulated[full] = np.asarray(runs[k], dtype=float)
    tests = _tests(observed, simulated, model, n_sim, alpha)
    envelopes = tests.pop()
    return MonteCarloResult(model, observed, simulated, tests, envelopes, alpha, seed)


def _tests(observed: dict, simulated: dict, model: NullModel, n_sim: int, alpha: float
           ) -> list:
    """The tests of every statistic, Holm-adjusted; the envelopes dict appended last."""
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
            rel, null = _split(key[4:])
            obs = float(np.nanmean(observed[key])) if np.size(observed[key]) else float("nan")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                sims = np.nanmean(simulated[key], axis=1)
            p = rank_p_value(obs, sims)
            mean, lo, hi = quantiles(sims)
            words = _words(null)
            closer = obs < mean
            tests.append(TestResult("mean_nnd", rel, obs, mean, lo, hi, p, "two-sided", n_sim,
                                    "", null, direction=words[0] if closer else words[1]))
    for key in observed:
        if key.startswith("L "):
            rel, null = _split(key[2:])
            env = global_mad_test(observed[key], simulated[key], model.r, alpha)
            envelopes[key[2:]] = env
            mean, lo, hi = quantiles(env.t_simulated)
            words = _words(null)
            tests.append(TestResult("L_mad", rel, env.t_observed, mean, lo, hi, env.p_value,
                                    "greater", n_sim, "", null,
                                    direction=words[0] if env.sign > 0 else words[1]))
    if "fraction_clustered" in observed:
        obs = float(observed["fraction_clustered"])
        sims = simulated["fraction_clustered"]
        p = rank_p_value(obs, sims)
        mean, lo, hi = quantiles(sims)
        tests.append(TestResult("fraction_clustered", "all", obs, mean, lo, hi, p, "two-sided",
                                n_sim, "", NULL_RANDOM,
                                direction="clustered" if obs > mean else "dispersed"))
    adjusted = holm([t.p_value for t in tests])
    for t, pa in zip(tests, adjusted, strict=True):
        t.p_adjusted = float(pa)
        t.verdict = _verdict(t.p_adjusted, alpha, t.direction, t.null_model)
    # a conditional test re-places one class at random: it cannot tell association from
    # that class's own clustering, so it is not valid when that class is found not random
    not_random = {t.relation for t in tests if t.null_model == NULL_RANDOM
                  and t.statistic != "fraction_clustered" and t.p_adjusted <= alpha}
    for t in tests:
        moved = t.null_model.split(" re-placed")[0] if " re-placed" in t.null_model else None
        if moved is not None and moved in not_random:
            t.verdict = f"not valid ({moved} is not random)"
    return [*tests, envelopes]


def counts_of(cls: np.ndarray, n_classes: int) -> tuple[int, ...]:
    """Points per class index."""
    return tuple(int(v) for v in np.bincount(np.asarray(cls, dtype=np.int64),
                                             minlength=n_classes))


def make_null_model(geom, cls: np.ndarray, class_names: Sequence[str],
                    diameters_nm: Sequence[float], **kwargs) -> NullModel:
    """A `NullModel` with the counts of ``cls``."""
    return NullModel(geom, tuple(class_names), tuple(float(d) for d in diameters_nm),
                     counts_of(cls, len(class_names)), **kwargs)
