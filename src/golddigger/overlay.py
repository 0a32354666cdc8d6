"""An overlay picture: the image with a circle on each detected particle, coloured by class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golddigger.io.images import CalibratedImage
from golddigger.io.regions import Region
from golddigger.particles import ParticleTable

__all__ = ["render_overlay", "save_overlay"]


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _block_mean(plane: np.ndarray, step: int, chunk_px: int = 1 << 22) -> np.ndarray:
    """Mean of ``step x step`` blocks (the last partial row/column of blocks dropped) as
    float32, read in strips of rows; ``step`` 1 is a plain float32 copy."""
    if step == 1:
        return np.asarray(plane, dtype=np.float32)
    h, w = (plane.shape[0] // step) * step, (plane.shape[1] // step) * step
    out = np.empty((h // step, w // step), dtype=np.float32)
    rows = max(1, chunk_px // max(1, w * step)) * step
    for r in range(0, h, rows):
        strip = np.asarray(plane[r:min(r + rows, h), :w], dtype=np.float32)
        out[r // step:r // step + strip.shape[0] // step] = strip.reshape(
            strip.shape[0] // step, step, w // step, step).mean(axis=(1, 3))
    return out


def render_overlay(plane: np.ndarray, particles: ParticleTable, pixel_size_nm: float,
                   region: Region | None = None, max_side: int = 2048) -> np.ndarray:
    """An RGB uint8 picture of one plane with particles circled (and the region outlined),
    downscaled so that its longer side is at most ``max_side``."""
    from skimage.draw import circle_perimeter
    from skimage.segmentation import find_boundaries
    from skimage.transform import rescale

    from golddigger.io.rois import class_colors

    # big planes (memory maps included) are first reduced by an integer block mean, in
    # strips, so no full-size float copy is made; the rest is resampled as before
    step = max(1, int(max(plane.shape) // max_side))
    a = _block_mean(plane, step)
    lo, hi = np.percentile(a[::4, ::4], [0.5, 99.5])
    grey = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)
    f = min(1.0, max_side / max(grey.shape))
    if f < 1:
        grey = rescale(grey, f, anti_aliasing=True)
    f = f / step  # input pixels -> picture pixels
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    if region is not None:
        if f < 1:
            edge = find_boundaries(region.scaled(f).to_mask(grey.shape), mode="inner")
        else:
            edge = find_boundaries(region.to_mask(plane.shape), mode="inner")
        rgb[edge] = (255, 255, 0)
    colors = class_colors(particles.classes)
    for x, y, d, _s, _z in particles:
        r = max(2, int(round(0.5 * d / pixel_size_nm * f)) + 2)
        for rr in (r, r + 1):
            yy, xx = circle_perimeter(int(round(y * f)), int(round(x * f)), rr, shape=grey.shape)
            rgb[yy, xx] = _rgb(colors[d])
    return rgb


def overlay_png(image: CalibratedImage, particles: ParticleTable, pixel_size_nm: float,
                region: Region | None = None) -> bytes:
    """The overlay of the first slice (stacks: the slice with most particles) as PNG bytes."""
    import io

    from PIL import Image

    s = 0
    if image.is_stack and len(particles):
        s = int(np.bincount(particles.slice, minlength=image.n_slices).argmax())
    rgb = render_overlay(image.slice(s), particles.in_slice(s), pixel_size_nm, region)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def save_overlay(path: str | Path, image: CalibratedImage, particles: ParticleTable,
                 pixel_size_nm: float, region: Region | None = None) -> None:
    """Write `overlay_png` to ``path`` (atomically)."""
    from golddigger.io.safe import atomic_write_bytes

    atomic_write_bytes(path, overlay_png(image, particles, pixel_size_nm, region))
