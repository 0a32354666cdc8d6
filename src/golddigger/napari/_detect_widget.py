"""The *Detect Gold* dock widget.

The network runs once per run, in a worker thread (napari's progress bar, a Cancel button),
and keeps every candidate down to `golddigger.napari._engine.FLOOR`; the threshold slider
and the class choice then only filter those candidates (`select_particles`), so the
Points layer of the latest run follows the slider at once. Gold sizes the model does not
have (*other sizes*: ``10 20``, ``5-8``) are found at their own scale and measured, as by
``golddigger detect --classes``; they take effect at the next Detect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    Select,
)
from qtpy.QtWidgets import QVBoxLayout, QWidget

from golddigger.errors import GoldDiggerError
from golddigger.model.classes import parse_classes
from golddigger.napari._engine import FLOOR, find_candidates, select_particles
from golddigger.napari._layers import (
    class_names,
    layer_pixel_size,
    particles_to_layer_data,
    region_from_layer,
    style,
)
from golddigger.particles import ParticleTable

__all__ = ["DetectGoldWidget", "load_detector"]

logger = logging.getLogger(__name__)

CURRENT, ALL = "current slice", "all slices"


@lru_cache(maxsize=4)
def load_detector(folder: str):
    """A `Detector` for a model folder, loaded once per session."""
    from golddigger.model.detector import Detector

    return Detector.from_folder(folder)


@dataclass
class Run:
    """One detection: its candidates and where its particles are shown."""

    detector: object
    candidates: ParticleTable
    pixel_size_nm: float
    ndim: int
    name: str
    scale: tuple
    translate: tuple
    units: tuple = ()
    region: object = None
    #: sizes the model does not have that this run found (None: the model's classes)
    sizes: list[str] | None = None
    layer: object = None
    shown: ParticleTable = field(default_factory=ParticleTable.empty)


class DetectGoldWidget(QWidget):
    """Find gold particles in an image layer; one Points layer per run.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        from golddigger.model.folder import DEFAULT_MODEL, available_models

        self.viewer = napari_viewer
        self.worker = None
        self.run: Run | None = None
        models = available_models()
        self.image = ComboBox(label="image", choices=self._image_choices)
        self.region = ComboBox(label="region", choices=self._region_choices)
        self.model = ComboBox(label="model", choices=models or [DEFAULT_MODEL],
                              value=DEFAULT_MODEL if DEFAULT_MODEL in models or not models
                              else models[0])
        self.folder = FileEdit(label="model folder", mode="d", value="",
                               tooltip="a model folder (e.g. one you trained); overrides "
                                       "the model above")
        self.classes = Select(label="classes", choices=[])
        self.classes.native.setMaximumHeight(70)
        self.sizes = LineEdit(label="other sizes (nm)", value="",
                              tooltip="gold sizes the model does not have, e.g. '10 20' or "
                                      "'5-8': found at their own scale and measured (next "
                                      "Detect); empty: the classes above")
        self.threshold = FloatSlider(label="threshold", min=FLOOR, max=0.95, step=0.01,
                                     value=0.5, tooltip="lower finds more particles (and "
                                     "more false ones); moves the latest run's points live")
        self.pixel_size = FloatSpinBox(label="pixel size (nm)", min=0.0, max=1000.0,
                                       step=0.0001, value=0.0,
                                       tooltip="from the image layer's scale; type it if "
                                       "the layer is not calibrated")
        self.slices = ComboBox(label="slices", choices=[CURRENT, ALL], value=CURRENT)
        self.detect_button = PushButton(text="Detect")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.controls = Container(widgets=[
            self.image, self.region, self.model, self.folder, self.classes, self.sizes,
            self.threshold,
            self.pixel_size, self.slices, self.detect_button, self.cancel_button,
            self.status])
        layout = QVBoxLayout()
        layout.addWidget(self.controls.native)
        layout.addStretch()
        self.setLayout(layout)

        self.image.changed.connect(self._image_changed)
        self.model.changed.connect(self._model_changed)
        self.folder.changed.connect(self._model_changed)
        self.threshold.changed.connect(self._rethreshold)
        self.classes.changed.connect(self._rethreshold)
        self.sizes.changed.connect(self._sizes_changed)
        self.detect_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed,
                      napari_viewer.layers.events.reordered):
            event.connect(self._reset_choices)
        self._model_changed()
        self._reset_choices()

    # ------------------------------------------------------------------ choices
    def _image_choices(self, _widget=None) -> list[tuple[str, object]]:
        return [(layer.name, layer) for layer in self.viewer.layers
                if type(layer).__name__ == "Image"]

    def _region_choices(self, _widget=None) -> list[tuple[str, object]]:
        return [("whole image", None)] + [
            (layer.name, layer) for layer in self.viewer.layers
            if type(layer).__name__ in ("Shapes", "Labels")]

    def _reset_choices(self, _event=None) -> None:
        self.image.reset_choices()
        self.region.reset_choices()
        self._image_changed()

    def _image_changed(self, _value=None) -> None:
        layer = self.image.value
        if layer is not None:
            px = layer_pixel_size(layer)
            if px is not None:
                self.pixel_size.value = px

    def model_folder(self) -> Path:
        """The chosen model's folder."""
        from golddigger.model.folder import resolve_model

        folder = self.folder.line_edit.value.strip()  # the typed text: "" for none
        if folder:
            if not (Path(folder) / "config.json").is_file():
                raise GoldDiggerError(f"{folder} is not a model folder (no config.json); "
                                      "choose the folder golddigger train wrote")
            return Path(folder)
        return resolve_model(self.model.value)

    def detector(self):
        """The chosen model's `Detector` (loaded once)."""
        return load_detector(str(self.model_folder().resolve()))

    def _model_changed(self, _value=None) -> None:
        try:
            det = self.detector()
        except GoldDiggerError as err:
            self.status.value = str(err)
            return
        choices = [(name, d) for name, d in zip(class_names(det.classes), det.classes,
                                                strict=True)]
        self.classes.choices = choices
        self.classes.value = list(det.classes)
        self.threshold.value = min(max(det.threshold, FLOOR), 0.95)

    def other_sizes(self, detector) -> list[str] | None:
        """The *other sizes* typed (None: empty, or only the model's own classes)."""
        tokens = self.sizes.value.replace(",", " ").split()
        if not tokens:
            return None
        parse_classes(tokens)  # a bad size raises here, with the fix
        return tokens if detector._free_classes(tokens) is not None else None

    def _sizes_changed(self, _value=None) -> None:
        run = self.run
        try:
            wanted = None if run is None else self.other_sizes(run.detector)
        except GoldDiggerError as err:
            self._set_status(str(err))
            return
        if run is not None and wanted != run.sizes:
            self._set_status("press Detect to find these sizes (each needs the network "
                             "at its own scale)")

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """True while a detection runs."""
        return self.worker is not None

    def start(self) -> None:
        """Detect in a worker thread (the current slice or all slices)."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return
        try:
            job = self._prepare()
        except GoldDiggerError as err:
            self._fail(err)
            return
        planes, run = job
        worker = create_worker(_candidates_of, run.detector, planes, run.pixel_size_nm,
                               run.sizes,
                               _progress={"total": len(planes), "desc": "Detect Gold"})
        worker.returned.connect(lambda cands: self._finished(run, cands))
        worker.errored.connect(self._fail)
        worker.aborted.connect(lambda: self._set_status("cancelled; nothing added"))
        worker.finished.connect(self._done)
        self.worker = worker
        self.detect_button.enabled = False
        self.cancel_button.enabled = True
        self._set_status(f"detecting in {len(planes)} slice(s)...")
        worker.start()

    def cancel(self) -> None:
        """Stop the running detection; its particles are not added."""
        if self.worker is not None:
            self.worker.quit()

    def _prepare(self) -> tuple[list, Run]:
        image = self.image.value
        if image is None:
            raise GoldDiggerError("no image layer: open an image first")
        if getattr(image, "rgb", False):
            raise GoldDiggerError(f"{image.name} is an RGB image; convert it to greyscale "
                                  "(Image > Type > 8-bit in Fiji, or split its channels)")
        data = image.data[0] if getattr(image, "multiscale", False) else image.data
        ndim = len(data.shape)
        if ndim not in (2, 3):
            raise GoldDiggerError(f"{image.name} has {ndim} dimensions; Gold Digger reads a "
                                  "2D image or a (slice, y, x) stack")
        px = float(self.pixel_size.value)
        if px <= 0:
            raise GoldDiggerError(f"{image.name} has no pixel size: type it in nm/px")
        if ndim == 3 and self.slices.value == CURRENT:
            indices = [self.current_slice(image)]
        else:
            indices = list(range(data.shape[0])) if ndim == 3 else [0]
        planes = [(s, data[s] if ndim == 3 else data) for s in indices]
        region = region_from_layer(self.region.value, image, tuple(data.shape[-2:]),
                                   indices[0])
        det = self.detector()
        sizes = self.other_sizes(det)
        run = Run(detector=det, candidates=ParticleTable.empty(), pixel_size_nm=px,
                  ndim=ndim, name=f"gold ({image.name})", scale=tuple(image.scale),
                  translate=tuple(image.translate),
                  units=tuple(str(u) for u in image.units), region=region, sizes=sizes)
        return planes, run

    def current_slice(self, image) -> int:
        """The stack slice of ``image`` that the viewer's dims slider shows."""
        z = image.world_to_data(self.viewer.dims.point)[0]
        return int(np.clip(round(float(z)), 0, image.data.shape[0] - 1))

    def _finished(self, run: Run, candidates: ParticleTable) -> None:
        run.candidates = candidates
        self.run = run
        self._rethreshold()

    def _rethreshold(self, _value=None) -> None:
        """Show the latest run's particles at the slider's threshold (no network)."""
        run = self.run
        if run is None:
            return
        if run.layer is not None and run.layer not in self.viewer.layers:
            return  # its layer was deleted: nothing to update
        wanted = run.sizes if run.sizes is not None else \
            [d for d in self.classes.value or [] if d in run.detector.classes]
        table = select_particles(run.candidates, run.detector, float(self.threshold.value),
                                 classes=wanted, region=run.region)
        run.shown = table
        self._show(run, table)
        self._set_status(f"{len(table)} particles at threshold {self.threshold.value:.2f}"
                         f" ({_counts(table)})")

    def _show(self, run: Run, table: ParticleTable) -> None:
        data, kwargs, _ = particles_to_layer_data(table, run.pixel_size_nm, run.ndim,
                                                  name=run.name, scale=run.scale,
                                                  translate=run.translate,
                                                  units=run.units or None)
        if run.layer is None:
            run.layer = self.viewer.add_points(data, **kwargs)
            _score_hand_placed(run.layer)
            return
        layer = run.layer
        st = style(table, run.pixel_size_nm)
        layer.metadata["updating"] = True
        try:
            layer.data = data
            layer.features = st["features"]
            layer.size = st["size"]
            layer.border_color = st["border_color"]
        finally:
            layer.metadata["updating"] = False

    def _done(self) -> None:
        self.worker = None
        self.detect_button.enabled = True
        self.cancel_button.enabled = False

    def _fail(self, err: Exception) -> None:
        from napari.utils.notifications import show_error

        self._set_status(f"error: {err}")
        show_error(f"Detect Gold: {err}")

    def _set_status(self, text: str) -> None:
        self.status.value = text
        logger.info("%s", text)


def _candidates_of(detector, planes, pixel_size_nm: float, sizes: list[str] | None = None):
    """Worker body: candidates of each plane (for ``sizes`` the model does not have, if
    given), yielding after each one (progress, and where a cancel takes effect)."""
    tables = []
    for s, plane in planes:
        tables.append(find_candidates(detector, np.asarray(plane), pixel_size_nm, s,
                                      classes=sizes))
        yield s
    return ParticleTable.concat(tables)


def _score_hand_placed(layer) -> None:
    """Points added by hand get score 1 (napari copies the other features, the class
    included, from the last selected point)."""

    def on_data(event) -> None:
        if layer.metadata.get("updating") or str(getattr(event, "action", "")) != "added":
            return
        n = len(layer.data)
        rows = sorted({int(i) % n for i in event.data_indices}) if n else []
        if rows and "score" in layer.features:
            layer.features.loc[rows, "score"] = 1.0

    layer.events.data.connect(on_data)


def _counts(table: ParticleTable) -> str:
    return ", ".join(f"{d:g} nm: {len(table.of_class(d))}" for d in table.classes) or "none"
