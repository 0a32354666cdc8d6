"""Size classes measured from the image at each detection.

The generator's class maps find particles well, but the score of a rare class's map is
a poor judge of size: a model that has seen a few dozen 12 nm particles readily calls a
crisp 6 nm particle "12 nm". Size is also something the image shows directly: a dark
disc of radius ``r`` gives the strongest scale-normalised Laplacian-of-Gaussian response
at ``sigma = r / sqrt(2)``. `measure_classes` compares that response at each class's
scale around each detection and picks the strongest, with no tuned parameter.

Only small windows around detections are read, so the cost grows with the number of
particles, not the image size, and tiling cannot change the result.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

__all__ = ["measure_classes", "SIZING_MODES"]

logger = logging.getLogger(__name__)

SIZING_MODES = ("maps", "image")


def measure_classes(plane: np.ndarray, x: np.ndarray, y: np.ndarray,
                    diameters_nm: list[float] | tuple[float, ...], pixel_size_nm: float,
                    search_nm: float = 1.5) -> np.ndarray:
    """The class (diameter) whose dark-disc response is strongest at each position.

    Parameters
    ----------
    plane : ndarray
        2D grey image, gold dark on a lighter background (any dtype; memmaps are read
        window by window).
    x, y : array
        Particle centres in pixels of ``plane`` (x = column, y = row).
    diameters_nm : sequence of float
        Candidate diameters (the model's classes).
    pixel_size_nm : float
        nm per pixel of ``plane``.
    search_nm : float
        The response is taken as the maximum within this distance of the centre (the
        detection's centre and the response's peak need not coincide exactly).

    Returns
    -------
    ndarray of float
        One diameter from ``diameters_nm`` per position.
    """
    plane = np.asarray(plane) if not isinstance(plane, np.memmap) else plane
    if plane.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {plane.shape}")
    if pixel_size_nm <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size_nm}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {x.shape} vs {y.shape}")
    diameters = np.asarray(sorted(float(d) for d in diameters_nm))
    if diameters.size == 0:
        raise ValueError("no candidate diameters")
    out = np.full(x.size, diameters[0])
    if diameters.size == 1 or x.size == 0:
        return out
    sigmas = diameters / 2 / np.sqrt(2) / pixel_size_nm
    reach = int(np.ceil(4 * sigmas.max() + search_nm / pixel_size_nm)) + 2
    search = max(1, int(round(search_nm / pixel_size_nm)))
    h, w = plane.shape
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        cx, cy = int(round(xi)), int(round(yi))
        x0, x1 = max(0, cx - reach), min(w, cx + reach + 1)
        y0, y1 = max(0, cy - reach), min(h, cy + reach + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        win = -np.asarray(plane[y0:y1, x0:x1], dtype=np.float32)
        lx, ly = cx - x0, cy - y0
        sy = slice(max(0, ly - search), ly + search + 1)
        sx = slice(max(0, lx - search), lx + search + 1)
        best = [float((-(s**2) * ndi.gaussian_laplace(win, s, mode="reflect"))[sy, sx].max())
                for s in sigmas]
        out[i] = diameters[int(np.argmax(best))]
    return out
