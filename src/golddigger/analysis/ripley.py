"""Ripley's K and Besag's L functions with the translation edge correction.

For a pattern of ``n`` points in a region ``W`` of area ``|W|``::

    K(r) = |W| / (n (n - 1)) * sum_{i != j} 1(d_ij <= r) * w_ij
    K_ab(r) = |W| / (n_a n_b) * sum_{i in a, j in b} 1(d_ij <= r) * w_ij     (cross)
    w_ij = |W| / gamma(x_j - x_i),    gamma(h) = area(W ∩ (W + h))
    L(r) = sqrt(K(r) / pi)

(Ohser's translation correction: unbiased for stationary patterns in any window, concave
or with holes.) For complete spatial randomness ``L(r) = r``; ``L(r) - r > 0`` means more
neighbours within ``r`` than random (clustering), ``< 0`` fewer (regularity).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from golddigger.analysis.geometry import SetCovariance

__all__ = ["PairSet", "cross_pairs", "k_function", "l_function", "pcf_bandwidth"]


def pcf_bandwidth(n: int, area: float) -> float:
    """Stoyan's bandwidth ``0.15 / sqrt(n / area)`` of the pair-correlation kernel."""
    return 0.15 / np.sqrt(max(n, 1) / area)


def _kernel_sums(d: np.ndarray, w: np.ndarray, r: np.ndarray, h: float) -> np.ndarray:
    """``sum_k w_k e_h(r - d_k)`` for each r, with the Epanechnikov kernel
    ``e_h(u) = 3 / (4 h) (1 - (u / h)^2)`` on ``|u| <= h``.

    The kernel is a quadratic in ``d``, so each sum comes from prefix sums of ``w``,
    ``w d`` and ``w d^2`` over the pairs within ``h`` of ``r`` (no pairs x r matrix).
    """
    if d.size == 0:
        return np.zeros(r.shape)
    order = np.argsort(d)
    d, w = d[order], w[order]
    c0 = np.concatenate([[0.0], np.cumsum(w)])
    c1 = np.concatenate([[0.0], np.cumsum(w * d)])
    c2 = np.concatenate([[0.0], np.cumsum(w * d * d)])
    lo = np.searchsorted(d, r - h, side="left")
    hi = np.searchsorted(d, r + h, side="right")
    s0, s1, s2 = c0[hi] - c0[lo], c1[hi] - c1[lo], c2[hi] - c2[lo]
    # sum w (1 - (r - d)^2 / h^2) = s0 - (r^2 s0 - 2 r s1 + s2) / h^2
    return 0.75 / h * (s0 - (r * r * s0 - 2 * r * s1 + s2) / (h * h))


class PairSet:
    """All point pairs closer than ``r_max``, with their translation weights.

    Computed once per pattern; `k` then gives K for any class or pair of classes.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions (nm).
    cls : numpy.ndarray
        (N,) class index of each point.
    gamma : SetCovariance
        The region's set covariance (its ``r_max`` must be at least this one).
    r_max : float
        Largest distance (nm).
    """

    def __init__(self, xy: np.ndarray, cls: np.ndarray, gamma: SetCovariance,
                 r_max: float) -> None:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        self.cls = np.asarray(cls, dtype=np.int64)
        self.area = gamma.area
        self.n = len(xy)
        self.r_max = float(r_max)
        if self.n >= 2:
            pairs = cKDTree(xy).query_pairs(r_max, output_type="ndarray")
        else:
            pairs = np.empty((0, 2), dtype=np.int64)
        self.i, self.j = pairs[:, 0], pairs[:, 1]
        h = xy[self.j] - xy[self.i]
        self.dist = np.hypot(h[:, 0], h[:, 1])
        self.w = gamma.weights(h[:, 0], h[:, 1]) if len(pairs) else np.empty(0)

    def _select(self, a: int | None, b: int | None):
        ci, cj = self.cls[self.i], self.cls[self.j]
        if a is None:
            sel, n_pairs, factor = slice(None), self.n * (self.n - 1), 2.0
        elif b is None or a == b:
            na = int(np.sum(self.cls == a))
            sel, n_pairs, factor = (ci == a) & (cj == a), na * (na - 1), 2.0
        else:
            na, nb = int(np.sum(self.cls == a)), int(np.sum(self.cls == b))
            sel = ((ci == a) & (cj == b)) | ((ci == b) & (cj == a))
            n_pairs, factor = na * nb, 1.0
        return sel, n_pairs, factor

    def k(self, r: np.ndarray, a: int | None = None, b: int | None = None) -> np.ndarray:
        """K(r): all points (``a`` None), class ``a``, or cross ``a``-``b`` (``a != b``).

        NaN when there are too few points (fewer than 2 of a class, or none of one of
        a cross pair).
        """
        r = np.asarray(r, dtype=float)
        sel, n_pairs, factor = self._select(a, b)
        if n_pairs <= 0:
            return np.full(r.shape, np.nan)
        d, w = self.dist[sel], self.w[sel]
        order = np.argsort(d)
        d, cw = d[order], np.concatenate([[0.0], np.cumsum(w[order])])
        sums = cw[np.searchsorted(d, r, side="right")]
        return factor * self.area * sums / n_pairs


    def g(self, r: np.ndarray, h: float, a: int | None = None, b: int | None = None
          ) -> np.ndarray:
        """Pair-correlation function g(r) (same selections as `k`), kernel estimate::

            g(r) = factor |W| / (2 pi r n_pairs) sum_{i<j} e_h(r - d_ij) w_ij

        with the Epanechnikov kernel ``e_h`` of half-width ``h`` (`pcf_bandwidth`) and the
        translation weights ``w_ij``; ``g = 1`` for CSR. NaN at ``r < h``, at
        ``r > r_max - h`` (pairs beyond ``r_max`` are not held) and with too few points.
        """
        r = np.asarray(r, dtype=float)
        sel, n_pairs, factor = self._select(a, b)
        out = np.full(r.shape, np.nan)
        if n_pairs <= 0:
            return out
        ok = (r >= h) & (r <= self.r_max - h + 1e-9)
        sums = _kernel_sums(self.dist[sel], self.w[sel], r[ok], h)
        out[ok] = factor * self.area * sums / (2 * np.pi * r[ok] * n_pairs)
        return out


def cross_pairs(xy_a: np.ndarray, xy_b: np.ndarray, gamma: SetCovariance, r_max: float
                ) -> PairSet:
    """A `PairSet` of the pairs between two patterns only (class 0 = a, 1 = b): enough
    for the cross K / g, cheaper than all pairs."""
    xy_a = np.asarray(xy_a, dtype=float).reshape(-1, 2)
    xy_b = np.asarray(xy_b, dtype=float).reshape(-1, 2)
    ps = PairSet.__new__(PairSet)
    ps.cls = np.concatenate([np.zeros(len(xy_a), np.int64), np.ones(len(xy_b), np.int64)])
    ps.area = gamma.area
    ps.n = len(ps.cls)
    ps.r_max = float(r_max)
    if len(xy_a) and len(xy_b):
        sdm = cKDTree(xy_a).sparse_distance_matrix(cKDTree(xy_b), r_max,
                                                   output_type="ndarray")
        i, j = sdm["i"].astype(np.int64), sdm["j"].astype(np.int64)
    else:
        i = j = np.empty(0, dtype=np.int64)
    ps.i, ps.j = i, j + len(xy_a)
    h = xy_b[j] - xy_a[i] if len(i) else np.empty((0, 2))
    ps.dist = np.hypot(h[:, 0], h[:, 1])
    ps.w = gamma.weights(h[:, 0], h[:, 1]) if len(i) else np.empty(0)
    return ps


def k_function(xy: np.ndarray, gamma: SetCovariance, r: np.ndarray) -> np.ndarray:
    """K(r) of one pattern (all points one class)."""
    r = np.asarray(r, dtype=float)
    return PairSet(xy, np.zeros(len(xy), dtype=np.int64), gamma, float(r.max())).k(r)


def l_function(k: np.ndarray) -> np.ndarray:
    """L = sqrt(K / pi)."""
    return np.sqrt(np.clip(k, 0.0, None) / np.pi)
