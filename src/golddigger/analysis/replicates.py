"""Replicated patterns: pooled K / L over many synapses, and comparing groups of images.

For images (or regions) ``i = 1..m`` of the same kind with ``n_i`` particles and
translation-corrected ``K_i(r)`` (`ripley`), the pooled estimate weights each by its
number of point pairs, ``w_i = n_i (n_i - 1)`` (Diggle, Lange & Benes 1991; Baddeley et
al. 1993)::

    K_pool(r) = sum_i w_i K_i(r) / sum_i w_i,     L_pool(r) = sqrt(K_pool(r) / pi)

Groups (genotypes, treatments) are compared with a permutation test on the pooled
functions: ``T = sum_g W_g * mean_r (L_g(r) - L_pool(r))^2`` where ``L_g`` is the pooled L
of group ``g``, ``W_g`` its total weight (normalised) and ``L_pool`` that of all images; the
group labels are permuted over the images (the images are the replicates) and
``p = (1 + #{T_perm >= T_obs}) / (n_perm + 1)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from golddigger.analysis.geometry import SetCovariance
from golddigger.analysis.ripley import PairSet, l_function
from golddigger.errors import GoldDiggerError

__all__ = ["DEFAULT_N_PERM", "GroupTest", "ReplicateK", "group_test", "pool",
           "replicate_k"]

#: Default permutations of the group test.
DEFAULT_N_PERM = 999


@dataclass
class ReplicateK:
    """K of one image and region for one relation (``"all"``, or a class name)."""

    image: str
    region: str
    relation: str
    n: int
    r: np.ndarray
    k: np.ndarray

    @property
    def weight(self) -> float:
        return float(self.n * (self.n - 1))


def replicate_k(result, r: np.ndarray) -> list[ReplicateK]:
    """K on the grid ``r`` of all particles and of each non-empty class of one
    `AnalysisResult` (relations with fewer than 2 particles are left out)."""
    r = np.asarray(r, dtype=float)
    gamma = None
    mc = result.monte_carlo
    if mc is not None and mc.model.r_max >= r.max():
        gamma = mc.model.gamma
    if gamma is None:
        gamma = SetCovariance(result.geometry_nm, float(r.max()))
    pairs = PairSet(result.xy_nm, result.cls, gamma, float(r.max()))
    out = []
    if len(result.cls) >= 2:
        out.append(ReplicateK(result.name, result.region_name, "all", len(result.cls), r,
                              pairs.k(r)))
    for c, name in enumerate(result.class_names):
        n = int(np.sum(result.cls == c))
        if n >= 2:
            out.append(ReplicateK(result.name, result.region_name, name, n, r, pairs.k(r, c)))
    return out


def pool(reps: Sequence[ReplicateK]) -> np.ndarray:
    """The pooled K (weights ``n (n - 1)``); NaN when no replicate has 2 points."""
    w = np.array([x.weight for x in reps], dtype=float)
    if not len(reps) or w.sum() <= 0:
        return np.full(reps[0].r.shape if reps else 0, np.nan)
    ks = np.vstack([x.k for x in reps])
    return (w[:, None] * ks).sum(axis=0) / w.sum()


@dataclass
class GroupTest:
    """The permutation test between groups of one relation."""

    relation: str
    groups: tuple[str, ...]
    n_images: tuple[int, ...]
    statistic: float
    p_value: float
    n_perm: int


def _t_stat(ks: np.ndarray, w: np.ndarray, labels: np.ndarray, n_groups: int) -> float:
    total = (w[:, None] * ks).sum(axis=0) / w.sum()
    l_all = l_function(total)
    t = 0.0
    for g in range(n_groups):
        sel = labels == g
        wg = w[sel].sum()
        if wg <= 0:
            continue
        lg = l_function((w[sel, None] * ks[sel]).sum(axis=0) / wg)
        t += wg / w.sum() * float(np.mean((lg - l_all) ** 2))
    return t


def group_test(reps: Sequence[ReplicateK], groups: Mapping[str, str],
               n_perm: int = DEFAULT_N_PERM, seed: int | None = 0) -> GroupTest:
    """Permutation test that the groups share one pooled L function.

    Parameters
    ----------
    reps : sequence of ReplicateK
        One relation, one per image (and region).
    groups : mapping
        Image name to group name; images without a group are left out.
    n_perm : int
    seed : int or None

    Raises
    ------
    GoldDiggerError
        Fewer than two groups with images, or fewer than 3 images in all.
    """
    reps = [x for x in reps if x.image in groups and x.weight > 0]
    names = sorted({groups[x.image] for x in reps})
    if len(names) < 2:
        raise GoldDiggerError("the group comparison needs images (with at least 2 particles) "
                              f"in at least two groups; found {len(names)} group(s)")
    labels = np.array([names.index(groups[x.image]) for x in reps])
    ks = np.vstack([x.k for x in reps])
    w = np.array([x.weight for x in reps])
    t_obs = _t_stat(ks, w, labels, len(names))
    rng = np.random.default_rng(seed)
    t_perm = np.array([_t_stat(ks, w, rng.permutation(labels), len(names))
                       for _ in range(n_perm)])
    p = float((1 + np.sum(t_perm >= t_obs - 1e-12 * abs(t_obs))) / (n_perm + 1))
    counts = tuple(int(np.sum(labels == g)) for g in range(len(names)))
    return GroupTest(reps[0].relation, tuple(names), counts, float(t_obs), p, n_perm)
