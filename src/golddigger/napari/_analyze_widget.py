"""The *Analyze* dock widget: the spatial analysis (`golddigger.analysis`) of a Points
layer's particles inside a region, with the distribution summary as a table and the
L-function plot."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, SpinBox
from qtpy.QtCore import Qt
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from golddigger.errors import GoldDiggerError
from golddigger.napari._engine import run_analysis
from golddigger.napari._layers import layer_pixel_size, points_to_particles, region_from_layer

__all__ = ["AnalyzeWidget"]

logger = logging.getLogger(__name__)

#: Summary columns shown (all are in the written summary.csv).
SHOWN = ("class", "n", "area_um2", "density_per_um2", "mean_nnd_nm", "median_nnd_nm",
         "fraction_in_clusters", "n_clusters")


class AnalyzeWidget(QWidget):
    """Density, nearest neighbours, clusters and randomness of a Points layer."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.rows: list[dict] = []
        self.l_plot: Path | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="golddigger-analysis-")
        self.points = ComboBox(label="particles", choices=self._points_choices)
        self.region = ComboBox(label="region", choices=self._region_choices,
                               tooltip="default: the particles' grown hull, as golddigger analyze")
        self.pixel_size = FloatSpinBox(label="pixel size (nm)", min=0.0, max=1000.0,
                                       step=0.0001, value=0.0)
        self.n_sim = SpinBox(label="random patterns", min=0, max=9999, value=99)
        self.outdir = FileEdit(label="save to", mode="d", value="",
                               tooltip="folder for the tables and plots (default: temporary)")
        self.run_button = PushButton(text="Analyze")
        self.status = Label(value="")
        self.controls = Container(widgets=[self.points, self.region, self.pixel_size,
                                           self.n_sim, self.outdir, self.run_button,
                                           self.status])
        self.table = QTableWidget()
        self.plot = QLabel()
        self.plot.setAlignment(Qt.AlignCenter)
        layout = QVBoxLayout()
        layout.addWidget(self.controls.native)
        layout.addWidget(self.table)
        layout.addWidget(self.plot)
        self.setLayout(layout)
        self.points.changed.connect(self._points_changed)
        self.run_button.clicked.connect(self.start)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed,
                      napari_viewer.layers.events.reordered):
            event.connect(self._reset_choices)
        self._reset_choices()

    def _points_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers
                if type(layer).__name__ == "Points"]

    def _region_choices(self, _widget=None):
        return [("particles' hull", None)] + [
            (layer.name, layer) for layer in self.viewer.layers
            if type(layer).__name__ in ("Shapes", "Labels")]

    def _reset_choices(self, _event=None) -> None:
        self.points.reset_choices()
        self.region.reset_choices()
        self._points_changed()

    def _points_changed(self, _value=None) -> None:
        layer = self.points.value
        if layer is None:
            return
        px = (layer.metadata or {}).get("pixel_size_nm") or layer_pixel_size(layer)
        if px:
            self.pixel_size.value = float(px)

    def _job(self) -> dict:
        layer = self.points.value
        if layer is None:
            raise GoldDiggerError("no Points layer: detect or open particles first")
        px = float(self.pixel_size.value)
        if px <= 0:
            raise GoldDiggerError(f"{layer.name} has no pixel size: type it in nm/px")
        particles = points_to_particles(layer.data, layer.features, px, layer.size)
        slice_index = None
        if layer.ndim >= 3:
            slice_index = int(round(float(layer.world_to_data(self.viewer.dims.point)[-3])))
        shape = _plane_shape(self.viewer, layer, particles)
        region = region_from_layer(self.region.value, layer, shape, slice_index or 0)
        out = self.outdir.line_edit.value.strip()  # the typed text: "" for none
        outdir = Path(out) if out else Path(self._tmp.name) / layer.name.replace("/", "_")
        return dict(particles=particles, pixel_size_nm=px, region=region, outdir=outdir,
                    n_sim=int(self.n_sim.value), slice_index=slice_index, name=layer.name)

    def start(self) -> None:
        """Run the analysis in a worker thread."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return
        try:
            job = self._job()
        except GoldDiggerError as err:
            self._fail(err)
            return
        worker = create_worker(run_analysis, **job, _progress={"desc": "Analyze"})
        worker.returned.connect(self._show)
        worker.errored.connect(self._fail)
        worker.finished.connect(self._done)
        self.worker = worker
        self.run_button.enabled = False
        self.status.value = f"analysing {job['name']}..."
        worker.start()

    def _show(self, result) -> None:
        rows, l_plot = result
        self.rows, self.l_plot = rows, l_plot
        cols = [c for c in SHOWN if rows and c in rows[0]]
        self.table.setColumnCount(len(cols))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(cols)
        for i, row in enumerate(rows):
            for j, c in enumerate(cols):
                self.table.setItem(i, j, QTableWidgetItem(_cell(row[c])))
        self.table.resizeColumnsToContents()
        if l_plot is not None:
            pix = QPixmap(str(l_plot))
            self.plot.setPixmap(pix.scaledToWidth(max(300, self.width() - 20),
                                                  Qt.SmoothTransformation))
        else:
            self.plot.setText("no L function (fewer than 2 particles or no random patterns)")
        self.status.value = f"done; tables and plots in {Path(l_plot).parent if l_plot else ''}"

    def _done(self) -> None:
        self.worker = None
        self.run_button.enabled = True

    def _fail(self, err: Exception) -> None:
        from napari.utils.notifications import show_error

        self.status.value = f"error: {err}"
        show_error(f"Analyze: {err}")


def _plane_shape(viewer, points_layer, particles) -> tuple[int, int]:
    """The (rows, cols) of the image under the points (for Labels regions): the first image
    layer with the points' scale, else the points' extent."""
    for layer in viewer.layers:
        if type(layer).__name__ == "Image" and np.allclose(
                np.asarray(layer.scale)[-2:], np.asarray(points_layer.scale)[-2:]):
            return tuple(int(n) for n in layer.data.shape[-2:])
    if len(particles):
        return (int(np.ceil(particles.y.max())) + 1, int(np.ceil(particles.x.max())) + 1)
    return (1, 1)


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)
