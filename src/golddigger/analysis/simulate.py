"""Random patterns for the null model: uniform inside the region, with a hard core.

Gold particles are solid spheres: two centres cannot be closer than the sum of the radii.
The null model ("complete spatial randomness" for gold) therefore places the same number of
particles of each class uniformly inside the same region, no two closer than
``hard_core * (d_a + d_b) / 2`` (``hard_core = 1``: touching spheres; ``0``: plain CSR).

Placement is random sequential, done in vectorised rounds: each round draws candidates
uniformly inside the region (rejection from the bounding box), in random order, drops
those that overlap a particle already placed or an earlier candidate of the round, and
keeps as many survivors per class as are still needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from golddigger.analysis.geometry import uniform_points
from golddigger.errors import GoldDiggerError

__all__ = ["MAX_COVERAGE", "hard_core_distances", "simulate_pattern"]

logger = logging.getLogger(__name__)

#: Refuse when the particles' discs would cover more than this fraction of the region
#: (random sequential packing of discs jams near 0.55).
MAX_COVERAGE = 0.45


def hard_core_distances(diameters_nm: Sequence[float], hard_core: float = 1.0) -> np.ndarray:
    """Matrix of minimum centre distances (nm) between classes: ``hard_core * (d_a+d_b)/2``."""
    d = np.asarray(diameters_nm, dtype=float)
    return hard_core * (d[:, None] + d[None, :]) / 2.0


def _check_capacity(area_nm2: float, counts: np.ndarray, dmin: np.ndarray) -> None:
    # each particle of class c excludes a disc of diameter dmin[c, c] from the others
    counts = np.asarray(counts, dtype=np.int64)
    covered = float(np.sum(counts * math.pi * (np.diag(dmin) / 2.0) ** 2))
    if area_nm2 <= 0:
        raise GoldDiggerError("the analysis region has no area")
    if covered / area_nm2 > MAX_COVERAGE:
        raise GoldDiggerError(
            f"the region ({area_nm2 / 1e6:.4g} um2) cannot hold {int(counts.sum())} "
            f"randomly placed particles: {100 * covered / area_nm2:.0f}% of it would be "
            f"gold (the limit is {100 * MAX_COVERAGE:.0f}%); use a larger region, or "
            "lower the hard core (hard_core=0 disables it)")


def simulate_pattern(geom, counts: Sequence[int], diameters_nm: Sequence[float],
                     rng: np.random.Generator, hard_core: float = 1.0,
                     max_rounds: int = 200, fixed_xy: np.ndarray | None = None,
                     fixed_cls: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One random pattern with ``counts[c]`` particles of class ``c`` inside ``geom``.

    Parameters
    ----------
    geom : shapely geometry
        The region (nm), possibly concave or holed.
    counts : sequence of int
        Particles per class.
    diameters_nm : sequence of float
        Diameter of each class (nm).
    rng : numpy.random.Generator
    hard_core : float
        Minimum centre distance as a multiple of the mean diameter of the pair; 0 disables.
    max_rounds : int
        Give up after this many rounds.
    fixed_xy, fixed_cls : numpy.ndarray, optional
        Particles that stay where they are (a conditional null model: e.g. the 6 nm gold
        kept, the 12 nm gold re-placed); the new ones keep the hard core to them too. They
        are not returned and not counted in ``counts``.

    Returns
    -------
    xy : numpy.ndarray
        (N, 2) positions in nm of the new particles, grouped by class in class order.
    cls : numpy.ndarray
        (N,) class index of each point.

    Raises
    ------
    GoldDiggerError
        If the region cannot hold the particles.
    """
    counts = np.asarray(counts, dtype=np.int64)
    dmin = hard_core_distances(diameters_nm, hard_core)
    n_cls = len(counts)
    if fixed_xy is None:
        fixed_xy, fixed_cls = np.empty((0, 2)), np.empty(0, dtype=np.int64)
    fixed_xy = np.asarray(fixed_xy, dtype=float).reshape(-1, 2)
    fixed_cls = np.asarray(fixed_cls, dtype=np.int64)
    _check_capacity(float(geom.area), counts + np.bincount(fixed_cls, minlength=n_cls), dmin)
    if hard_core <= 0:
        pts = [uniform_points(geom, int(n), rng) for n in counts]
        cls = np.repeat(np.arange(n_cls), counts)
        return (np.concatenate(pts) if pts else np.empty((0, 2))), cls
    reach = float(dmin.max())
    n_fixed = len(fixed_xy)
    acc_xy = fixed_xy.copy()
    acc_cls = fixed_cls.copy()
    need = counts.copy()
    for _ in range(max_rounds):
        if need.sum() == 0:
            break
        m = np.where(need > 0, np.ceil(need * 1.25).astype(np.int64) + 4, 0)
        cand = uniform_points(geom, int(m.sum()), rng)
        ccls = np.repeat(np.arange(n_cls), m)
        order = rng.permutation(len(cand))
        cand, ccls = cand[order], ccls[order]
        alive = np.ones(len(cand), dtype=bool)
        if len(acc_xy):
            sdm = cKDTree(acc_xy).sparse_distance_matrix(
                cKDTree(cand), reach, output_type="ndarray")
            if len(sdm):
                bad = sdm["v"] < dmin[acc_cls[sdm["i"]], ccls[sdm["j"]]]
                alive[sdm["j"][bad]] = False
        pairs = cKDTree(cand).query_pairs(reach, output_type="ndarray")
        if len(pairs):
            i, j = pairs[:, 0], pairs[:, 1]
            dist = np.hypot(*(cand[i] - cand[j]).T)
            bad = dist < dmin[ccls[i], ccls[j]]
            # drop the later candidate of each overlapping pair
            alive[np.maximum(i, j)[bad]] = False
        keep = np.zeros(len(cand), dtype=bool)
        for c in range(n_cls):
            idx = np.flatnonzero(alive & (ccls == c))[: need[c]]
            keep[idx] = True
            need[c] -= len(idx)
        acc_xy = np.concatenate([acc_xy, cand[keep]])
        acc_cls = np.concatenate([acc_cls, ccls[keep]])
    if need.sum() > 0:
        raise GoldDiggerError(
            f"could not place {int(counts.sum())} particles without overlap in the region "
            f"({geom.area / 1e6:.4g} um2) after {max_rounds} rounds; the region is too "
            "small or too crowded (use a larger region, or lower the hard core)")
    acc_xy, acc_cls = acc_xy[n_fixed:], acc_cls[n_fixed:]
    order = np.argsort(acc_cls, kind="stable")
    return acc_xy[order], acc_cls[order]
