"""Detect Gold's Preview: the detections of the dialog's current threshold, live on the image.

The network runs once per preview (`Candidates`: the class maps of the current plane, every
peak above a low floor); moving the threshold only re-filters those candidates, so the
overlay follows the dialog at once. `PreviewListener` is the dialog's ``DialogListener``
(Python-hosted ImageJ): when the *Preview* box is ticked it computes the candidates in the
background, then draws the particles of the dialog's threshold and classes in the image's
overlay; unticking it, Cancel or OK put the image's own overlay back.

The preview uses the model's sizing and the current slice, through the same steps as
`Detector.predict` (`golddigger.live`), so it shows what OK will add for that slice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from golddigger.io.regions import Region
from golddigger.live import FLOOR, find_candidates
from golddigger.particles import ParticleTable

__all__ = ["FLOOR", "Candidates", "PreviewListener"]

logger = logging.getLogger(__name__)

class Candidates:
    """Every particle of one plane scoring at least `FLOOR` (`golddigger.live`: the
    network once), in the plane's pixels; `at` applies a threshold without the network.

    Sizes the model does not have (``classes=10 20``) are found at their own scale and
    measured (`Detector.predict`), so they need candidates of their own: `ready` says
    whether ``classes`` have them, `prepare` computes them (the network once more)."""

    def __init__(self, detector, plane: np.ndarray, pixel_size_nm: float,
                 region: Region | None = None, tta: int = 1,
                 classes: Sequence[float | str] | None = None) -> None:
        self.detector = detector
        self.plane = np.asarray(plane)
        self.pixel_size_nm = float(pixel_size_nm)
        self.region = region
        self.tta = tta
        self._tables: dict[tuple[str, ...] | None, ParticleTable] = {}
        self.prepare(classes)

    def key(self, classes: Sequence[float | str] | None) -> tuple[str, ...] | None:
        """The candidates ``classes`` are selected from: None for the model's own."""
        if not classes or self.detector._free_classes(list(classes)) is None:
            return None
        return tuple(sorted(str(c) for c in classes))

    def ready(self, classes: Sequence[float | str] | None = None) -> bool:
        """True when ``classes`` can be shown without running the network."""
        return self.key(classes) in self._tables

    def prepare(self, classes: Sequence[float | str] | None = None) -> None:
        """Compute the candidates ``classes`` are selected from (once)."""
        key = self.key(classes)
        if key not in self._tables:
            self._tables[key] = find_candidates(
                self.detector, self.plane, self.pixel_size_nm, tta=self.tta,
                classes=None if key is None else list(classes))

    def at(self, threshold: float | None = None,
           classes: Sequence[float | str] | None = None) -> ParticleTable:
        """The particles `Detector.predict` would report with ``threshold`` (None or 0:
        the model's per-class ones) and ``classes`` (None: all); runs the network only
        for classes not `ready`."""
        self.prepare(classes)
        return self.detector.apply_thresholds(self._tables[self.key(classes)],
                                              threshold or None,
                                              list(classes) if classes else None,
                                              self.region)


def _dialog_listener_class():
    from jpype import JImplements, JOverride

    @JImplements("ij.gui.DialogListener")
    class _Listener:
        def __init__(self, owner):
            self.owner = owner

        @JOverride
        def dialogItemChanged(self, gd, event):  # noqa: N802 - ImageJ's interface
            try:
                self.owner.changed(gd)
            except Exception:  # a preview must never break the dialog
                logger.exception("preview failed")
            return True

    return _Listener


class PreviewListener:
    """Keeps the image's overlay showing the detections of the dialog's threshold while its
    *Preview* check box is ticked.

    Parameters
    ----------
    imp : ij.ImagePlus
    make_candidates : callable
        ``make_candidates() -> Candidates`` for the image's current plane and region (run
        once, in a background thread, the first time Preview is ticked).
    threshold_index, classes_index, preview_index : int
        Positions of the threshold among the dialog's numeric fields, of the classes among
        its string fields and of Preview among its check boxes.
    """

    def __init__(self, imp, make_candidates, threshold_index: int, classes_index: int,
                 preview_index: int, shape: str = "oval") -> None:
        self.imp = imp
        self.make_candidates = make_candidates
        self.indexes = (threshold_index, classes_index, preview_index)
        self.shape = shape
        self.original = imp.getOverlay()
        self.candidates: Candidates | None = None
        self.shown = -1  # particles in the preview overlay now (-1: none shown)
        self._busy = False
        self.java = _dialog_listener_class()(self)

    # -- reading the dialog
    def _state(self, gd) -> tuple[bool, float | None, list[float] | None]:
        from golddigger.imagej.options import parse_classes

        ti, ci, pi = self.indexes
        on = bool(gd.getCheckboxes().get(pi).getState())
        try:
            thr = float(str(gd.getNumericFields().get(ti).getText()))
        except ValueError:
            thr = None
        try:
            classes = parse_classes(str(gd.getStringFields().get(ci).getText()))
        except Exception:
            classes = None
        if thr is not None and not 0 <= thr < 1:
            thr = None
        return on, thr, classes

    def changed(self, gd) -> None:
        on, thr, classes = self._state(gd)
        if not on:
            self.restore()
            return
        if self.candidates is None or not self.candidates.ready(classes):
            if not self._busy:  # the network in the background, never in the dialog
                self._busy = True
                from ij import IJ

                IJ.showStatus("Gold Digger: preview (computing the maps once)...")
                threading.Thread(target=self._compute, args=(gd, classes),
                                 daemon=True).start()
            return
        self.draw(thr, classes)

    def _compute(self, gd, classes) -> None:
        try:
            if self.candidates is None:
                self.candidates = self.make_candidates()
            self.candidates.prepare(classes)
        finally:
            self._busy = False
        on, thr, classes = self._state(gd)
        if on and self.candidates.ready(classes):
            self.draw(thr, classes)

    # -- the overlay
    def draw(self, threshold: float | None, classes) -> None:
        from ij import IJ
        from ij.gui import Overlay

        from golddigger.imagej import publish

        found = self.candidates.at(threshold, classes)
        rois = publish.particle_rois(found, self.candidates.pixel_size_nm, self.shape,
                                     groups=False)
        overlay = Overlay()
        if self.original is not None:
            for i in range(int(self.original.size())):
                overlay.add(self.original.get(i))
        for roi in rois:
            roi.setPosition(0)
            overlay.add(roi)
        self.imp.setOverlay(overlay)
        self.shown = len(found)
        IJ.showStatus(f"Gold Digger preview: {len(found)} particles")

    def restore(self) -> None:
        """Put the image's own overlay back."""
        if self.shown >= 0:
            self.imp.setOverlay(self.original)
            self.shown = -1
