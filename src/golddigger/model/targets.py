"""Training targets: a Gaussian at each particle centre, in its class's map (or in the one
gold map)."""

from __future__ import annotations

import numpy as np

__all__ = ["render_targets"]


def render_targets(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, class_index: np.ndarray,
                   n_classes: int, sigma_px: np.ndarray) -> np.ndarray:
    """Render ``(n_classes, H, W)`` float32 maps in [0, 1] (``n_classes`` maps).

    Parameters
    ----------
    shape : (H, W)
        Map size.
    x, y : array
        Particle centres in map pixels (pixel-centre convention).
    class_index : array of int
        Map index of each particle.
    n_classes : int
        Number of maps.
    sigma_px : array
        Gaussian sigma of each particle, in map pixels.

    Overlapping Gaussians take the maximum, so each peak is exactly 1.
    """
    h, w = shape
    out = np.zeros((n_classes, h, w), dtype=np.float32)
    for xi, yi, ci, si in zip(x, y, class_index, sigma_px, strict=True):
        s = float(si)
        r = int(np.ceil(3 * s)) + 1
        x0, x1 = max(0, int(np.floor(xi)) - r), min(w, int(np.floor(xi)) + r + 2)
        y0, y1 = max(0, int(np.floor(yi)) - r), min(h, int(np.floor(yi)) + r + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - xi) / s) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - yi) / s) ** 2)
        patch = np.outer(gy, gx).astype(np.float32)
        np.maximum(out[ci, y0:y1, x0:x1], patch, out=out[ci, y0:y1, x0:x1])
    return out
