"""Counts and densities per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NM2_PER_UM2", "density_rows"]

#: Square nanometres in a square micrometre.
NM2_PER_UM2 = 1e6


def density_rows(cls: np.ndarray, class_names: Sequence[str], area_nm2: float
                 ) -> list[dict]:
    """One row per class and one for all: ``class, n, area_um2, density_per_um2``.

    Parameters
    ----------
    cls : numpy.ndarray
        Class index of each particle.
    class_names : sequence of str
        Name of each class index (``"6"``, ``"12"``).
    area_nm2 : float
        Area of the region (nm²).
    """
    cls = np.asarray(cls, dtype=np.int64)
    area_um2 = area_nm2 / NM2_PER_UM2
    rows = []
    for c, name in enumerate(class_names):
        n = int(np.sum(cls == c))
        rows.append({"class": name, "n": n, "area_um2": area_um2,
                     "density_per_um2": n / area_um2})
    rows.append({"class": "all", "n": int(cls.size), "area_um2": area_um2,
                 "density_per_um2": cls.size / area_um2})
    return rows
