"""Turning a micrograph into the network's input: one resampling and one normalisation,
shared by training and inference so both see the same thing."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["normalise", "normalise_tensor", "resample", "resample_plane", "robust_stats"]


def robust_stats(image: np.ndarray, max_samples: int = 1_000_000,
                 mask: np.ndarray | None = None) -> tuple[float, float]:
    """Median and robust spread (1.4826 x MAD) of an image, on a regular subsample.

    The subsample makes the figures independent of tiling and cheap for huge images.
    ``mask`` (bool, the image's shape), when given, restricts them to its True pixels
    (the specimen, `golddigger.model.specimen.specimen_mask`), sampled as densely as
    if the rest were not there.
    """
    a = np.asarray(image)
    if mask is not None:
        n = int(np.count_nonzero(mask))
        if n == 0:
            return 0.0, 1.0
        step = max(1, int(np.sqrt(n / max_samples)))
        sample = np.asarray(a[::step, ::step][mask[::step, ::step]], dtype=np.float32)
        if sample.size == 0:
            sample = np.asarray(a[mask], dtype=np.float32)
    else:
        step = max(1, int(np.sqrt(a.size / max_samples)))
        sample = np.asarray(a[::step, ::step], dtype=np.float32)
    med = float(np.median(sample))
    mad = float(np.median(np.abs(sample - med))) * 1.4826
    if not np.isfinite(mad) or mad < 1e-6:
        spread = float(sample.std())
        mad = spread if spread > 1e-6 else 1.0
    return med, mad


def normalise(image: np.ndarray, stats: tuple[float, float] | None = None) -> np.ndarray:
    """``(image - median) / spread`` as float32, clipped to [-20, 20].

    Gold is dark, so it sits far below zero; the clip keeps saturated pixels and the
    scale bar from dominating. Micrographs of different darkness map to the same range.
    """
    med, spread = stats if stats is not None else robust_stats(image)
    out = (np.asarray(image, dtype=np.float32) - np.float32(med)) / np.float32(spread)
    return np.clip(out, -20.0, 20.0, out=out)


def resample(image: np.ndarray | torch.Tensor, factor: float) -> torch.Tensor:
    """Resize a 2D image by ``factor`` (new = old * factor) with antialiased bilinear
    interpolation; returns a (1, 1, H, W) float32 tensor.

    Pixel centres follow the half-pixel convention, so a point at ``(x, y)`` in the input
    lands at ``((x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5)`` with ``fx = W_new / W``.
    """
    t = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32) \
        if not isinstance(image, torch.Tensor) else image.float()
    while t.ndim < 4:
        t = t.unsqueeze(0)
    if abs(factor - 1.0) < 1e-9:
        return t
    h, w = t.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False,
                         antialias=factor < 1.0)


def normalise_tensor(t: torch.Tensor, stats: tuple[float, float]) -> torch.Tensor:
    """`normalise` for a tensor (in place), with stats taken from the full-size image."""
    med, spread = stats
    return t.sub_(med).div_(spread).clamp_(-20.0, 20.0)


def resample_plane(plane: np.ndarray, factor: float, chunk_px: int = 1 << 24) -> torch.Tensor:
    """`resample` for a 2D plane of any size, in bounded memory.

    Small planes go in one call. Large ones (memory maps included) are resampled in two
    separable passes, rows in strips then columns in strips, which gives the same result
    since antialiased bilinear resampling is separable; the input is never converted to
    float as a whole.
    """
    h, w = plane.shape
    if h * w <= chunk_px or abs(factor - 1.0) < 1e-9:
        return resample(np.asarray(plane, dtype=np.float32), factor)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    inter = torch.empty((1, 1, h, new_w), dtype=torch.float32)
    rows = max(1, chunk_px // w)
    for r0 in range(0, h, rows):
        strip = torch.from_numpy(np.asarray(plane[r0:r0 + rows], dtype=np.float32))
        inter[0, 0, r0:r0 + rows] = F.interpolate(
            strip[None, None], size=(strip.shape[0], new_w), mode="bilinear",
            align_corners=False, antialias=factor < 1.0)[0, 0]
    out = torch.empty((1, 1, new_h, new_w), dtype=torch.float32)
    cols = max(1, chunk_px // h)
    for c0 in range(0, new_w, cols):
        strip = inter[:, :, :, c0:c0 + cols]
        out[:, :, :, c0:c0 + cols] = F.interpolate(
            strip, size=(new_h, strip.shape[-1]), mode="bilinear", align_corners=False,
            antialias=factor < 1.0)
    return out
