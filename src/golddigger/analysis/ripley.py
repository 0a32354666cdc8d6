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

__all__ = ["PairSet", "k_function", "l_function"]


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
        if self.n >= 2:
            pairs = cKDTree(xy).query_pairs(r_max, output_type="ndarray")
        else:
            pairs = np.empty((0, 2), dtype=np.int64)
        self.i, self.j = pairs[:, 0], pairs[:, 1]
        h = xy[self.j] - xy[self.i]
        self.dist = np.hypot(h[:, 0], h[:, 1])
        self.w = gamma.weights(h[:, 0], h[:, 1]) if len(pairs) else np.empty(0)

    def k(self, r: np.ndarray, a: int | None = None, b: int | None = None) -> np.ndarray:
        """K(r): all points (``a`` None), class ``a``, or cross ``a``-``b`` (``a != b``).

        NaN when there are too few points (fewer than 2 of a class, or none of one of
        a cross pair).
        """
        r = np.asarray(r, dtype=float)
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
        if n_pairs <= 0:
            return np.full(r.shape, np.nan)
        d, w = self.dist[sel], self.w[sel]
        order = np.argsort(d)
        d, cw = d[order], np.concatenate([[0.0], np.cumsum(w[order])])
        sums = cw[np.searchsorted(d, r, side="right")]
        return factor * self.area * sums / n_pairs


def k_function(xy: np.ndarray, gamma: SetCovariance, r: np.ndarray) -> np.ndarray:
    """K(r) of one pattern (all points one class)."""
    r = np.asarray(r, dtype=float)
    return PairSet(xy, np.zeros(len(xy), dtype=np.int64), gamma, float(r.max())).k(r)


def l_function(k: np.ndarray) -> np.ndarray:
    """L = sqrt(K / pi)."""
    return np.sqrt(np.clip(k, 0.0, None) / np.pi)
