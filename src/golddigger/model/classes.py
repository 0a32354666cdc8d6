"""Size classes asked for by the user: any diameters (``10``) or ranges (``5-8``), and
the binning of measured diameters into them.

A diameter ``d`` takes particles measured within ``CLASS_TOLERANCE`` (25 %) of it, or
within ``CLASS_TOLERANCE_NM`` (2.5 nm) when that is more (small gold is measured less
precisely: on synthetic 5 nm gold at 0.56 nm/px, 90 % of the readings fall in 3.0-7.3
nm), and towards a neighbouring diameter further, up to the midpoint between the two:
with ``--classes 5 10`` the 5 nm class takes 2.5-7.5 nm and the 10 nm class 7.5-12.5 nm.
The midpoint is the arithmetic one because measurement errors are about as large in nm
at every size (median 0.2-0.9 nm for 5-25 nm gold), not in proportion to it. A range
``lo-hi`` takes those measured in it. A particle that fits several takes the nearest (in
nm, to the class's diameter or to a range's midpoint); one that fits none is "other"
(NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from golddigger.errors import GoldDiggerError

__all__ = ["CLASS_TOLERANCE", "CLASS_TOLERANCE_NM", "SizeClass", "assign_classes", "parse_classes"]

#: A class ``d`` takes particles measured in ``[d (1 - t), d (1 + t)]``
CLASS_TOLERANCE = 0.25
#: ... or in ``[d - t, d + t]`` with this ``t`` (nm) when it is wider (never below d / 2)
CLASS_TOLERANCE_NM = 2.5


@dataclass(frozen=True)
class SizeClass:
    """One size class: particles measured in ``[lo, hi]`` nm are reported as
    ``value`` nm (the diameter asked for, or a range's midpoint)."""

    lo: float
    hi: float
    value: float
    point: bool = False  # a diameter (True) or a range

    @property
    def label(self) -> str:
        return f"{self.value:g}" if self.point else f"{self.lo:g}-{self.hi:g}"


def parse_classes(spec: Sequence[float | str]) -> list[SizeClass]:
    """Size classes from numbers or strings (``6``, ``"10"``, ``"5-8"``).

    Raises
    ------
    GoldDiggerError
        For a class that is not a positive diameter or an increasing range.
    """
    out: list[SizeClass] = []
    for item in spec:
        text = str(item).strip()
        try:
            if isinstance(item, str) and "-" in text.lstrip("-"):
                a, b = (float(v) for v in text.split("-", 1))
                if not 0 < a < b:
                    raise ValueError
                out.append(SizeClass(a, b, 0.5 * (a + b)))
            else:
                d = float(text)
                if not d > 0:
                    raise ValueError
                t = max(CLASS_TOLERANCE * d, CLASS_TOLERANCE_NM)
                out.append(SizeClass(max(d - t, 0.5 * d), d + t, d, True))
        except ValueError:
            raise GoldDiggerError(
                f"class {item!r} is not a diameter in nm (e.g. 10) or a range (e.g. 5-8)"
            ) from None
    if not out:
        raise GoldDiggerError("no size classes given")
    values = [c.value for c in out]
    if len(set(values)) != len(values):
        raise GoldDiggerError(f"size classes must be distinct, got {list(spec)}")
    out = sorted(out, key=lambda c: c.value)
    # point classes reach to the midpoint of a neighbouring point class beyond their
    # tolerance
    points = [i for i, c in enumerate(out) if c.point]
    for a, b in zip(points, points[1:], strict=False):
        mid = 0.5 * (out[a].value + out[b].value)
        if mid > out[a].hi:
            out[a] = SizeClass(out[a].lo, mid, out[a].value, True)
        if mid < out[b].lo:
            out[b] = SizeClass(mid, out[b].hi, out[b].value, True)
    return out


def assign_classes(measured_nm: np.ndarray, classes: Sequence[SizeClass]) -> np.ndarray:
    """The class value (nm) of each measured diameter, NaN for "other"."""
    m = np.asarray(measured_nm, dtype=float)
    out = np.full(m.shape, np.nan)
    best = np.full(m.shape, np.inf)
    for c in classes:
        fits = (m >= c.lo) & (m <= c.hi)
        dist = np.abs(m - c.value)
        better = fits & (dist < best)
        out[better] = c.value
        best[better] = dist[better]
    return out
