"""Where Detect Gold's result windows go, so that they hide neither the image nor each other.

One rule for both ways of running the command (the Python-hosted one places the windows
itself; the installed macro gets the positions from ``golddigger imagej --call detect
--layout ...`` and applies them):

* the windows go in columns beside the image window, top-aligned with it: first to its
  right, then (where the screen has no room there) to its left; in each column they stack
  downwards while the screen has room (ROI Manager, then *Gold Digger Results*, *Gold
  Digger Summary*, ImageJ's *Results* when a copy was asked for, and the *Log*);
* a window that fits nowhere beside the image goes to the screen's right edge (a big image
  leaves no room: it may then cover part of it).

Only windows that the command opened are placed: a window the user has moved stays where
it is. Plain arithmetic, no ImageJ here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["GAP", "MANAGER_SIZE", "TABLE_SIZES", "result_windows"]

#: Pixels between windows.
GAP = 10
#: Size (width, height) of the tables and the Log, in the order they are placed.
TABLE_SIZES: dict[str, tuple[int, int]] = {
    "Gold Digger Results": (480, 300),
    "Gold Digger Summary": (480, 190),
    "Results": (480, 190),
    "Log": (480, 190),  # last: the installed macro can move the Log but not size it
}
#: The ROI Manager's size when it is not known (ImageJ 1.53t's is about 220 x 250).
MANAGER_SIZE = (260, 300)


def result_windows(screen: tuple[int, int], image: tuple[int, int, int, int] | None,
                   manager: tuple[int, int] | None = None,
                   sizes: Mapping[str, tuple[int, int]] | None = None
                   ) -> dict[str, tuple[int, int, int, int]]:
    """Positions of the result windows.

    Parameters
    ----------
    screen : (width, height)
    image : (x, y, width, height) of the image window, or None (no window: as if a
        zero-width image stood at the screen's left, below ImageJ's main window)
    manager : (width, height), optional
        The ROI Manager's size (default `MANAGER_SIZE`).
    sizes : dict, optional
        Window title -> (width, height) of the tables and the Log (default
        `TABLE_SIZES`).

    Returns
    -------
    dict
        Title -> (x, y, width, height), for the ROI Manager and every title of ``sizes``.
    """
    sw, sh = int(screen[0]), int(screen[1])
    ix, iy, iw, _ = (0, 120, 0, 0) if image is None else (int(v) for v in image)
    y0 = max(0, iy)
    windows = {"ROI Manager": tuple(int(v) for v in (manager or MANAGER_SIZE))}
    windows.update(TABLE_SIZES if sizes is None else sizes)
    columns: list[list[int]] = []  # [x, width, next y]
    right, left = ix + iw + GAP, ix - GAP  # free edges beside the image and the columns
    out: dict[str, tuple[int, int, int, int]] = {}
    for title, (w, h) in windows.items():
        col = next((c for c in columns if w <= c[1] and c[2] + h <= sh), None)
        if col is None:
            if right + w <= sw:
                col = [right, w, y0]
                right += w + GAP
            elif left - w >= 0:
                col = [left - w, w, y0]
                left -= w + GAP
            else:  # no room beside the image: the screen's right edge
                col = [max(0, sw - w), w, y0]
            columns.append(col)
        out[title] = (col[0], col[2], w, h)
        col[2] += h + GAP
    return out
