"""Detections into ImageJ: ROIs (ROI Manager or Overlay), the Results and summary tables.

The ROIs match what `golddigger.io.rois.write_roiset` writes, so a ROI Manager filled here
and a RoiSet written by ``golddigger detect`` look and read the same: names
``gold-6nm-0001``, one group and stroke colour per class (`golddigger.io.rois`), the
properties ``diameter_nm`` and ``score``, the stack position (1-based) on stacks, and ovals
of the particle's size centred on it (``left = x + 0.5 - r`` in ImageJ's coordinates, where
a pixel's centre is at +0.5) or points at ``(x, y)``.

Needs a running JVM with ImageJ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from golddigger.imagej.tables import roi_names
from golddigger.io.rois import class_colors, class_groups
from golddigger.particles import ParticleTable

__all__ = [
    "RESULTS_TITLE",
    "SUMMARY_TITLE",
    "add_to_manager",
    "add_to_overlay",
    "fill_table",
    "particle_rois",
]

logger = logging.getLogger(__name__)

#: Window titles of the tables.
RESULTS_TITLE = "Results"
SUMMARY_TITLE = "Gold Digger Summary"


def particle_rois(particles: ParticleTable, pixel_size_nm: float, shape: str = "oval",
                  names: Sequence[str] | None = None, positions: bool = False,
                  groups: bool = True) -> list:
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
        else:
            roi = PointRoi(float(x), float(y))
        roi.setName(names[i])
        roi.setStrokeColor(colors[key])
        if set_group is not None:
            set_group(roi, int(group_of[key]))
            roi.setStrokeColor(colors[key])  # setGroup replaces the colour
        roi.setProperty("diameter_nm", f"{d:g}")
        roi.setProperty("score", f"{score:.4f}")
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
    from ij.plugin.frame import RoiManager

    rm = RoiManager.getRoiManager()
    for roi in rois:
        rm.addRoi(roi)
    if imp is not None and show_all and len(rois):
        rm.runCommand(imp, "Show All without labels")
    return rm


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
               show: bool = True):
    """Put rows (dicts of column -> number or text) into an ImageJ ResultsTable.

    ``title`` ``"Results"`` is ImageJ's system table (what ``nResults``/``getResult`` in
    macros read); other titles are separate table windows. With ``append`` the rows are
    added to an existing table of that title; otherwise it is cleared first.
    """
    from ij.measure import ResultsTable

    if title == RESULTS_TITLE:
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
        rt.show(title)
        _make_active(title)
    return rt


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
