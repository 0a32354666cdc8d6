"""Where Detect Gold's result windows go, so that they hide neither the image nor each other.

One rule for both ways of running the command (the Python-hosted one places the windows
itself; the installed macro gets the positions from ``golddigger imagej --call detect
--layout ...`` and applies them):

* a column to the right of the image window: *Gold Digger Results*, below it *Gold Digger
  Summary*, below that the *Log* (and ImageJ's *Results*, when a copy was asked for);
* the ROI Manager to the right of that column;
* where the screen is too narrow, the column and the ROI Manager move left so that they
  stay on the screen (they may then cover part of the image: a big image leaves no room).

Only windows that the command opened are placed: a window the user has moved stays where
it is. Plain arithmetic, no ImageJ here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["GAP", "MANAGER_WIDTH", "TABLE_SIZES", "result_windows"]

#: Pixels between windows.
GAP = 10
#: Size (width, height) of the windows of the column, top to bottom.
TABLE_SIZES: dict[str, tuple[int, int]] = {
    "Gold Digger Results": (480, 300),
    "Gold Digger Summary": (480, 190),
    "Log": (480, 190),
    "Results": (480, 190),
}
#: The ROI Manager's width when it is not known (ImageJ 1.53t's default is about 250).
MANAGER_WIDTH = 260


def result_windows(screen: tuple[int, int], image: tuple[int, int, int, int] | None,
                   manager_width: int | None = None,
                   sizes: Mapping[str, tuple[int, int]] | None = None
                   ) -> dict[str, tuple[int, int, int, int]]:
    """Positions of the result windows.

    Parameters
    ----------
    screen : (width, height)
    image : (x, y, width, height) of the image window, or None (no window: the column
        starts at the screen's left, below ImageJ's main window)
    manager_width : int, optional
        The ROI Manager's width (default `MANAGER_WIDTH`).
    sizes : dict, optional
        Window title -> (width, height) of the column's windows (default `TABLE_SIZES`).

    Returns
    -------
    dict
        Title -> (x, y, width, height); the ROI Manager's height is its own (0 here).
    """
    sizes = dict(TABLE_SIZES if sizes is None else sizes)
    sw, sh = int(screen[0]), int(screen[1])
    rw = int(manager_width or MANAGER_WIDTH)
    ix, iy, iw, _ = (0, 120, 0, 0) if image is None else (int(v) for v in image)
    tw = max(w for w, _ in sizes.values())
    x = ix + iw + GAP
    x = max(0, min(x, sw - tw - GAP - rw))  # the column and the ROI Manager on the screen
    y = max(0, iy)
    out: dict[str, tuple[int, int, int, int]] = {}
    row = y
    for title, (w, h) in sizes.items():
        h = max(80, min(h, sh - row)) if row < sh else h
        out[title] = (x, row, w, h)
        row += h + GAP
    out["ROI Manager"] = (min(x + tw + GAP, max(0, sw - rw)), y, rw, 0)
    return out
