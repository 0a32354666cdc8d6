"""From particle maps to particles: peaks per class, subpixel centres, one detection per
particle across classes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["find_peaks", "suppress_across_classes", "maps_to_particles"]


def find_peaks(prob: np.ndarray, threshold: float, min_distance_px: float,
               refine_radius: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima of one map above ``threshold``, with subpixel centres.

    Parameters
    ----------
    prob : (H, W) array
        A probability map.
    threshold : float
        Minimum peak value.
    min_distance_px : float
        Peaks closer than this to a higher one are dropped (a square window of side
        ``2 * round(min_distance_px) + 1`` is used for the local-maximum test).
    refine_radius : int
        Half-size of the window for the intensity-weighted centroid.

    Returns
    -------
    x, y, score : arrays
        Subpixel centres (pixel-centre convention) and peak values.
    """
    prob = np.asarray(prob, dtype=np.float32)
    size = 2 * max(1, int(round(min_distance_px))) + 1
    local_max = ndi.maximum_filter(prob, size=size, mode="nearest") == prob
    peaks = local_max & (prob >= threshold)
    # plateaus (equal neighbours): keep one pixel per connected plateau
    labels, n = ndi.label(peaks)
    # a plateau larger than the peak window is a flat area (a constant image, a saturated
    # or padded region), not a particle
    # (computed over the peak pixels only: whole-plane arrays here would cost more memory
    # than the maps themselves; the result equals ndi.center_of_mass(peaks, labels, ...))
    pr, pc = np.nonzero(peaks)
    lab = labels[pr, pc]
    sizes = np.bincount(lab, minlength=n + 1)
    kept = np.flatnonzero(sizes[1:] <= size * size) + 1
    if kept.size == 0:
        empty = np.empty(0)
        return empty, empty, empty
    rows = np.rint(np.bincount(lab, weights=pr, minlength=n + 1)[kept] / sizes[kept])
    cols = np.rint(np.bincount(lab, weights=pc, minlength=n + 1)[kept] / sizes[kept])
    rows, cols = rows.astype(int), cols.astype(int)
    score = prob[rows, cols].astype(np.float64)
    # subpixel: centroid of the map (minus the window minimum) around the peak
    h, w = prob.shape
    k = refine_radius
    offs = np.arange(-k, k + 1)
    win = np.empty((rows.size, 2 * k + 1, 2 * k + 1), dtype=np.float32)
    for i, dy in enumerate(offs):  # edges repeated (as np.pad "edge"), without a padded copy
        for j, dx in enumerate(offs):
            win[:, i, j] = prob[np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]
    win = win - win.min(axis=(1, 2), keepdims=True)
    total = win.sum(axis=(1, 2))
    total[total <= 0] = 1.0
    dy = (win.sum(axis=2) * offs).sum(axis=1) / total
    dx = (win.sum(axis=1) * offs).sum(axis=1) / total
    x = np.clip(cols + dx, 0, w - 1)
    y = np.clip(rows + dy, 0, h - 1)
    return x, y, score


def suppress_across_classes(x: np.ndarray, y: np.ndarray, score: np.ndarray,
                            radius_px: np.ndarray) -> np.ndarray:
    """Greedy non-maximum suppression across classes: one detection per particle.

    A candidate is dropped when a higher-scoring one lies closer than the larger of the
    two particles' radii. Returns the indices kept (by descending score).
    """
    order = np.argsort(-score, kind="stable")
    if order.size == 0:
        return order
    from scipy.spatial import cKDTree

    tree = cKDTree(np.stack([x, y], axis=1))
    rmax = float(radius_px.max())
    kept = np.zeros(score.size, dtype=bool)
    removed = np.zeros(score.size, dtype=bool)
    for i in order:
        if removed[i]:
            continue
        kept[i] = True
        for j in tree.query_ball_point([x[i], y[i]], rmax):
            if j != i and not kept[j]:
                d = np.hypot(x[i] - x[j], y[i] - y[j])
                if d < max(radius_px[i], radius_px[j]):
                    removed[j] = True
    return order[kept[order]]


def maps_to_particles(maps: np.ndarray, diameters_nm: list[float], pixel_size_nm: float,
                      thresholds: list[float]) -> tuple[np.ndarray, ...]:
    """Particles from ``(C, H, W)`` probability maps at ``pixel_size_nm``.

    Peaks of every class above the lowest threshold compete in one cross-class
    suppression (the strongest wins each particle); then each survivor must pass its own
    class's threshold. So filtering a low-threshold result by per-class thresholds later
    gives exactly what running with those thresholds gives.

    Returns
    -------
    x, y, diameter_nm, score : arrays
        In map pixels.
    """
    floor = float(min(thresholds))
    xs, ys, ds, ss, rs, ts = [], [], [], [], [], []
    for c, d in enumerate(diameters_nm):
        radius_px = 0.5 * d / pixel_size_nm
        x, y, s = find_peaks(maps[c], floor, min_distance_px=max(1.0, radius_px))
        xs.append(x)
        ys.append(y)
        ss.append(s)
        ds.append(np.full(x.size, float(d)))
        rs.append(np.full(x.size, radius_px))
        ts.append(np.full(x.size, float(thresholds[c])))
    x, y, d, s, r, t = (np.concatenate(a) for a in (xs, ys, ds, ss, rs, ts))
    keep = suppress_across_classes(x, y, s, r)
    keep = keep[s[keep] >= t[keep]]
    return x[keep], y[keep], d[keep], s[keep]
