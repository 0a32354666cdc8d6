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

__all__ = ["CLASS_TOLERANCE", "CLASS_TOLERANCE_NM", "MATCH_LIMIT", "MATCH_TOLERANCE", "SizeClass",
           "assign_classes", "parse_classes", "scale_passes", "size_match_factor"]

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


#: `size_match_factor` keeps the image's own scale when the match would change it by
#: less than this fraction (resampling by a few percent buys nothing)
MATCH_TOLERANCE = 0.05
#: ... and never changes it by more than this factor either way
MATCH_LIMIT = 4.0


def _log_distance(log_d: np.ndarray, log_g: float, model_nm: Sequence[float] | None,
                  model_range_nm: tuple[float, float] | None) -> np.ndarray:
    """|log| distance of each asked size ``exp(log_d) / g`` to the nearest known size, or
    to the known range (zero inside it)."""
    shown = log_d - log_g
    if model_nm is not None:
        m = np.log(np.asarray(model_nm, dtype=float))
        return np.min(np.abs(shown[:, None] - m[None, :]), axis=1)
    if model_range_nm is None:
        raise GoldDiggerError("size matching needs the model's diameters or range")
    lo, hi = np.log(float(model_range_nm[0])), np.log(float(model_range_nm[1]))
    if not hi > lo:
        raise GoldDiggerError(f"model range {model_range_nm} is not increasing")
    return np.maximum(lo - shown, 0) + np.maximum(shown - hi, 0)


def size_match_factor(asked_nm: Sequence[float], model_nm: Sequence[float] | None = None,
                      model_range_nm: tuple[float, float] | None = None) -> float:
    """How much larger the gold asked for is than the gold a model knows it as.

    A gold particle is a dark disc at any size, so a model that knows 6, 12 and 18 nm
    gold finds 10 and 20 nm gold best when it is shown the image at 5/3 of its pixel
    size, where that gold looks like 6 and 12 nm (its replica texture 5/3 finer, which
    models trained on a range of magnifications take in their stride). The factor
    ``g`` returned minimises the summed squared log ratio between each asked diameter
    ``d / g`` and the nearest diameter of ``model_nm`` (or, for a model that knows a
    continuous range, the distance to ``model_range_nm``, zero inside it); among equal
    choices the one nearest 1 wins. Within `MATCH_TOLERANCE` of 1 it is 1, and it is
    kept within 1 / `MATCH_LIMIT` to `MATCH_LIMIT`.

    Parameters
    ----------
    asked_nm : sequence of float
        The diameters asked for (a range: its midpoint).
    model_nm : sequence of float, optional
        The diameters a class-map model knows.
    model_range_nm : (lo, hi), optional
        The range a gold-map model knows (used when ``model_nm`` is None).

    Returns
    -------
    float
        ``g``: the network is told that the image's pixels are ``1 / g`` times as large
        as they are, so ``d`` nm gold looks to it like ``d / g`` nm gold.
    """
    d = np.log(np.asarray([float(v) for v in asked_nm], dtype=float))
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise GoldDiggerError(f"no usable diameters to match: {list(asked_nm)}")
    lim = np.log(MATCH_LIMIT)

    def cost(log_g: float) -> float:
        return float(np.sum(_log_distance(d, log_g, model_nm, model_range_nm) ** 2))

    if model_nm is not None:
        m = np.log(np.asarray(sorted(float(v) for v in model_nm), dtype=float))
        # each fixed assignment of asked to known sizes is solved by the mean log ratio;
        # start from every pairing and settle (1-D k-means)
        candidates = set()
        for g0 in {0.0, *(float(a - b) for a in d for b in m)}:
            g = float(np.clip(g0, -lim, lim))
            for _ in range(8):
                nearest = m[np.argmin(np.abs(d[:, None] - g - m[None, :]), axis=1)]
                new = float(np.clip(np.mean(d - nearest), -lim, lim))
                if abs(new - g) < 1e-12:
                    break
                g = new
            candidates.add(round(g, 12))
    else:
        _log_distance(d, 0.0, None, model_range_nm)  # a bad range raises here
        lo, hi = np.log(float(model_range_nm[0])), np.log(float(model_range_nm[1]))
        # every asked d / g inside [lo, hi]: g in [max(d) - hi, min(d) - lo]
        a, b = float(d.max() - hi), float(d.min() - lo)
        if a <= b:
            candidates = {float(np.clip(np.clip(0.0, a, b), -lim, lim))}
        else:  # asked sizes span more than the range: the convex cost's minimum
            grid = np.linspace(b, a, 2001)
            candidates = {float(np.clip(grid[int(np.argmin([cost(g) for g in grid]))],
                                        -lim, lim))}
    best = min(candidates, key=lambda g: (round(cost(g), 9), abs(g)))
    g = float(np.exp(best))
    return 1.0 if abs(g - 1.0) < MATCH_TOLERANCE else g


def scale_passes(asked_nm: Sequence[float], model_nm: Sequence[float] | None = None,
                 model_range_nm: tuple[float, float] | None = None
                 ) -> list[tuple[float, tuple[int, ...]]]:
    """The scales at which a network should see an image to find every asked size as a
    size it knows: ``[(g, indices of asked_nm found in that pass), ...]``.

    One pass at `size_match_factor` when it shows every asked size within
    `MATCH_TOLERANCE` of a known one (10 and 20 nm gold for a model that knows 6, 12 and
    18 nm: one pass at 5/3); otherwise one pass per group of asked sizes whose own
    factors agree within `MATCH_TOLERANCE` (5 and 25 nm gold: 5/6, where 5 nm looks like
    6 nm, and 25/18), each size found in its own pass.
    """
    asked = np.asarray([float(v) for v in asked_nm], dtype=float)
    g = size_match_factor(asked, model_nm, model_range_nm)
    off = _log_distance(np.log(asked), float(np.log(g)), model_nm, model_range_nm)
    if np.all(off <= np.log1p(MATCH_TOLERANCE)):
        return [(g, tuple(range(asked.size)))]
    own = np.array([size_match_factor([d], model_nm, model_range_nm) for d in asked])
    order = np.argsort(own, kind="stable")
    groups: list[list[int]] = [[int(order[0])]]
    for i in order[1:]:
        if own[i] <= own[groups[-1][0]] * (1 + MATCH_TOLERANCE):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [(size_match_factor(asked[grp], model_nm, model_range_nm), tuple(sorted(grp)))
            for grp in groups]
