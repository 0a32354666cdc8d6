"""The Gold Digger menu commands, run inside an ImageJ that Python started.

`Session.run` is what the command listener (`golddigger.imagej.listener`) calls for
"Detect Gold", "Detect Gold in Folder", "Add to Training Set" and "Analyze Gold
Distribution". It runs on the thread ImageJ ran the command on (a macro's thread, or a new
thread for a menu click; never the AWT event thread), so dialogs may block it.

Options come from the macro (``run("Detect Gold", "threshold=0.4")``), else from a dialog
(a menu click), else, for a macro that gives none (``run("Detect Gold", "")``), the
defaults. Dialogs are recorded by ImageJ's macro recorder.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from golddigger.batch import run_batch
from golddigger.errors import CalibrationError, GoldDiggerError
from golddigger.imagej import backend, convert, publish
from golddigger.imagej.options import (
    ABOUT,
    COMMANDS,
    Field,
    about_text,
    format_options,
    help_html,
    parse_options,
    recorded_line,
)
from golddigger.io.conventions import display_name

__all__ = ["Cancelled", "Session"]

logger = logging.getLogger(__name__)

class Cancelled(Exception):
    """The user pressed Esc: the command stops and adds nothing."""


def _escape_pressed() -> bool:
    from ij import IJ

    return bool(IJ.escapePressed())


#: The message for a line or point selection where an area is needed.
NOT_AREA = ("{title} has a {kind} selection, but Detect Gold counts inside an area selection "
            "(rectangle, oval, polygon or freehand). Draw the membrane outline with an area "
            "tool, or remove the selection (Edit > Selection > Select None) or choose Region: "
            "image to search the whole image.")


class Session:
    """State of a Python-hosted ImageJ: the loaded models, where headless output goes, how
    errors are shown.

    Parameters
    ----------
    headless : bool
        No windows: ROIs go to the image's Overlay and a RoiSet zip in ``output_dir``
        instead of the ROI Manager; no dialogs.
    dialogs : bool
        Show errors in ImageJ dialogs (interactive use). Otherwise they go to ImageJ's Log
        and stderr, and a macro that ran the command is stopped.
    output_dir : path, optional
        Headless only: folder for RoiSets and tables (default: a temporary folder).
    """

    def __init__(self, headless: bool = False, dialogs: bool = True,
                 output_dir: str | Path | None = None) -> None:
        self.headless = headless
        self.dialogs = dialogs and not headless
        self._output_dir = Path(output_dir) if output_dir else None
        self.last_detection: backend.Detection | None = None
        self.history: list[dict] = []
        # one command at a time (a menu click during a running macro waits its turn): they
        # share the model, the ROI Manager and the tables
        self._lock = threading.Lock()

    @property
    def output_dir(self) -> Path:
        if self._output_dir is None:
            self._output_dir = Path(tempfile.mkdtemp(prefix="golddigger-imagej-"))
        self._output_dir.mkdir(parents=True, exist_ok=True)
        return self._output_dir

    # ------------------------------------------------------------------ dispatch
    def run(self, command: str, options: str | None, from_macro: bool) -> None:
        """Run a menu command by its name; errors are reported, not raised."""

        with self._lock:
            self._run(command, options, from_macro)

    def _run(self, command: str, options: str | None, from_macro: bool) -> None:
        from ij import IJ

        if command == ABOUT:
            self._about(from_macro)
            return
        internal, fields = COMMANDS[command]
        t0 = time.perf_counter()
        try:
            values = self._ask(command, fields, options, from_macro)
            if values is None:
                return  # dialog cancelled
            getattr(self, f"_cmd_{internal}")(values)
            self.history.append({"command": command, "options": format_options(values, fields),
                                 "seconds": time.perf_counter() - t0})
        except Cancelled:
            IJ.resetEscape()
            IJ.showStatus(f"Gold Digger: {command} cancelled (Esc); nothing was added")
            IJ.log(f"Gold Digger: {command} cancelled (Esc); nothing was added")
            self.history.append({"command": command, "cancelled": True,
                                 "seconds": time.perf_counter() - t0})
        except GoldDiggerError as err:
            self._report(command, str(err), from_macro)
        except Exception as err:  # never let a Python error pass silently into ImageJ
            logger.exception("%s failed", command)
            self._report(command, f"internal error: {type(err).__name__}: {err}", from_macro)
        finally:
            IJ.showProgress(1.0)

    def _about(self, from_macro: bool) -> None:
        """About Gold Digger: a message window from the menu; the Log from a macro or
        without dialogs (a batch run records which Gold Digger made its results)."""
        from ij import IJ

        if self.dialogs and not from_macro:
            IJ.showMessage(ABOUT, about_text(html=True))
        else:
            IJ.log(about_text())

    def _report(self, command: str, message: str, from_macro: bool) -> None:
        from ij import IJ

        from golddigger.imagej.messages import imagej_terms

        message = imagej_terms(message)
        IJ.showStatus(f"{command}: {message}")
        if self.dialogs:
            IJ.error("Gold Digger", f"{command}:\n{message}")
        else:
            IJ.log(f"Gold Digger: {command}: error: {message}")
            print(f"golddigger imagej: {command}: error: {message}", file=sys.stderr)
        if from_macro:
            from ij.macro import Interpreter

            Interpreter.abort()  # the macro that ran the command stops here

    def _ask(self, command: str, fields: Sequence[Field], options: str | None,
             from_macro: bool) -> dict | None:
        if options is not None and options.strip():
            return parse_options(options, fields, command)
        if from_macro or self.headless or not self.dialogs:
            return parse_options("", fields, command)
        return _dialog(command, fields, self._dialog_defaults(command),
                       preview=self._preview(command))

    def _preview(self, command: str):
        """For Detect Gold's dialog: ``f(shape) -> PreviewListener`` on the current image,
        or None (another command, no image)."""
        from ij import WindowManager

        imp = WindowManager.getCurrentImage()
        if command != "Detect Gold" or imp is None:
            return None

        def make_candidates():
            from golddigger.imagej.preview import Candidates

            px = self._pixel_size(imp, {})
            try:
                region = self._region(imp, "selection")
            except GoldDiggerError:
                region = None
            current = int(imp.getCurrentSlice()) - 1
            plane = np.squeeze(convert.imageplus_to_array(imp, [current]))
            return Candidates(backend.get_detector("default"), plane, px, region)

        def factory(threshold_index, classes_index, preview_index):
            from golddigger.imagej.preview import PreviewListener

            return PreviewListener(imp, make_candidates, threshold_index, classes_index,
                                   preview_index)

        return factory

    def _dialog_defaults(self, command: str) -> dict:
        from ij import WindowManager

        imp = WindowManager.getCurrentImage()
        out: dict = {}
        if command == "Add to Training Set" and imp is not None:
            out["name"] = backend.safe_stem(str(imp.getTitle()))
        return out

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _image():
        from ij import WindowManager

        imp = WindowManager.getCurrentImage()
        if imp is None:
            raise GoldDiggerError("no image is open: open a micrograph first")
        return imp

    @staticmethod
    def _pixel_size(imp, values: Mapping) -> float:
        from golddigger.io.images import validate_pixel_size

        given = float(values.get("pixel_size", 0) or 0)
        px = given if given > 0 else convert.pixel_size_nm(imp)
        if px is None:
            raise CalibrationError(
                f"{imp.getTitle()}: the pixel size is unknown; set it with Image > "
                "Properties (unit nm or micron), or type it (nm per pixel) in the dialog's "
                "Pixel size field")
        return validate_pixel_size(px, str(imp.getTitle()))

    def _region(self, imp, choice: str):
        w, h = int(imp.getWidth()), int(imp.getHeight())
        if choice == "image":
            return None
        if choice == "roi_manager":
            region = convert.manager_region(w, h)
            if region is None:
                raise GoldDiggerError("region=roi_manager but the ROI Manager has no area ROI "
                                      "(other than gold-* particles); add the membrane "
                                      "outline to it, or use region=selection")
            return region
        roi = imp.getRoi()
        if roi is None:
            return None
        if not convert.is_area_roi(roi):
            raise GoldDiggerError(NOT_AREA.format(title=imp.getTitle(),
                                                  kind=str(roi.getTypeAsString()).lower()))
        if str(roi.getName() or "").startswith("gold-"):
            logger.info("the selection is a particle (%s), not a membrane outline; searching "
                        "the whole image", roi.getName())
            return None
        return convert.rois_to_region([roi], w, h, name=str(roi.getName() or "selection"))

    # ------------------------------------------------------------------ commands
    def _cmd_detect(self, values: Mapping) -> backend.Detection:
        from ij import IJ

        imp = self._image()
        before = set() if self.headless else publish.window_titles()
        px = self._pixel_size(imp, values)
        region = self._region(imp, str(values["region"]))
        slices = convert.stack_slices(imp, bool(values["whole_stack"]))
        IJ.showStatus("Gold Digger: loading the model...")
        options = backend.batch_options(values)
        detector = backend.get_detector(str(values["model"]), str(values["precision"]))
        n = len(slices)

        def tick(i: int, total: int) -> None:
            if _escape_pressed():
                raise Cancelled
            IJ.showStatus(f"Gold Digger: slice {slices[i] + 1}" + (f" ({i + 1}/{n})" if n > 1
                                                                    else "")
                          + " (Esc cancels)")
            IJ.showProgress(i, n)

        IJ.resetEscape()
        try:
            result = backend.detect_planes(detector, convert.imageplus_planes(imp, slices), px,
                                           region, options, on_plane=tick, n_planes=n,
                                           cancel=_escape_pressed)
        except Exception as err:  # the engine's own cancellation
            if type(err).__name__ == "_Cancelled":
                raise Cancelled from None
            raise
        if _escape_pressed():  # pressed during the last plane: still nothing is added
            raise Cancelled
        det = backend.Detection.from_result(result, str(imp.getTitle()))
        seconds = det.seconds
        self._publish(imp, det, values)
        if not self.headless:  # the windows this command opened: beside the image
            publish.place_new_windows(imp, before)
        self.last_detection = det
        IJ.showStatus(f"Gold Digger: {det.counts_text()} in {seconds:.1f} s")
        return det

    def _publish(self, imp, det: backend.Detection, values: Mapping) -> None:
        """ROIs and table rows of a detection: earlier ones of this image and slices
        replaced (``rerun=replace``) or kept (``add``); ROIs to the ROI Manager, the
        overlay or both (headless: the overlay and a RoiSet file)."""
        from golddigger.io.rois import write_roiset

        shape = "point" if str(values.get("shape", "ovals")) == "points" else "oval"
        add_to = str(values.get("add_to", "roi_manager"))
        title = str(imp.getTitle())
        is_stack = int(imp.getStackSize()) > 1
        if str(values.get("rerun", "replace")) == "replace":
            removed = publish.remove_earlier_rois(imp, det.slices)
            for table in (publish.RESULTS_TITLE, publish.SUMMARY_TITLE):
                publish.remove_table_rows(table, title, det.slices)
            if removed:
                logger.info("%s: replaced %d earlier particle ROIs", title, removed)
        rois = publish.particle_rois(det.particles, det.pixel_size_nm, shape, det.names,
                                     positions=is_stack, image=title)
        unit, unit_nm = convert.calibration_unit(imp)
        selection = imp.getRoi()  # adding ROIs to the ROI Manager drops it
        if self.headless:
            publish.add_to_overlay(rois, imp)
            stem = backend.safe_stem(title)
            write_roiset(self.output_dir / f"{stem}_RoiSet.zip", det.particles,
                         det.pixel_size_nm, shape=shape, positions=is_stack,
                         properties={publish.IMAGE_PROPERTY: title})
        else:
            if add_to in ("roi_manager", "both"):
                publish.add_to_manager(rois, imp)
            if add_to in ("overlay", "both"):
                publish.add_to_overlay(
                    publish.particle_rois(det.particles, det.pixel_size_nm, shape, det.names,
                                          positions=is_stack, image=title)
                    if add_to == "both" else rois, imp)
        if selection is not None and imp.getRoi() is None:
            imp.setRoi(selection)
        show = not self.headless
        publish.fill_table(det.summary(), publish.SUMMARY_TITLE, append=True, show=show)
        rows = det.results(unit, unit_nm)
        if values.get("results"):
            publish.fill_table(rows, publish.IMAGEJ_RESULTS, append=False, show=show)
        # Gold Digger Results last: it is then the front table
        publish.fill_table(rows, publish.RESULTS_TITLE, append=True, show=show)

    def _cmd_folder(self, values: Mapping) -> list[backend.FileResult]:
        from ij import IJ

        from golddigger.cli._common import CliError, expand_images

        folder = str(values["input"]).strip()
        if not folder:
            raise GoldDiggerError("choose the folder of images (input=...)")
        inp = Path(folder)
        out = Path(str(values["output"]).strip() or inp / "golddigger")
        if out.resolve() == inp.resolve():
            raise GoldDiggerError("the output folder must differ from the input folder (the "
                                  "results are named like the membrane ROI files)")
        try:
            paths = expand_images([inp])
        except CliError as err:
            raise GoldDiggerError(str(err)) from None
        IJ.showStatus("Gold Digger: loading the model...")
        detector = backend.get_detector(str(values["model"]), str(values["precision"]))
        n = len(paths)

        def tick(i: int, total: int, path) -> None:
            if path is not None:
                IJ.showStatus(f"Gold Digger: {i + 1}/{total} {display_name(path)}")
            IJ.showProgress(i, max(total, 1))

        IJ.resetEscape()
        batch = run_batch(paths, detector, out, backend.folder_options(values, inp),
                          progress=tick, cancel=_escape_pressed)
        if batch.cancelled:
            IJ.resetEscape()
            done = sum(1 for r in batch.results if not r.error)
            IJ.log(f"Gold Digger: Detect Gold in Folder cancelled (Esc) after {done} of {n} "
                   f"image(s); their results are in {out} (run it again with Resume "
                   "ticked to go on from there)")
        results = [backend.file_result(r, out) for r in batch.results]
        for r in results:
            if r.error:
                IJ.log(f"Gold Digger: {r.error}")
        summary = batch.summary_path or backend.write_folder_summary(out)
        rows = [row for r in results if r.detection for row in r.detection.summary()]
        publish.fill_table(rows, publish.SUMMARY_TITLE, append=False, show=not self.headless)
        failed = sum(1 for r in results if r.error)
        total = sum(len(r.detection.particles) for r in results if r.detection)
        IJ.showStatus(f"Gold Digger: {total} particles in {n - failed} image(s)"
                      + (f", {failed} of {n} failed (see Window > Log)" if failed else "")
                      + (" (cancelled)" if batch.cancelled else "")
                      + f"; results in {out}")
        if failed:
            IJ.log(f"Gold Digger: {failed} of {n} image(s) failed (listed above)")
        IJ.log(f"Gold Digger: results in {out} (summary: {summary.name})")
        return results

    def _cmd_training(self, values: Mapping) -> backend.TrainingPair:
        from ij import IJ
        from ij.io import RoiEncoder

        imp = self._image()
        px = self._pixel_size(imp, values)
        folder = str(values["folder"]).strip()
        if not folder:
            raise GoldDiggerError("choose the training folder (folder=...)")
        stem = str(values["name"]).strip() or backend.safe_stem(str(imp.getTitle()))
        whole = bool(values["whole_stack"]) and int(imp.getStackSize()) > 1
        current = int(imp.getCurrentSlice()) - 1
        with tempfile.TemporaryDirectory(prefix="golddigger-") as tmp:
            roiset = convert.save_particle_rois(
                imp, tmp, "mark them with the point tool and add them to the ROI Manager "
                          "(press t)")
            particles = backend.particles_from_roiset(
                roiset, px, float(values["default_class"]),
                current_slice=None if whole else current)
            region_roi = None
            sel = imp.getRoi()
            if sel is not None and convert.is_area_roi(sel):
                region_roi = Path(tmp) / "region.roi"
                RoiEncoder.save(sel, str(region_roi))
            data = convert.imageplus_to_array(imp, None if whole else [current])
            pair = backend.save_training_pair(data, px, particles, folder, stem,
                                              bool(values["overwrite"]), region_roi)
        counts = ", ".join(f"{len(particles.of_class(d))} x {d:g} nm" for d in particles.classes)
        IJ.showStatus(f"Gold Digger: saved {pair.image.name} with {len(particles)} particles "
                      f"({counts})")
        IJ.log(f"Gold Digger: training pair {pair.image} + {pair.csv.name}: {len(particles)} "
               f"particles ({counts})")
        return pair

    def _cmd_analyze(self, values: Mapping) -> None:
        from golddigger.imagej import analyze

        analyze.run_in_imagej(self, values)


def _dialog(command: str, fields: Sequence[Field], defaults: Mapping,
            preview=None) -> dict | None:
    """Show a GenericDialog for ``fields``; returns the values, None if cancelled.

    The command is recorded by ImageJ's macro recorder (when it is recording), with the
    dialog's options: ``run("Detect Gold", "threshold=0.5 ...");``.
    """
    from ij.gui import GenericDialog

    gd = GenericDialog(f"Gold Digger: {command}")
    for f in fields:
        default = defaults.get(f.key, f.default)
        if f.kind == "number":
            gd.addNumericField(f.label, float(default), f.digits)
        elif f.kind == "string":
            gd.addStringField(f.label, str(default), 24)
        elif f.kind == "directory":
            gd.addDirectoryField(f.label, str(default))
        elif f.kind == "choice":
            gd.addChoice(f.label, list(f.choices), str(default))
        else:
            gd.addCheckbox(f.label, bool(default))
    listener = None
    if preview is not None:
        kinds = [f.kind for f in fields]
        numbers = [f.key for f in fields if f.kind == "number"]
        strings = [f.key for f in fields if f.kind in ("string", "directory")]
        gd.addCheckbox("Preview", False)
        listener = preview(numbers.index("threshold"), strings.index("classes"),
                           kinds.count("checkbox"))
        gd.addDialogListener(listener.java)
    gd.addHelp(help_html(command, fields))
    try:
        gd.showDialog()
    finally:
        if listener is not None:
            listener.restore()
    if gd.wasCanceled():
        return None
    values = _dialog_values(gd, fields)
    _record(command, format_options(values, fields))
    return values


def _dialog_values(gd, fields: Sequence[Field]) -> dict:
    """The values in a closed GenericDialog's fields, read from the fields themselves.

    Not with ``getNextNumber()`` and the like: ImageJ's ``GenericDialog.dispose()`` (run on
    the event thread when OK is clicked) resets their counters 25 ms after the dialog has
    closed, and only then turns their recording on, so on a busy machine a command thread
    reading through them can get the wrong field or record nothing.
    """
    from ij.util import Tools

    numbers = list(gd.getNumericFields() or [])
    strings = list(gd.getStringFields() or [])
    choices = list(gd.getChoices() or [])
    boxes = list(gd.getCheckboxes() or [])
    values: dict = {}
    for f in fields:
        if f.kind == "number":
            values[f.key] = float(Tools.parseDouble(str(numbers.pop(0).getText()).strip()))
        elif f.kind in ("string", "directory"):
            values[f.key] = str(strings.pop(0).getText())
        elif f.kind == "choice":
            values[f.key] = str(choices.pop(0).getSelectedItem())
        else:
            values[f.key] = bool(boxes.pop(0).getState())
    return values


def _record(command: str, options: str) -> None:
    """Give ImageJ's macro recorder the line for ``command`` with ``options`` (when it is
    recording and, as ImageJ does, not for a command a macro ran unless asked to)."""
    from ij.plugin.frame import Recorder
    from java.lang import Thread

    if not Recorder.record:
        return
    if str(Thread.currentThread().getName()).startswith("Run$_") and not Recorder.recordInMacros:
        return
    Recorder.disableCommandRecording()  # whatever a dialog may have started is not written
    Recorder.recordString(recorded_line(command, options, bool(Recorder.scriptMode())))
