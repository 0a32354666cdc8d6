"""Detections into ImageJ: ROIs (ROI Manager or Overlay), the Results and summary tables.

The ROIs match what `golddigger.io.rois.write_roiset` writes, so a ROI Manager filled here
and a RoiSet written by ``golddigger detect`` look and read the same: names
``gold-6nm-0001``, one group and stroke colour per class (`golddigger.io.rois`), ovals
drawn with `golddigger.io.rois.PARTICLE_STROKE_WIDTH` screen pixels at every zoom, the
properties ``diameter_nm`` and ``score``, the stack position (1-based) on stacks, and ovals
of the particle's size centred on it (``left = x + 0.5 - r`` in ImageJ's coordinates, where
a pixel's centre is at +0.5) or points at ``(x, y)``.

Needs a running JVM with ImageJ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from golddigger.imagej.tables import roi_names
from golddigger.io.rois import PARTICLE_STROKE_WIDTH, class_colors, class_groups
from golddigger.particles import ParticleTable

__all__ = [
    "IMAGEJ_RESULTS",
    "RESULTS_TITLE",
    "SUMMARY_TITLE",
    "add_to_manager",
    "add_to_overlay",
    "fill_table",
    "particle_rois",
    "remove_earlier_rois",
    "remove_table_rows",
]

logger = logging.getLogger(__name__)

#: Window titles of the tables: Gold Digger's own (one row per particle, one per slice), and
#: ImageJ's system table, which gets a copy of the particle rows only on request (so that
#: Analyze > Measure keeps its table to itself).
RESULTS_TITLE = "Gold Digger Results"
SUMMARY_TITLE = "Gold Digger Summary"
IMAGEJ_RESULTS = "Results"

#: The ROI property naming the image a particle ROI was found in (what a rerun replaces).
IMAGE_PROPERTY = "image"


def particle_rois(particles: ParticleTable, pixel_size_nm: float, shape: str = "oval",
                  names: Sequence[str] | None = None, positions: bool = False,
                  groups: bool = True, image: str = "") -> list:
    """One ImageJ ROI per particle (see the module docstring for the conventions).

    Parameters
    ----------
    shape : {"oval", "point"}
    names : sequence of str, optional
        Default: `golddigger.imagej.tables.roi_names`.
    positions : bool
        Set each ROI's stack position to ``slice + 1``.
    groups : bool
        Put each class in its ImageJ group (`golddigger.io.rois.CLASS_GROUPS`). The
        stroke colour stays the class colour. ImageJ's ``Roi.setGroup`` repaints a ROI in
        the group's colour from ``luts/Glasbey.lut``, and where that file is missing
        (Debian's ImageJ) logs "LUT not found" for every ROI and paints all of them
        yellow; there the group is stored without that look-up.
    image : str
        The image's title, stored as the ROI property ``image`` (reruns replace the ROIs
        that carry it).
    """
    from ij.gui import OvalRoi, PointRoi
    from java.awt import Color

    if shape not in ("oval", "point"):
        raise ValueError(f"shape must be 'oval' or 'point', got {shape!r}")
    names = list(names) if names is not None else roi_names(particles)
    classes = particles.classes
    colors = {d: Color.decode(c) for d, c in class_colors(classes).items()}
    group_of = class_groups(classes)
    px = float(pixel_size_nm)
    set_group = _group_setter() if groups else None
    rois = []
    for i, (x, y, d, score, s) in enumerate(particles):
        key = min(colors, key=lambda k: abs(k - d))
        if shape == "oval":
            r = d / px / 2.0
            roi = OvalRoi(x + 0.5 - r, y + 0.5 - r, 2.0 * r, 2.0 * r)
            # screen pixels at any zoom, as write_roiset stores it (visible zoomed out)
            roi.setUnscalableStrokeWidth(PARTICLE_STROKE_WIDTH)
        else:
            roi = PointRoi(float(x), float(y))
        roi.setName(names[i])
        roi.setStrokeColor(colors[key])
        if set_group is not None:
            set_group(roi, int(group_of[key]))
            roi.setStrokeColor(colors[key])  # setGroup replaces the colour
        roi.setProperty("diameter_nm", f"{d:g}")
        roi.setProperty("score", f"{score:.4f}")
        if image:
            roi.setProperty(IMAGE_PROPERTY, image)
        if positions:
            roi.setPosition(int(s) + 1)
        rois.append(roi)
    return rois


def has_group_colours() -> bool:
    """Whether ImageJ has ``luts/Glasbey.lut`` to colour ROI groups (Fiji has it)."""
    from ij import IJ

    luts = IJ.getDirectory("luts")
    return bool(luts) and (Path(str(luts)) / "Glasbey.lut").is_file()


def _group_setter():
    """``f(roi, group)``: ``Roi.setGroup`` when ImageJ can colour groups, else the ROI's
    ``group`` field set directly (no LUT look-up, no log line per ROI)."""
    if has_group_colours():
        return lambda roi, g: roi.setGroup(g)
    try:
        from ij.gui import Roi

        field = Roi.class_.getDeclaredField("group")
        field.setAccessible(True)
    except Exception:  # another ImageJ version: fall back to the public method
        logger.debug("Roi.group not accessible; using setGroup")
        return lambda roi, g: roi.setGroup(g)
    return lambda roi, g: field.setInt(roi, g)


def add_to_manager(rois: Sequence, imp=None, show_all: bool = True):
    """Add ROIs to the ROI Manager (opened if needed); returns it.

    Needs a display (the ROI Manager is a window, even when hidden).
    """
    from ij.gui import Roi
    from ij.plugin.frame import RoiManager

    rm = RoiManager.getRoiManager()
    n0 = int(rm.getCount())
    for roi in rois:
        rm.addRoi(roi)
    # addRoi makes a stroke width scale with the zoom again (1.53t); a RoiSet opened in the
    # ROI Manager keeps it fixed, as the ovals are made: the same here
    for i in range(n0, int(rm.getCount())):
        roi = rm.getRoi(i)
        if roi is not None and roi.getType() == Roi.OVAL and roi.getStrokeWidth() > 0:
            roi.setUnscalableStrokeWidth(float(roi.getStrokeWidth()))
    # Show All only for a displayed image: for one without a window (batch mode) ImageJ
    # writes the manager's ROIs into the image's overlay instead (as Detect_Gold.ijm)
    if imp is not None and show_all and len(rois) and imp.getWindow() is not None:
        rm.runCommand(imp, "Show All without labels")
    return rm


def _is_earlier(roi, image: str, slices: set[int] | None) -> bool:
    """Whether ``roi`` is a Gold Digger particle of ``image`` on one of ``slices`` (1-based;
    None: any) or without a stack position."""
    if roi is None or not str(roi.getName() or "").startswith("gold-"):
        return False
    if str(roi.getProperty(IMAGE_PROPERTY) or "") != image:
        return False
    pos = int(roi.getPosition())
    return slices is None or pos == 0 or pos in slices


def remove_earlier_rois(imp, slices: Sequence[int] | None = None) -> int:
    """Remove the particle ROIs an earlier Detect Gold put on this image (ROI Manager and
    overlay) for the 0-based ``slices`` (None: all); returns how many were removed."""
    from ij.plugin.frame import RoiManager

    image = str(imp.getTitle())
    wanted = None if slices is None else {int(s) + 1 for s in slices}
    removed = 0
    rm = RoiManager.getInstance()
    if rm is not None:
        doomed = [i for i in range(int(rm.getCount())) if _is_earlier(rm.getRoi(i), image,
                                                                         wanted)]
        for i in reversed(doomed):  # one at a time: "Delete" with none selected asks
            rm.select(i)
            rm.runCommand("Delete")
        if doomed:
            rm.deselect()
        removed += len(doomed)
    overlay = imp.getOverlay()
    if overlay is not None:
        doomed = [overlay.get(i) for i in range(int(overlay.size()))
                  if _is_earlier(overlay.get(i), image, wanted)]
        for roi in doomed:
            overlay.remove(roi)
        removed += len(doomed)
        imp.setOverlay(overlay if overlay.size() else None)
    return removed


def remove_table_rows(title: str, image: str, slices: Sequence[int] | None = None) -> int:
    """Delete the rows of table ``title`` whose ``Image`` (or ``image``) is ``image`` and whose
    ``Slice`` (1-based) is one of the 0-based ``slices``; returns how many."""
    from ij.measure import ResultsTable

    rt = (ResultsTable.getResultsTable() if title == IMAGEJ_RESULTS
          else ResultsTable.getResultsTable(title))
    if rt is None or rt.size() == 0:
        return 0
    # the particle table says Image/Slice, the summary (the CLI's columns) image/slice
    col = next((c for c in ("Image", "image") if rt.getColumnIndex(c) >= 0), None)
    if col is None:
        return 0
    scol = next((c for c in ("Slice", "slice") if rt.getColumnIndex(c) >= 0), None)
    wanted = None if slices is None else {int(s) + 1 for s in slices}
    doomed = [i for i in range(int(rt.size()))
              if str(rt.getStringValue(col, i)) == image
              and (wanted is None or scol is None or int(rt.getValue(scol, i)) in wanted)]
    for i in reversed(doomed):
        rt.deleteRow(i)
    return len(doomed)


def add_to_overlay(rois: Sequence, imp) -> None:
    """Add ROIs to the image's overlay (works headless)."""
    from ij.gui import Overlay

    overlay = imp.getOverlay()
    if overlay is None:
        overlay = Overlay()
    for roi in rois:
        overlay.add(roi)
    imp.setOverlay(overlay)


def fill_table(rows: Sequence[dict], title: str = RESULTS_TITLE, append: bool = False,
               show: bool = True, location: tuple[int, int] | None = None):
    """Put rows (dicts of column -> number or text) into an ImageJ ResultsTable.

    ``title`` ``"Results"`` (`IMAGEJ_RESULTS`) is ImageJ's system table (what
    ``nResults``/``getResult`` in macros read); other titles are separate table windows.
    With ``append`` the rows are added to an existing table of that title; otherwise it is
    cleared first.
    """
    from ij.measure import ResultsTable

    if title == IMAGEJ_RESULTS:
        rt = ResultsTable.getResultsTable()
    else:
        rt = ResultsTable.getResultsTable(title) if _has_table_lookup() else None
        if rt is None:
            rt = ResultsTable()
    if not append:
        rt.reset()
    for row in rows:
        rt.incrementCounter()
        for key, value in row.items():
            if isinstance(value, str):
                rt.addValue(key, value)
            else:
                rt.addValue(key, float(value))
    if show:
        from ij import WindowManager

        new = WindowManager.getWindow(title) is None
        rt.show(title)
        window = WindowManager.getWindow(title)
        if new and window is not None:
            _wait_until_active(window)
        _make_active(title)
        if new and location is not None and window is not None:
            window.setLocation(int(location[0]), int(location[1]))
    return rt


def window_titles() -> set[str]:
    """Titles of the windows `place_new_windows` arranges that are open now."""
    from golddigger.imagej.layout import TABLE_SIZES

    return {title for title in (*TABLE_SIZES, "ROI Manager") if _window(title) is not None}


def _window(title: str):
    from ij import WindowManager
    from ij.plugin.frame import RoiManager

    if title == "ROI Manager":
        rm = RoiManager.getInstance()
        return rm if rm is not None and rm.isVisible() else None
    return WindowManager.getWindow(title)


def place_new_windows(imp, before: set[str]) -> dict[str, tuple[int, int, int, int]]:
    """Put the result windows opened since ``before`` (`window_titles`) where
    `golddigger.imagej.layout.result_windows` says: beside the image, not over it or each
    other. Windows that were open already stay where they are. Returns what was placed."""
    from java.awt import Toolkit

    from golddigger.imagej.layout import result_windows

    _flush_awt_events()
    screen = Toolkit.getDefaultToolkit().getScreenSize()
    win = imp.getWindow() if imp is not None else None
    image = None if win is None else (int(win.getX()), int(win.getY()), int(win.getWidth()),
                                      int(win.getHeight()))
    rm = _window("ROI Manager")
    where = result_windows((int(screen.width), int(screen.height)), image,
                           None if rm is None else (int(rm.getWidth()), int(rm.getHeight())))
    placed = {}
    for title, (x, y, w, h) in where.items():
        window = _window(title)
        if window is None or title in before:
            continue
        if title == "ROI Manager":
            window.setLocation(int(x), int(y))
        else:
            window.setBounds(int(x), int(y), int(w), int(h))
        placed[title] = (x, y, w, h)
    return placed


def _make_active(title: str) -> None:
    """Make a table window the active one: ``saveAs("Results", path)`` in a macro saves
    (and renames) the active table. Showing a table activates its window asynchronously
    (an AWT event), so pending events are processed first; otherwise an earlier table's
    activation could arrive later and win."""
    from ij import WindowManager

    _flush_awt_events()
    window = WindowManager.getWindow(title)
    if window is not None:
        WindowManager.setWindow(window)


def _wait_until_active(window, timeout_s: float = 2.0) -> bool:
    """Wait (at most ``timeout_s``) until a window just shown is the active one.

    A new table window asks the window system for the focus; the answer comes back later
    as an activation event, which makes that table ImageJ's active one. Waiting for it
    before the next table is shown keeps their activations in the order they were shown:
    without it, on a busy machine, the Summary's could arrive after the particle table's
    and ``saveAs("Results", path)`` saved the summary. Returns whether it became active.
    """
    from java.awt import EventQueue

    if EventQueue.isDispatchThread():  # the event would wait for this thread
        return bool(window.isActive())
    deadline = time.monotonic() + timeout_s
    while True:
        _flush_awt_events()
        if window.isActive():
            return True
        if time.monotonic() > deadline:
            logger.debug("%s did not become the active window", window.getTitle())
            return False
        time.sleep(0.01)


def _flush_awt_events() -> None:
    """Wait until the AWT event queue has processed what is pending (not on its thread)."""
    from java.awt import EventQueue
    from jpype import JImplements, JOverride

    if EventQueue.isDispatchThread():
        return

    @JImplements("java.lang.Runnable")
    class _Nothing:
        @JOverride
        def run(self):
            pass

    EventQueue.invokeAndWait(_Nothing())


def _has_table_lookup() -> bool:
    from ij.measure import ResultsTable

    return any(str(m.getName()) == "getResultsTable" and len(m.getParameterTypes()) == 1
               for m in ResultsTable.class_.getMethods())


def save_table(rt, path: str | Path) -> None:
    """Save a ResultsTable as CSV (ImageJ's own writer)."""
    rt.save(str(path))
