"""The napari plugin in real napari (PyQt5) on a private Xvfb display, with pytest-qt.

napari's image layers need OpenGL, which Qt's offscreen platform lacks here, so the tests
start their own X server. Skipped when napari, pytest-qt or Xvfb are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")
npe2 = pytest.importorskip("npe2")

from tests.conftest import start_private_xvfb  # noqa: E402

from golddigger.io.images import read_image  # noqa: E402
from golddigger.io.regions import Region  # noqa: E402
from golddigger.io.rois import CLASS_COLORS  # noqa: E402
from golddigger.particles import ParticleTable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "src" / "golddigger" / "napari" / "napari.yaml"
EXAMPLE = REPO / "examples" / "synthetic_fril.tif"
CROP = (slice(200, 520), slice(150, 470))  # 320 x 320 px of the example: 15 particles
POLYGON_YX = np.array([[30, 20], [10, 300], [300, 280], [250, 40]], dtype=float)


@pytest.fixture(scope="session", autouse=True)
def xvfb_display():
    """A private X display for this session's Qt application, set before pytest-qt makes
    it (see `conftest.start_private_xvfb`)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (napari's image layers need OpenGL)")
    display = start_private_xvfb(120, "1600x1000x24")
    old = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    yield display
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def plugin():
    """The plugin's manifest, registered with npe2 (as the installed entry point does)."""
    pm = npe2.PluginManager.instance()
    if "golddigger" not in {m.name for m in pm.iter_manifests()}:
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    return pm.get_manifest("golddigger")


@pytest.fixture(scope="module")
def detector():
    from golddigger.model.folder import resolve_model
    from golddigger.napari._detect_widget import load_detector

    try:
        return load_detector(str(resolve_model(None).resolve()))
    except Exception as err:  # noqa: BLE001 - no shipped model in this checkout
        pytest.skip(f"no shipped model ({err})")


@pytest.fixture(scope="module")
def crop():
    image = read_image(EXAMPLE)
    return np.ascontiguousarray(np.asarray(image.slice(0))[CROP]), image.pixel_size_nm


class NetCounter:
    """Wraps the detector's network and counts its forward passes."""

    def __init__(self, detector, monkeypatch):
        self.calls = 0
        net = detector._net

        def counted(*args, **kwargs):
            self.calls += 1
            return net(*args, **kwargs)

        monkeypatch.setattr(detector, "_net", counted)


def _viewer_with_crop(make_napari_viewer, crop, region=True):
    plane, px = crop
    viewer = make_napari_viewer()
    viewer.add_image(plane, name="crop", scale=(px, px), units="nm")
    if region:
        viewer.add_shapes([POLYGON_YX], shape_type="polygon", name="membrane",
                          scale=(px, px), units="nm")
    return viewer


def _detect(qtbot, widget, timeout=30000):
    widget.start()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def _layer_particles(layer):
    from golddigger.napari._layers import points_to_particles

    return points_to_particles(layer.data, layer.features)


# ---------------------------------------------------------------------------- manifest
def test_manifest_validates_and_is_the_entry_point(plugin):
    import tomllib

    manifest = npe2.PluginManifest.from_file(MANIFEST)
    manifest.validate_imports()  # every python_name resolves
    assert manifest.name == "golddigger"
    contrib = manifest.contributions
    assert {w.display_name for w in contrib.widgets} == {"Detect Gold", "Analyze"}
    assert {tuple(w.filename_extensions) for w in contrib.writers} == {(".csv",), (".zip",)}
    assert [s.key for s in contrib.sample_data] == ["synthetic_fril"]
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["napari.manifest"] == {
        "golddigger": "golddigger.napari:napari.yaml"}
    assert "napari/napari.yaml" in meta["tool"]["setuptools"]["package-data"]["golddigger"]


def test_npe2_validate_finds_the_entry_point(tmp_path):
    """``npe2 validate golddigger`` as napari finds the plugin: through the package's
    ``napari.manifest`` entry point (an installed one, else pyproject's in a dist-info
    made here, as ``pip install`` would)."""
    import importlib.metadata
    import tomllib

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    installed = [ep for ep in importlib.metadata.entry_points(group="napari.manifest")
                 if ep.name == "golddigger"]
    if not installed:
        meta = tomllib.loads((REPO / "pyproject.toml").read_text())
        dist = tmp_path / f"golddigger-{meta['project']['version']}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: golddigger\n"
                                       f"Version: {meta['project']['version']}\n")
        eps = meta["project"]["entry-points"]["napari.manifest"]
        (dist / "entry_points.txt").write_text(
            "[napari.manifest]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
        env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    npe2_cli = Path(sys.executable).with_name("npe2")
    cmd = [str(npe2_cli)] if npe2_cli.exists() else [sys.executable, "-m", "npe2"]
    out = subprocess.run([*cmd, "validate", "golddigger"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr


def test_core_never_imports_napari():
    code = ("import sys, golddigger, golddigger.cli.main, golddigger.model.detector, "
            "golddigger.pipeline, golddigger.analysis, golddigger.napari._engine, "
            "golddigger.napari._io\n"
            "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'magicgui') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


# ---------------------------------------------------------------------------- sample
def test_sample_data_opens_image_and_outline(make_napari_viewer, plugin):
    viewer = make_napari_viewer()
    viewer.open_sample("golddigger", "synthetic_fril")
    image, shapes = viewer.layers["synthetic_fril"], viewer.layers["membrane"]
    truth = read_image(EXAMPLE)
    assert image.data.shape == truth.shape_yx
    np.testing.assert_allclose(image.scale, [truth.pixel_size_nm] * 2)
    assert shapes.shape_type == ["polygon"] and np.allclose(shapes.scale, image.scale)
    verts = shapes.data[0]
    assert verts.min() >= -0.5 and verts.max() <= truth.shape_yx[0] - 0.5
    # the outline holds the example's particles
    labels = ParticleTable.from_csv(EXAMPLE.with_suffix(".csv"))
    inside = Region.from_polygon(verts[:, ::-1]).contains(labels.x, labels.y)
    assert inside.mean() > 0.8


# ---------------------------------------------------------------------------- detect
def test_detections_equal_predict_and_threshold_is_live(make_napari_viewer, qtbot, detector,
                                                        crop, monkeypatch):
    from golddigger.napari._detect_widget import DetectGoldWidget

    plane, px = crop
    viewer = _viewer_with_crop(make_napari_viewer, crop)
    widget = DetectGoldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.pixel_size.value == pytest.approx(px)  # read from the layer's scale
    widget.region.value = viewer.layers["membrane"]
    widget.threshold.value = 0.38
    counter = NetCounter(detector, monkeypatch)
    _detect(qtbot, widget)
    assert counter.calls == 1
    points = [layer for layer in viewer.layers if type(layer).__name__ == "Points"]
    assert len(points) == 1
    layer = points[0]
    region = Region.from_polygon(POLYGON_YX[:, ::-1])
    expected = detector.predict(plane, px, region=region, threshold=0.38)
    got = _layer_particles(layer)
    assert len(expected) >= 5
    np.testing.assert_allclose(got.xy, expected.xy, atol=1e-9)
    np.testing.assert_array_equal(got.diameter_nm, expected.diameter_nm)
    np.testing.assert_allclose(got.score, expected.score)
    assert list(layer.features["class"]) == [f"{d:g} nm" for d in expected.diameter_nm]
    np.testing.assert_allclose(layer.size, expected.diameter_nm / px)
    np.testing.assert_allclose(layer.scale, [px, px])
    colour = {d: np.array([int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)])
              for d, c in CLASS_COLORS.items()}
    for d, rgba in zip(expected.diameter_nm, layer.border_color, strict=True):
        np.testing.assert_allclose(rgba[:3], colour[d], atol=1e-6)

    # the slider re-thresholds the same layer, the network is not run again
    calls = counter.calls
    for t in (0.15, 0.7, 0.38):
        widget.threshold.value = t
        want = detector.predict(plane, px, region=region, threshold=t)
        got = _layer_particles(layer)
        assert len(got) == len(want)
        np.testing.assert_allclose(got.xy, want.xy, atol=1e-9)
        np.testing.assert_allclose(np.asarray(layer.features["score"]), want.score)
        if t == 0.15:
            assert len(want) > len(expected)  # the threshold does change the answer
    predict_calls = 3  # one network pass per predict above
    assert counter.calls == calls + predict_calls
    assert len(viewer.layers) == 3  # still one Points layer

    # proofreading: a point added by hand takes the selected point's class and score 1
    layer.selected_data = {0}
    layer.add([[100.0, 100.0]])
    assert layer.features["score"].iloc[-1] == 1.0
    assert layer.features["diameter_nm"].iloc[-1] == layer.features["diameter_nm"].iloc[0]
    layer.data = layer.data[:-1]

    # classes filter live too
    widget.classes.value = [12.0]
    got = _layer_particles(layer)
    assert set(got.diameter_nm) <= {12.0}
    assert len(got) == len(detector.predict(plane, px, region=region, threshold=0.38,
                                            classes=[12]))


def test_other_sizes_are_found_at_their_scale(make_napari_viewer, qtbot, detector, crop):
    """*Other sizes* (gold the model does not have): found and measured as
    `Detector.predict` with those classes; a new size list waits for Detect."""
    from golddigger.napari._detect_widget import DetectGoldWidget

    plane, px = crop
    declared = px * 5 / 3  # its 6/12 nm gold reads 10/20 nm
    viewer = _viewer_with_crop(make_napari_viewer, crop, region=False)
    widget = DetectGoldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.pixel_size.value = declared
    declared = widget.pixel_size.value  # as the spin box holds it (4 decimals)
    widget.threshold.value = 0.4
    widget.sizes.value = "10, 20"
    _detect(qtbot, widget)
    (layer,) = [x for x in viewer.layers if type(x).__name__ == "Points"]
    want = detector.predict(plane, declared, threshold=0.4, classes=["10", "20"])
    got = _layer_particles(layer)
    assert len(want) >= 5 and set(want.diameter_nm) <= {10.0, 20.0}
    np.testing.assert_allclose(got.xy, want.xy, atol=1e-9)
    np.testing.assert_array_equal(got.diameter_nm, want.diameter_nm)
    widget.threshold.value = 0.7  # still live, still these sizes
    assert len(_layer_particles(layer)) == len(
        detector.predict(plane, declared, threshold=0.7, classes=["10", "20"]))
    widget.sizes.value = "5-8"
    assert "press Detect" in widget.status.value
    assert set(_layer_particles(layer).diameter_nm) <= {10.0, 20.0}
    widget.sizes.value = "ten"
    assert "not a diameter" in widget.status.value


def test_uncalibrated_image_needs_a_typed_pixel_size(make_napari_viewer, qtbot, detector,
                                                     crop, tmp_path):
    from golddigger.napari._detect_widget import DetectGoldWidget

    plane, px = crop
    viewer = make_napari_viewer()
    viewer.add_image(plane, name="plain")  # scale 1 in pixels: no calibration
    widget = DetectGoldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.pixel_size.value == 0
    widget.start()
    assert not widget.running and "no pixel size" in widget.status.value
    assert len(viewer.layers) == 1
    widget.pixel_size.value = px
    widget.folder.value = tmp_path  # not a model folder
    widget.start()
    assert not widget.running and "not a model folder" in widget.status.value
    widget.folder.line_edit.value = ""
    widget.threshold.value = 0.38
    _detect(qtbot, widget)
    layer = viewer.layers[-1]
    np.testing.assert_allclose(layer.scale, [1, 1])  # on the image, which is in pixels
    assert layer.metadata["pixel_size_nm"] == pytest.approx(px)
    np.testing.assert_allclose(_layer_particles(layer).xy,
                               detector.predict(plane, px, threshold=0.38).xy, atol=1e-9)


def test_stack_current_slice_and_cancel(make_napari_viewer, qtbot, detector, crop,
                                        monkeypatch):
    from golddigger.napari._detect_widget import ALL, DetectGoldWidget

    plane, px = crop
    stack = np.stack([plane, np.ascontiguousarray(plane[::-1]), np.ascontiguousarray(
        plane[:, ::-1])])
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="stack", scale=(1, px, px), units=("pixel", "nm", "nm"))
    widget = DetectGoldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.pixel_size.value == pytest.approx(px)

    # cancel: the run stops at the next slice and adds nothing
    widget.slices.value = ALL
    counter = NetCounter(detector, monkeypatch)
    widget.start()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    assert counter.calls < 3
    assert [type(layer).__name__ for layer in viewer.layers] == ["Image"]
    assert "cancelled" in widget.status.value

    # the current slice follows the dims slider
    viewer.dims.set_current_step(0, 1)
    widget.slices.value = "current slice"
    widget.threshold.value = 0.38
    _detect(qtbot, widget)
    layer = viewer.layers[-1]
    assert type(layer).__name__ == "Points" and layer.ndim == 3
    got = _layer_particles(layer)
    want = detector.predict(stack, px, slices=[1], threshold=0.38)
    assert len(want) > 0 and set(got.slice) == {1}
    np.testing.assert_allclose(got.xy, want.xy, atol=1e-9)


# ---------------------------------------------------------------------------- reader/writer
def test_writer_reader_round_trip(make_napari_viewer, plugin, tmp_path):
    from golddigger.io.annotations import read_particles
    from golddigger.napari._io import get_reader, write_csv, write_roiset
    from golddigger.napari._layers import particles_to_layer_data

    px = 0.5587
    particles = ParticleTable([10.25, 40.5, 77.75], [20.5, 60.25, 15.0], [6.0, 12.0, 18.0],
                              [0.91, 0.5, 1.0], [0, 0, 0])
    viewer = make_napari_viewer()
    data, kwargs, _ = particles_to_layer_data(particles, px, name="S1")
    layer = viewer.add_points(data, **kwargs)
    layer.add([[30.0, 90.0]])  # proofreading: a particle added by hand
    layer.features.loc[3, ["diameter_nm", "score"]] = [12.0, 1.0]
    layer_data, meta, _ = layer.as_layer_data_tuple()
    csv = write_csv(str(tmp_path / "S1.csv"), layer_data, meta)
    zip_ = write_roiset(str(tmp_path / "S1.zip"), layer_data, meta)
    assert csv == [str(tmp_path / "S1.csv")] and zip_ == [str(tmp_path / "S1_RoiSet.zip")]
    edited = ParticleTable([10.25, 40.5, 77.75, 90.0], [20.5, 60.25, 15.0, 30.0],
                           [6.0, 12.0, 18.0, 12.0], [0.91, 0.5, 1.0, 1.0])
    # what `golddigger train` reads
    for path in (csv[0], zip_[0]):
        labels = read_particles(path, px)
        np.testing.assert_allclose(labels.xy, edited.xy, atol=0.01)
        np.testing.assert_array_equal(labels.diameter_nm, edited.diameter_nm)
    # and back into napari through the plugin's reader
    assert get_reader(str(tmp_path / "notes.txt")) is None
    for path in (csv[0], zip_[0]):
        layers = viewer.open(path, plugin="golddigger")
        back = _layer_particles(layers[-1])
        np.testing.assert_allclose(back.xy, edited.xy, atol=0.01)
        np.testing.assert_array_equal(back.diameter_nm, edited.diameter_nm)
    np.testing.assert_allclose(_layer_particles(viewer.layers[-2]).score, edited.score)
    # the RoiSet's ovals give the pixel size back
    np.testing.assert_allclose(viewer.layers[-1].scale, [px, px])


def test_reader_takes_pixel_size_from_summary(tmp_path):
    from golddigger.napari._io import get_reader

    ParticleTable([5.0], [6.0], [12.0]).to_csv(tmp_path / "img.csv")
    (tmp_path / "summary.csv").write_text("image,slice,pixel_size_nm,total\nimg.tif,1,0.8,1\n")
    (data, kwargs, kind), = get_reader(str(tmp_path / "img.csv"))(str(tmp_path / "img.csv"))
    assert kind == "points" and np.allclose(data, [[6.0, 5.0]])
    assert kwargs["scale"] == (0.8, 0.8) and np.allclose(kwargs["size"], 12.0 / 0.8)
    (tmp_path / "other.csv").write_text("index,axis-0,axis-1\n0,1,2\n")  # napari's own CSV
    assert get_reader(str(tmp_path / "other.csv")) is None


# ---------------------------------------------------------------------------- analyze
def test_analyze_widget_shows_summary_and_l_plot(make_napari_viewer, qtbot, plugin, tmp_path):
    from golddigger.napari._analyze_widget import AnalyzeWidget
    from golddigger.napari._io import read_particles_layer

    viewer = make_napari_viewer()
    viewer.open_sample("golddigger", "synthetic_fril")
    (data, kwargs, _), = read_particles_layer(str(EXAMPLE.with_suffix(".csv")))
    kwargs["scale"] = viewer.layers["synthetic_fril"].scale  # the labels' pixels
    viewer.add_points(data, **kwargs)
    widget = AnalyzeWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.region.value = viewer.layers["membrane"]
    widget.n_sim.value = 19
    widget.outdir.value = tmp_path
    assert widget.pixel_size.value == pytest.approx(0.5587)
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert "error" not in widget.status.value, widget.status.value
    truth = ParticleTable.from_csv(EXAMPLE.with_suffix(".csv"))
    rows = {r["class"]: r for r in widget.rows}
    assert set(rows) == {f"{d:g}" for d in truth.classes} | {"all"}
    assert 0 < rows["all"]["n"] <= len(truth)
    assert widget.table.rowCount() == len(widget.rows)
    assert widget.table.item(widget.table.rowCount() - 1, 0).text() == "all"
    assert widget.l_plot is not None and Path(widget.l_plot).is_file()
    assert (tmp_path / "summary.csv").is_file()
    assert not widget.plot.pixmap().isNull()
