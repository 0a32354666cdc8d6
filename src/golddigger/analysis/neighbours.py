"""Nearest-neighbour distances, within a class and from one class to another (nm)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["cross_nnd", "nnd", "nnd_stats"]


def nnd(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to its nearest other point, and that point's index.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions (nm).

    Returns
    -------
    dist, index : numpy.ndarray
        (N,) each; NaN and -1 when N < 2.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = len(xy)
    if n < 2:
        return np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
    dist, idx = cKDTree(xy).query(xy, k=2)
    # with duplicate points the self-match may come second: take the other one
    self_first = idx[:, 0] == np.arange(n)
    d = np.where(self_first, dist[:, 1], dist[:, 0])
    j = np.where(self_first, idx[:, 1], idx[:, 0])
    return d, j.astype(np.int64)


def cross_nnd(xy_from: np.ndarray, xy_to: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point of ``xy_from`` to the nearest point of ``xy_to``.

    Returns
    -------
    dist, index : numpy.ndarray
        (len(xy_from),) each, index into ``xy_to``; NaN and -1 when ``xy_to`` is empty.
    """
    xy_from = np.asarray(xy_from, dtype=float).reshape(-1, 2)
    xy_to = np.asarray(xy_to, dtype=float).reshape(-1, 2)
    if len(xy_to) == 0 or len(xy_from) == 0:
        return np.full(len(xy_from), np.nan), np.full(len(xy_from), -1, dtype=np.int64)
    dist, idx = cKDTree(xy_to).query(xy_from, k=1)
    return dist, idx.astype(np.int64)


def nnd_stats(dist: np.ndarray) -> dict[str, float | int]:
    """``n, mean_nm, sd_nm, median_nm, min_nm, max_nm`` of finite distances (NaN if none;
    ``sd`` is the sample standard deviation)."""
    d = np.asarray(dist, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        nan = float("nan")
        return {"n": 0, "mean_nm": nan, "sd_nm": nan, "median_nm": nan, "min_nm": nan,
                "max_nm": nan}
    return {"n": int(d.size), "mean_nm": float(d.mean()),
            "sd_nm": float(d.std(ddof=1)) if d.size > 1 else float("nan"),
            "median_nm": float(np.median(d)), "min_nm": float(d.min()),
            "max_nm": float(d.max())}
