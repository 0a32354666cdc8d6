"""Between napari layers and Gold Digger's tables: particles as Points layer data, regions
from Shapes or Labels layers, the pixel size from a layer's scale.

Coordinates: napari's data coordinates of an image are (row, column) with pixel centres at
integers, Gold Digger's are (x = column, y = row) with the same centres, so a particle at
``(x, y)`` in slice ``s`` is the point ``(y, x)`` (``(s, y, x)`` in a stack). Nothing here
imports napari: layers are read through their public attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from golddigger.errors import GoldDiggerError
from golddigger.io.regions import Region
from golddigger.io.rois import class_colors
from golddigger.particles import ParticleTable

__all__ = [
    "FEATURES",
    "layer_pixel_size",
    "particles_to_layer_data",
    "points_to_particles",
    "region_from_layer",
]

logger = logging.getLogger(__name__)

#: The Points layer features of a particle.
FEATURES = ("diameter_nm", "class", "score")

_NM_PER_UNIT = {"nanometer": 1.0, "micrometer": 1000.0, "angstrom": 0.1, "millimeter": 1e6,
                "meter": 1e9}


def layer_pixel_size(layer) -> float | None:
    """nm per pixel from a layer's ``scale`` (last axis) and ``units``; None when the layer
    is not calibrated (scale 1 in pixels).

    A scale other than 1 with no unit (napari's "pixel") is taken to be in nm, as Gold
    Digger's sample and detections set it.
    """
    scale = float(np.asarray(layer.scale)[-1])
    units = getattr(layer, "units", None)
    unit = str(units[-1]) if units is not None and len(units) else "pixel"
    if unit in _NM_PER_UNIT:
        return scale * _NM_PER_UNIT[unit]
    if scale != 1.0 and scale > 0:
        return scale
    return None


def particles_to_layer_data(particles: ParticleTable, pixel_size_nm: float, ndim: int = 2,
                            name: str = "gold", scale: Sequence[float] | None = None,
                            translate: Sequence[float] | None = None,
                            units: Sequence[str] | None = None) -> tuple:
    """A napari ``(data, kwargs, "points")`` tuple of particles.

    Point size is the particle's diameter in pixels, the border its class colour as in
    Fiji (`golddigger.io.rois.class_colors`), features ``diameter_nm``, ``class``,
    ``score``, the layer scale the pixel size in nm unless ``scale`` (and ``units``) are
    given (those of the image layer, so the points lie on it).
    """
    data = _coords(particles, ndim)
    if scale is None:
        scale = [1.0] * (ndim - 2) + [pixel_size_nm, pixel_size_nm]
        units = ["pixel"] * (ndim - 2) + ["nm", "nm"]
    kwargs = dict(name=name, scale=tuple(float(s) for s in scale), **style(particles,
                                                                          pixel_size_nm))
    if units is not None:
        kwargs["units"] = tuple(str(u) for u in units)
    if translate is not None:
        kwargs["translate"] = tuple(float(t) for t in translate)
    kwargs["metadata"] = {"pixel_size_nm": float(pixel_size_nm), "golddigger": True}
    kwargs["out_of_slice_display"] = False
    return data, kwargs, "points"


def style(particles: ParticleTable, pixel_size_nm: float) -> dict:
    """Features, size and colours of particles as Points layer keyword arguments."""
    colours = class_colors(particles.classes)
    border = [colours[min(colours, key=lambda k: abs(k - d))] for d in particles.diameter_nm]
    return dict(
        features={"diameter_nm": particles.diameter_nm.astype(float),
                  "class": np.array([f"{d:g} nm" for d in particles.diameter_nm], dtype=object),
                  "score": particles.score.astype(float)},
        size=(particles.diameter_nm / pixel_size_nm) if len(particles) else 1.0,
        face_color="transparent",
        border_color=border if len(particles) else "white",
        border_width=0.15, border_width_is_relative=True,
    )


def _coords(particles: ParticleTable, ndim: int) -> np.ndarray:
    if ndim == 2:
        return np.stack([particles.y, particles.x], axis=1).reshape(-1, 2)
    lead = np.zeros((len(particles), ndim - 3))
    return np.column_stack([lead, particles.slice.astype(float), particles.y, particles.x]
                           ).reshape(-1, ndim)


def points_to_particles(data: np.ndarray, features=None, pixel_size_nm: float | None = None,
                        size=None) -> ParticleTable:
    """A `ParticleTable` from Points layer data and features.

    ``diameter_nm`` comes from the features, else from the point size times the pixel
    size; ``score`` from the features, else 1 (a hand-placed point). Stacks: the third
    axis from the end is the slice.
    """
    data = np.asarray(data, dtype=float).reshape(len(data), -1) if len(data) else np.empty(
        (0, 2))
    n = len(data)
    d = _feature(features, "diameter_nm", n)
    if d is None or np.any(~np.isfinite(d)):
        if size is None or pixel_size_nm is None:
            raise GoldDiggerError("the Points layer has no diameter_nm feature and no pixel "
                                  "size: give each point a diameter_nm feature")
        from_size = np.broadcast_to(np.asarray(size, dtype=float).reshape(-1)
                                    if np.ndim(size) else float(size), (n,)) * pixel_size_nm
        d = from_size if d is None else np.where(np.isfinite(d), d, from_size)
    score = _feature(features, "score", n)
    score = np.ones(n) if score is None else np.where(np.isfinite(score), score, 1.0)
    sl = (np.rint(data[:, -3]).astype(np.int64) if data.shape[1] >= 3
          else np.zeros(n, dtype=np.int64))
    if np.any(sl < 0):
        raise GoldDiggerError("points lie before the first slice of the stack")
    return ParticleTable(data[:, -1], data[:, -2], d, score, sl)


def _feature(features, name: str, n: int) -> np.ndarray | None:
    if features is None:
        return None
    try:
        values = features[name]
    except (KeyError, TypeError, IndexError):
        return None
    arr = np.asarray(values, dtype=float).reshape(-1)
    return arr if arr.size == n else None


def to_image_pixels(vertices: np.ndarray, layer, image) -> np.ndarray:
    """(N, 2) (row, col) vertices of ``layer``'s data into ``image``'s data pixels (the
    last two axes' scale and translate)."""
    v = np.asarray(vertices, dtype=float)[:, -2:]
    s_l, t_l = np.asarray(layer.scale)[-2:], np.asarray(layer.translate)[-2:]
    s_i, t_i = np.asarray(image.scale)[-2:], np.asarray(image.translate)[-2:]
    return (v * s_l + t_l - t_i) / s_i


def region_from_layer(layer, image, plane_shape: tuple[int, int],
                      slice_index: int = 0) -> Region | None:
    """The region a Shapes layer (polygons, rectangles, ellipses; their union) or a Labels
    layer (non-zero pixels) outlines, in pixels of ``image``; None for no layer.

    Raises
    ------
    GoldDiggerError
        No area shape in the layer, or a Labels layer of another size than the image.
    """
    if layer is None:
        return None
    kind = type(layer).__name__
    if kind == "Labels":
        mask = np.asarray(layer.data)
        if mask.ndim == 3:
            mask = mask[min(slice_index, mask.shape[0] - 1)]
        if mask.shape != tuple(plane_shape):
            raise GoldDiggerError(f"the Labels layer {layer.name!r} is {mask.shape[1]} x "
                                  f"{mask.shape[0]} px but the image is {plane_shape[1]} x "
                                  f"{plane_shape[0]}; paint the region on the image")
        region = Region.from_mask(mask != 0, name=layer.name)
    elif kind == "Shapes":
        from shapely import union_all

        polys = []
        for verts, shape_type in zip(layer.data, layer.shape_type, strict=False):
            v = np.asarray(verts, dtype=float)
            if v.shape[1] >= 3 and np.ptp(v[:, -3]) == 0 and image.ndim >= 3:
                if int(round(v[0, -3])) != slice_index:
                    continue  # a shape drawn on another slice
            rc = to_image_pixels(v, layer, image)
            if shape_type == "ellipse":
                rc = _ellipse(rc)
            elif shape_type not in ("polygon", "rectangle"):
                continue
            polys.append(Region.from_polygon(rc[:, ::-1]).geometry)
        if not polys:
            raise GoldDiggerError(f"the Shapes layer {layer.name!r} has no polygon, rectangle "
                                  "or ellipse on this slice: draw the region with one")
        region = Region(geometry=union_all(polys), name=layer.name)
    else:
        raise GoldDiggerError(f"a region must be a Shapes or Labels layer, not {kind}")
    if region.is_empty():
        raise GoldDiggerError(f"the region {layer.name!r} is empty: draw an area")
    return region


def _ellipse(corners: np.ndarray, n: int = 64) -> np.ndarray:
    """Polygon of the ellipse inscribed in napari's 4 bounding-box corners."""
    c = corners.mean(axis=0)
    a = (corners[1] - corners[0]) / 2
    b = (corners[3] - corners[0]) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    return c + np.cos(t) * a + np.sin(t) * b


def class_names(diameters: Sequence[float]) -> list[str]:
    """``["6 nm", "12 nm"]``."""
    return [f"{d:g} nm" for d in diameters]
