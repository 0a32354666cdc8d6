"""The ImageJ bridge for real: ImageJ 1.53t (Debian's ij.jar) under an Xvfb these tests
start, with the shipped model.

* Python-hosted: one JVM in this process (JPype cannot restart one) with ImageJ's window,
  the Gold Digger commands installed in a temporary ImageJ folder and served by the
  command listener; macros draw the membrane and run the commands.
* Installed: ImageJ started by ``java -jar ij.jar -batch`` in a subprocess, the commands
  installed by ``golddigger install-fiji``, running the golddigger program.

Skipped when Java, ij.jar, Xvfb or the shipped model are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi
from tests.conftest import start_private_xvfb

from golddigger.io.annotations import read_particles
from golddigger.io.images import read_image, write_tiff
from golddigger.io.regions import Region
from golddigger.io.rois import CLASS_COLORS, class_groups, read_region, write_roiset
from golddigger.particles import ParticleTable

pytestmark = pytest.mark.imagej

IJ_JAR = Path(os.environ.get("IJ_JAR", "/usr/share/java/ij.jar"))
REPO = Path(__file__).resolve().parents[1]
PX = 0.5587
POLYGON = [(60, 40), (560, 70), (600, 420), (330, 560), (40, 470)]  # ImageJ coordinates
TIMEOUT = 150


def _need_tools() -> None:
    for tool in ("java", "Xvfb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not IJ_JAR.is_file():
        pytest.skip(f"no ImageJ 1 at {IJ_JAR} (apt-get install imagej, or set IJ_JAR)")
    pytest.importorskip("jpype")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def xvfb():
    """A private X display for ImageJ (see `conftest.start_private_xvfb`)."""
    _need_tools()
    display = start_private_xvfb(91, "1280x1024x24")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture(scope="module")
def detector():
    from golddigger.imagej import backend

    try:
        return backend.get_detector("default")
    except Exception as err:  # ModelError, missing file, ...
        pytest.skip(f"no shipped model ({type(err).__name__}: {err}); the ImageJ tests need "
                    "Detector.from_pretrained()")


@pytest.fixture(scope="module")
def ij_dir(tmp_path_factory):
    """An ImageJ folder with the commands installed by ``golddigger install-fiji``."""
    from golddigger.imagej.install import install

    d = tmp_path_factory.mktemp("imagej home")
    (d / "plugins").mkdir()
    install(d)
    return d


@pytest.fixture(scope="module")
def imagej(xvfb, detector, ij_dir):
    """ImageJ 1 in this process, its window on the private display, the commands served by
    Python (errors to the log, not dialogs). Timings are in ``running.timings``."""
    from golddigger.imagej import session

    t0 = time.perf_counter()
    running = session.start(ij_dir=ij_dir, dialogs=False)
    if running.connection.headless or running.window is None:
        pytest.skip("ImageJ started headless (the JVM was started before DISPLAY was set)")
    running.timings = {"start_s": time.perf_counter() - t0}
    running.detector = detector
    yield running
    session.close_all(keep_main_window=False)


@pytest.fixture()
def ij(imagej):
    """A clean ImageJ for each test: no images, empty ROI Manager and tables."""
    from ij import IJ
    from ij.plugin.frame import RoiManager

    from golddigger.imagej.session import close_all

    close_all()
    rm = RoiManager.getInstance()
    if rm is not None:
        rm.reset()
    IJ.run("Clear Results")
    IJ.log("\\Clear")
    return imagej


def _synth(shape=(600, 640), counts=None, seed=3):
    from golddigger.synth import SynthConfig, generate

    counts = counts or {6: 24, 12: 10, 18: 4}
    return generate(SynthConfig(shape=shape, counts=counts), seed=seed)


def _macro(code: str) -> str:
    from ij import IJ

    out = IJ.runMacro(code)
    return "" if out is None else str(out)


def _manager_rois(tmp_path: Path, name="rm.zip") -> tuple[list[ImagejRoi], Path]:
    """The ROI Manager's ROIs as ImageJ saves them (deselect first: with a ROI selected,
    ImageJ saves only that one)."""
    from ij.plugin.frame import RoiManager

    rm = RoiManager.getInstance()
    assert rm is not None and rm.getCount() > 0, "the ROI Manager is empty"
    rm.deselect()
    path = tmp_path / name
    assert rm.runCommand("Save", str(path))
    with zipfile.ZipFile(path) as zf:
        return [ImagejRoi.frombytes(zf.read(n)) for n in zf.namelist()], path


def _polygon_mask(shape) -> np.ndarray:
    # ImageJ's own mask of the polygon (pixel centres inside), via the rois module
    roi = ImagejRoi.frompoints(np.array(POLYGON, dtype=np.int32))
    roi.roitype = ROI_TYPE.POLYGON
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        roi.tofile(Path(d) / "p.roi")
        return read_region(Path(d) / "p.roi").to_mask(shape)


def _inside(mask: np.ndarray, x, y) -> np.ndarray:
    return Region.from_mask(mask).contains(x, y)


def _same_particles(a: ParticleTable, b: ParticleTable) -> None:
    """Same particles (any order): positions to 0.01 px (ROIs store float32), classes."""
    assert len(a) == len(b), (a, b)
    ka, kb = np.lexsort((a.x, a.y)), np.lexsort((b.x, b.y))
    assert np.allclose(a.xy[ka], b.xy[kb], atol=0.01)
    assert np.array_equal(a.diameter_nm[ka], b.diameter_nm[kb])


def _match(found: ParticleTable, truth: ParticleTable, tol_px: float,
           same_class: bool = False) -> int:
    """Greedy one-to-one matches within ``tol_px`` (and of the same class)."""
    used = set()
    n = 0
    for x, y, d, _, _ in found:
        dist = np.hypot(truth.x - x, truth.y - y)
        for j in np.argsort(dist):
            if dist[j] > tol_px:
                break
            if j not in used and (not same_class or abs(truth.diameter_nm[j] - d) < 0.5):
                used.add(j)
                n += 1
                break
    return n


# ---------------------------------------------------------------------------- Python-hosted
def test_detect_gold_from_the_menu_command(ij, tmp_path):
    from ij.measure import ResultsTable

    from golddigger.imagej import convert

    r = _synth()
    imp = convert.array_to_imageplus("synapse 1.tif", r.image, r.pixel_size_nm)
    imp.show()
    xs = ",".join(f"{x},{y}" for x, y in POLYGON)
    t0 = time.perf_counter()
    out = _macro(f'makePolygon({xs}); run("Detect Gold", ""); '
                 'return "" + roiManager("count") + " " + Table.size("Gold Digger Results") '
                 '+ " " + selectionType() + " " + nResults;')
    ij.timings["first_detect_s"] = time.perf_counter() - t0
    n_rm, n_results, sel, n_imagej = (int(v) for v in out.split())
    assert n_imagej == 0, "ImageJ's Results table is left to the user unless results is on"
    assert ij.session.history[-1]["command"] == "Detect Gold"  # served by Python
    assert sel == 2, "the membrane selection must stay on the image"

    rois, zpath = _manager_rois(tmp_path)
    found = read_particles(zpath, PX)
    assert len(found) == n_rm == n_results == len(rois)
    mask = _polygon_mask(r.image.shape)
    assert _inside(mask, found.x, found.y).all(), "a particle outside the polygon"
    # exactly what the detector finds in that region: the bridge adds and loses nothing
    direct = ij.detector.predict(r.image, pixel_size_nm=PX, region=Region.from_mask(mask))
    _same_particles(found, direct)
    # and the known particles are found (their count and classes: the next test)
    truth = r.particles[_inside(mask, r.particles.x, r.particles.y)]
    assert _match(found, truth, tol_px=4) >= 0.8 * len(truth), (found, truth)
    assert len(found) <= 3 * len(truth), (found, truth)

    groups = class_groups(found.classes)
    for roi, (_x, _y, d, _score, _s) in zip(rois, found, strict=True):
        assert roi.name.startswith(f"gold-{d:g}nm-")
        assert roi.group == groups[d]
        assert "#{:02X}{:02X}{:02X}".format(*roi.stroke_color[1:]) == CLASS_COLORS[d]
        assert float(roi.properties["score"]) > 0 and float(roi.properties["diameter_nm"]) == d

    rt = ResultsTable.getResultsTable("Gold Digger Results")
    names = [str(rt.getStringValue("Name", i)) for i in range(rt.size())]
    assert {str(rt.getStringValue("Image", i)) for i in range(rt.size())} == {"synapse 1.tif"}
    assert names == [roi.name for roi in rois]
    x_px = np.array([rt.getValue("X_px", i) for i in range(rt.size())])
    x_cal = np.array([rt.getValue("X", i) for i in range(rt.size())])
    assert np.allclose(x_cal, x_px * PX, rtol=1e-4)  # the image is calibrated in nm
    assert np.allclose(x_px, found.x, atol=0.01)

    summary = ResultsTable.getResultsTable("Gold Digger Summary")
    assert summary is not None and summary.size() >= 1
    last = summary.size() - 1
    assert summary.getValue("total", last) == len(found)
    for d in found.classes:
        assert summary.getValue(f"n_{d:g}nm", last) == len(found.of_class(d))
    area_um2 = mask.sum() * (PX / 1000) ** 2
    assert summary.getValue("area_um2", last) == pytest.approx(area_um2, rel=1e-3)
    assert summary.getValue("density_per_um2", last) == pytest.approx(
        len(found) / area_um2, rel=1e-3)

    # saveAs("Results") in a macro saves the active table: the particles, not the summary
    _macro(f'saveAs("Results", "{tmp_path / "saved.csv"}");')
    assert "X_px" in (tmp_path / "saved.csv").read_text().splitlines()[0]
    assert ResultsTable.getResultsTable("Gold Digger Summary") is not None

    t0 = time.perf_counter()
    _macro('run("Detect Gold", "threshold=0.9 classes=12 shape=points region=image '
           'rerun=add");')
    ij.timings["later_detect_s"] = time.perf_counter() - t0
    rois2, _ = _manager_rois(tmp_path, "rm2.zip")
    new = rois2[len(rois):]
    assert all(roi.roitype == 10 and "-12nm-" in roi.name for roi in new)  # points, 12 nm


def test_detect_gold_count_and_classes_are_close_to_the_truth(ij, tmp_path):
    from golddigger.imagej import convert

    r = _synth(seed=5)
    convert.array_to_imageplus("count me.tif", r.image, PX).show()
    xs = ",".join(f"{x},{y}" for x, y in POLYGON)
    _macro(f'makePolygon({xs}); run("Detect Gold", "");')
    _, zpath = _manager_rois(tmp_path)
    found = read_particles(zpath, PX)
    mask = _polygon_mask(r.image.shape)
    truth = r.particles[_inside(mask, r.particles.x, r.particles.y)]
    assert abs(len(found) - len(truth)) <= max(3, 0.2 * len(truth)), (found, truth)
    assert _match(found, truth, tol_px=4, same_class=True) >= 0.8 * len(truth)


def test_whole_stack_and_current_slice_positions(ij, tmp_path):
    from golddigger.imagej import convert

    planes = [_synth((400, 420), {6: 6, 12: 3}, seed=s).image for s in (11, 12, 13)]
    imp = convert.array_to_imageplus("stack.tif", np.stack(planes), PX)
    imp.show()
    _macro('setSlice(2); run("Detect Gold", "whole_stack");')
    rois, zpath = _manager_rois(tmp_path)
    found = read_particles(zpath, PX)
    assert {r.position for r in rois} == {1, 2, 3}
    assert all(r.position == s + 1 for r, s in zip(rois, found.slice, strict=True))
    n_whole = len(rois)
    on_3 = sum(1 for r in rois if r.position == 3)
    # the current slice again: its particles are replaced, the other slices' stay
    _macro('setSlice(3); run("Detect Gold", "");')
    rois, _ = _manager_rois(tmp_path, "rm2.zip")
    assert len(rois) == n_whole and {r.position for r in rois} == {1, 2, 3}
    assert {r.position for r in rois[n_whole - on_3:]} == {3}
    _macro('setSlice(3); run("Detect Gold", "rerun=add");')
    rois, _ = _manager_rois(tmp_path, "rm3.zip")
    assert len(rois) == n_whole + on_3 and {r.position for r in rois[n_whole:]} == {3}


def test_region_from_the_roi_manager(ij, tmp_path):
    """region=roi_manager: the union of the ROI Manager's area ROIs; points and Gold
    Digger's own particles (gold-*) are not part of it."""
    from ij.gui import OvalRoi, Roi
    from ij.measure import ResultsTable

    from golddigger.imagej import convert

    r = _synth((500, 520), {6: 14, 12: 5}, seed=17)
    convert.array_to_imageplus("manager.tif", r.image, PX).show()
    _macro('makeRectangle(20, 30, 200, 180); roiManager("add");'
           'makeOval(260, 250, 220, 200); roiManager("add");'
           'makePoint(400, 40); roiManager("add");'
           'makeRectangle(0, 0, 520, 500); Roi.setName("gold-6nm-9999"); roiManager("add");'
           'run("Select None"); run("Detect Gold", "region=roi_manager");')
    mask = convert.rois_to_region([Roi(20, 30, 200, 180), OvalRoi(260, 250, 220, 200)],
                                  520, 500).mask
    direct = ij.detector.predict(r.image, pixel_size_nm=PX, region=Region.from_mask(mask))
    rt = ResultsTable.getResultsTable("Gold Digger Results")
    xy = np.array([[rt.getValue("X_px", i), rt.getValue("Y_px", i)] for i in range(rt.size())])
    got = ParticleTable(xy[:, 0], xy[:, 1], [rt.getValue("Diameter_nm", i)
                                            for i in range(rt.size())]) if len(xy) else \
        ParticleTable.empty()
    _same_particles(got, direct)
    assert len(direct) < len(ij.detector.predict(r.image, pixel_size_nm=PX))


def test_headless_session_uses_the_overlay_and_a_roiset(ij, tmp_path):
    """Without a display there is no ROI Manager: the particles go to the image's overlay
    and a RoiSet zip (the code path, run here in the GUI JVM: headless is JVM-wide)."""
    from ij import WindowManager

    from golddigger.imagej import convert
    from golddigger.imagej.commands import Session

    r = _synth((400, 420), {6: 8, 12: 3}, seed=23)
    imp = convert.array_to_imageplus("no display.tif", r.image, PX)
    WindowManager.setTempCurrentImage(imp)
    try:
        Session(headless=True, dialogs=False, output_dir=tmp_path).run(
            "Detect Gold", "region=image", from_macro=False)
    finally:
        WindowManager.setTempCurrentImage(None)
    saved = read_particles(tmp_path / "no_display_RoiSet.zip", PX)
    _same_particles(saved, ij.detector.predict(r.image, pixel_size_nm=PX))
    assert imp.getOverlay() is not None and imp.getOverlay().size() == len(saved)


def test_menu_click_shows_a_dialog_that_the_recorder_records(ij):
    """A real menu click: the command runs on a new thread and shows its dialog; OK runs
    it, and the macro recorder writes the run("Detect Gold", ...) line."""
    from ij import IJ
    from ij.plugin.frame import Recorder
    from java.awt.event import ActionEvent

    from golddigger.imagej import convert

    r = _synth((400, 420), {6: 8, 12: 3}, seed=21)
    convert.array_to_imageplus("clicked.tif", r.image, PX).show()
    IJ.run("Record...")
    for _ in range(200):  # the Recorder window opens on the event thread
        if Recorder.getInstance() is not None and Recorder.record:
            break
        time.sleep(0.05)
    # Earlier tests in this JVM ran Detect Gold too: wait for a new entry, not any entry.
    runs_before = len(ij.session.history)
    ij.session.dialogs = True
    text = ""
    try:
        dialog = _click_detect_gold(ij)
        assert "Detect Gold" in str(dialog.getTitle())
        ok = dialog.getButtons()[0]
        dialog.actionPerformed(ActionEvent(ok, ActionEvent.ACTION_PERFORMED, "OK"))
        for _ in range(600):
            if len(ij.session.history) > runs_before:
                break
            time.sleep(0.05)
        assert ij.session.history[-1]["command"] == "Detect Gold"
        for _ in range(200):  # the recorder writes its line as the command returns
            text = str(Recorder.getInstance().getText())
            if "Detect Gold" in text:
                break
            time.sleep(0.05)
    finally:
        ij.session.dialogs = False
        rec = Recorder.getInstance()
        if rec is not None:
            rec.close()
    assert 'run("Detect Gold", "model=default threshold=0 classes=all shape=ovals' in text
    assert "save=" not in text and "tmp" not in text
    # the recorded line replays to the same ROIs
    from ij.plugin.frame import RoiManager

    rm = RoiManager.getInstance()
    before = sorted(str(rm.getName(i)) for i in range(rm.getCount()))
    rm.reset()
    line = next(ln for ln in text.splitlines() if ln.startswith('run("Detect Gold"'))
    _macro(line)
    assert sorted(str(rm.getName(i)) for i in range(rm.getCount())) == before


def test_rerun_replaces_and_output_choices(ij, tmp_path):
    """Detect Gold twice on the same image: the ROI Manager count, the particle table and
    the summary stay as they were (rerun=replace); rerun=add keeps the earlier ones; another
    image's particles are never touched; add_to=overlay leaves the ROI Manager alone; only
    `results` fills ImageJ's Results table."""
    from ij.measure import ResultsTable

    from golddigger.imagej import convert

    r = _synth((400, 420), {6: 8, 12: 3}, seed=23)
    other = convert.array_to_imageplus("other.tif", _synth((400, 420), {6: 5}, seed=24).image,
                                       PX)
    other.show()
    _macro('run("Detect Gold", "region=image");')
    imp = convert.array_to_imageplus("again.tif", r.image, PX)
    imp.show()
    counts = _macro(
        'run("Detect Gold", "region=image"); a = roiManager("count"); '
        'b = Table.size("Gold Digger Results"); c = Table.size("Gold Digger Summary"); '
        'run("Detect Gold", "region=image"); '
        'return "" + a + " " + b + " " + c + " " + roiManager("count") + " " '
        '+ Table.size("Gold Digger Results") + " " + Table.size("Gold Digger Summary") '
        '+ " " + nResults;')
    a, b, c, a2, b2, c2, n_imagej = (int(v) for v in counts.split())
    assert (a2, b2, c2) == (a, b, c), "a rerun must replace, not add"
    assert n_imagej == 0
    rois, _ = _manager_rois(tmp_path)
    names = [roi.name for roi in rois if roi.properties.get("image") == "again.tif"]
    assert len(names) == len(set(names)), "duplicate ROI names after a rerun"
    n_other = sum(1 for roi in rois if roi.properties.get("image") == "other.tif")
    n_here = sum(1 for roi in rois if roi.properties.get("image") == "again.tif")
    assert n_other > 0 and n_here > 0 and n_other + n_here == a

    out = _macro('run("Detect Gold", "region=image rerun=add"); '
                 'return "" + roiManager("count");')
    assert int(out) == a + n_here
    out = _macro('run("Detect Gold", "region=image add_to=overlay results"); '
                 'return "" + roiManager("count") + " " + Overlay.size + " " + nResults;')
    n_rm, n_overlay, n_imagej = (int(v) for v in out.split())
    assert n_rm == n_other, "replace removes this image's ROIs from the ROI Manager too"
    assert n_overlay == n_here and n_imagej == n_here
    rt = ResultsTable.getResultsTable("Gold Digger Results")
    images = [str(rt.getStringValue("Image", i)) for i in range(rt.size())]
    assert images.count("again.tif") == n_here and images.count("other.tif") == n_other
    out = _macro('run("Detect Gold", "region=image add_to=both"); '
                 'return "" + roiManager("count") + " " + Overlay.size;')
    assert [int(v) for v in out.split()] == [n_other + n_here, n_here]


def test_line_and_point_selections_are_refused(ij):
    """A line or point selection is no region: the command says so and adds nothing."""
    from ij import IJ

    from golddigger.imagej import convert

    convert.array_to_imageplus("lines.tif", _synth((300, 320), {6: 4}, seed=25).image,
                               PX).show()
    for sel in ("makeLine(10, 10, 200, 150);", "makePoint(40, 50);"):
        IJ.log("\\Clear")
        _macro(sel + ' run("Detect Gold", "");')
        log = str(IJ.getLog() or "")
        assert "counts inside an area selection" in log, log
        assert "--" not in log and "/tmp" not in log, "messages speak ImageJ, not CLI"
    assert _macro('return "" + roiManager("count");') == "0"


def test_escape_cancels_and_adds_nothing(ij, tmp_path):
    """Esc while Detect Gold runs on a stack: the Python side stops, nothing is added, no
    temporary file is left."""
    import tempfile
    import threading

    from ij import IJ
    from java.awt.event import KeyEvent

    from golddigger.imagej import convert

    planes = [_synth((300, 320), {6: 4, 12: 2}, seed=s).image for s in (61, 62, 63, 64)]
    convert.array_to_imageplus("cancel me.tif", np.stack(planes), PX).show()
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("golddigger*"))
    runs = len(ij.session.history)
    done = threading.Event()

    def press():
        while not done.is_set():  # keep pressing: the command clears Esc when it starts
            IJ.setKeyDown(KeyEvent.VK_ESCAPE)
            time.sleep(0.02)

    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    try:
        _macro('run("Detect Gold", "whole_stack region=image");')
    finally:
        done.set()
        presser.join()
        IJ.resetEscape()
    assert ij.session.history[runs:] and ij.session.history[-1].get("cancelled")
    assert _macro('return "" + roiManager("count") + " " + Overlay.size + " " + '
                  'isOpen("Gold Digger Results");') == "0 0 0"
    assert "cancelled" in str(IJ.getLog())
    assert set(tmp.glob("golddigger*")) == before


def test_preview_follows_the_threshold_and_cancel_leaves_nothing(ij):
    """Detect Gold's dialog from the menu: ticking Preview shows the particles of the dialog's
    threshold in the overlay (the maps computed once), a higher threshold shows fewer, and
    Cancel puts the overlay back and adds nothing."""
    from java.awt.event import ActionEvent, ItemEvent, TextEvent

    from golddigger.imagej import convert

    r = _synth((400, 420), {6: 10, 12: 4}, seed=27)
    imp = convert.array_to_imageplus("preview.tif", r.image, PX)
    imp.show()
    ij.session.dialogs = True
    try:
        dialog = _click_detect_gold(ij)
        boxes = dialog.getCheckboxes()
        preview = boxes.get(boxes.size() - 1)
        assert str(preview.getLabel()) == "Preview"
        preview.setState(True)
        dialog.itemStateChanged(ItemEvent(preview, ItemEvent.ITEM_STATE_CHANGED, preview,
                                          ItemEvent.SELECTED))

        def overlay_size():
            ov = imp.getOverlay()
            return 0 if ov is None else int(ov.size())

        for _ in range(1200):
            if overlay_size() > 0:
                break
            time.sleep(0.05)
        n_model = overlay_size()
        whole = ij.detector.predict(r.image, pixel_size_nm=PX, sizing="maps")
        assert n_model > 0 and abs(n_model - len(whole)) <= max(2, 0.1 * len(whole))
        field = dialog.getNumericFields().get(0)  # threshold
        field.setText("0.95")
        dialog.textValueChanged(TextEvent(field, TextEvent.TEXT_VALUE_CHANGED))
        time.sleep(0.5)
        high = ij.detector.predict(r.image, pixel_size_nm=PX, sizing="maps", threshold=0.95)
        assert overlay_size() < n_model and abs(overlay_size() - len(high)) <= 2
        cancel = dialog.getButtons()[1]
        dialog.actionPerformed(ActionEvent(cancel, ActionEvent.ACTION_PERFORMED, "Cancel"))
        for _ in range(100):
            if not dialog.isVisible():
                break
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        ij.session.dialogs = False
    assert overlay_size() == 0, "the preview must not stay on the image"
    assert _macro('return "" + roiManager("count");') == "0"


def _click_detect_gold(ij):
    """Click Plugins > Gold Digger > Detect Gold and return its dialog once it is shown."""
    from ij import Menus
    from ij.gui import GenericDialog
    from java.awt import Window
    from java.awt.event import ActionEvent

    item = _menu_item(Menus.getMenuBar(), ["Plugins", "Gold Digger", "Detect Gold"])
    assert item is not None, "Plugins > Gold Digger > Detect Gold is missing"
    ij.window.actionPerformed(ActionEvent(item, ActionEvent.ACTION_PERFORMED, "Detect Gold"))
    for _ in range(200):
        dialog = next((w for w in Window.getWindows() if isinstance(w, GenericDialog)
                       and w.isVisible()), None)
        if dialog is not None:
            return dialog
        time.sleep(0.05)
    raise AssertionError("Detect Gold's dialog did not open")


def _menu_item(bar, path):
    from java.awt import Menu

    items = [bar.getMenu(i) for i in range(bar.getMenuCount())]
    for label in path:
        match = next((m for m in items if str(m.getLabel()) == label), None)
        if match is None:
            return None
        if label == path[-1]:
            return match
        items = [match.getItem(i) for i in range(match.getItemCount())] if isinstance(
            match, Menu) else []
    return None


def test_add_to_training_set_round_trips(ij, tmp_path):
    """Detections corrected by the user (one deleted, one point added) become a training
    pair that golddigger train reads back with the same points and classes."""
    from golddigger.imagej import convert

    r = _synth((420, 440), {6: 10, 12: 4}, seed=5)
    convert.array_to_imageplus("to train.tif", r.image, PX).show()
    folder = tmp_path / "training set"
    _macro('run("Detect Gold", "region=image"); roiManager("select", 0); '
           'roiManager("delete"); makePoint(123, 234); roiManager("add"); run("Select None");'
           f'run("Add to Training Set", "folder=[{folder}] default_class=12");')
    rois, _ = _manager_rois(tmp_path)
    pair = read_particles(folder / "to_train.csv")
    assert ParticleTable.from_csv(folder / "to_train.csv") == pair
    dets = [r for r in rois if r.name.startswith("gold-")]
    assert len(pair) == len(dets) + 1
    added = pair[(np.abs(pair.x - 123) < 0.01) & (np.abs(pair.y - 234) < 0.01)]
    assert len(added) == 1 and added.diameter_nm[0] == 12.0
    img = read_image(folder / "to_train.tif")
    assert np.array_equal(img.data, r.image) and img.pixel_size_nm == pytest.approx(PX)


def test_analyze_gold_distribution(ij):
    from ij.measure import ResultsTable

    from golddigger.imagej import convert

    r = _synth((500, 520), {6: 20, 12: 6}, seed=8)
    convert.array_to_imageplus("analyse me.tif", r.image, PX).show()
    xs = ",".join(f"{x},{y}" for x, y in POLYGON)
    _macro(f'makePolygon({xs}); run("Detect Gold", ""); '
           'run("Analyze Gold Distribution", "simulations=9");')
    assert ij.session.history[-1]["command"] == "Analyze Gold Distribution"
    summary = ResultsTable.getResultsTable("Gold Digger Analysis")
    assert summary is not None
    classes = [str(summary.getStringValue("class", i)) for i in range(summary.size())]
    assert "all" in classes
    n_all = summary.getValue("n", classes.index("all"))
    assert n_all == ResultsTable.getResultsTable("Gold Digger Results").size()
    assert ResultsTable.getResultsTable("Gold Digger Randomness") is not None


def test_example_macros(ij, tmp_path):
    """fiji-scripts/examples: a folder of images and a 3-slice stack, each with its membrane
    outline beside it (Python-hosted here; the same macros run in plain ImageJ)."""
    from ij import IJ

    examples = REPO / "fiji-scripts" / "examples"
    folder = tmp_path / "my images"
    folder.mkdir()
    imgs = {"a": _synth((380, 400), {6: 8, 12: 3}, seed=31),
            "b": _synth((380, 400), {6: 5, 12: 2}, seed=32)}
    for stem, r in imgs.items():
        write_tiff(folder / f"{stem}.tif", r.image, PX)
    outline = ImagejRoi.frompoints(np.array([(20, 20), (360, 30), (370, 350), (30, 340)],
                                            dtype=np.int32))
    outline.roitype = ROI_TYPE.POLYGON
    outline.tofile(folder / "a_region.roi")
    IJ.runMacroFile(str(examples / "batch_folder.ijm"), str(folder) + os.sep)
    out = folder / "gold"
    mask = read_region(folder / "a_region.roi").to_mask((380, 400))
    for stem, r in imgs.items():
        found = read_particles(out / f"{stem}_RoiSet.zip", PX)
        region = Region.from_mask(mask) if stem == "a" else None
        _same_particles(found, ij.detector.predict(r.image, pixel_size_nm=PX, region=region))
        assert len((out / f"{stem}_results.csv").read_text().splitlines()) == len(found) + 1
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and "density_per_um2" in summary[0]

    planes = [_synth((300, 320), {6: 4, 12: 2}, seed=s).image for s in (41, 42, 43)]
    write_tiff(tmp_path / "st.tif", np.stack(planes), PX)
    # (a ROI file larger than the image would open as a new image of its own)
    outline = ImagejRoi.frompoints(np.array([(10, 10), (300, 20), (310, 280), (20, 290)],
                                            dtype=np.int32))
    outline.roitype = ROI_TYPE.POLYGON
    outline.tofile(tmp_path / "st_region.roi")
    IJ.runMacroFile(str(examples / "batch_stack.ijm"), str(tmp_path / "st.tif"))
    found = read_particles(tmp_path / "st_RoiSet.zip", PX)
    assert set(found.slice) <= {0, 1, 2} and len(found) > 0
    mask = read_region(tmp_path / "st_region.roi").to_mask((300, 320))
    assert _inside(mask, found.x, found.y).all()
    summary = (tmp_path / "st_summary.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in summary[1:]] == ["1", "2", "3"]


def test_image_types_and_calibration(ij):
    from ij import IJ

    from golddigger.imagej import convert

    rng = np.random.default_rng(0)
    for data in (rng.integers(0, 255, (30, 40), dtype=np.uint8),
                 rng.integers(0, 65535, (30, 40), dtype=np.uint16),
                 rng.random((30, 40), dtype=np.float32),
                 rng.integers(0, 255, (3, 30, 40), dtype=np.uint8)):
        imp = convert.array_to_imageplus("t", data, 1.5)
        assert np.array_equal(convert.imageplus_to_array(imp), data)
        assert convert.pixel_size_nm(imp) == pytest.approx(1.5)
    rgb = IJ.createImage("rgb", "RGB white", 20, 10, 1)
    rgb.getProcessor().setColor(java_color(255, 0, 0))
    rgb.getProcessor().fill()
    assert np.all(convert.imageplus_to_array(rgb) == round(0.299 * 255))
    imp = convert.array_to_imageplus("cal", np.zeros((5, 5), np.uint8))
    assert convert.pixel_size_nm(imp) is None
    cal = imp.getCalibration()
    for unit, width, nm in (("micron", 0.0005587, PX), ("\u00b5m", 0.001, 1.0),
                            ("um", 0.002, 2.0), ("nm", 0.9, 0.9), ("pixel", 1.0, None)):
        cal.setUnit(unit)
        cal.pixelWidth = cal.pixelHeight = width
        got = convert.pixel_size_nm(imp)
        assert (got is None) if nm is None else got == pytest.approx(nm), unit


def java_color(r, g, b):
    from java.awt import Color

    return Color(r, g, b)


def test_roi_regions_equal_the_rois_module(ij, tmp_path):
    """Every kind of area ROI: ImageJ's own fill (Python-hosted path) and
    golddigger.io.rois.read_region of the saved .roi (installed path) give the same pixels."""
    from ij.gui import OvalRoi, PolygonRoi, Roi, ShapeRoi
    from ij.io import RoiEncoder

    from golddigger.imagej import convert

    w, h = 120, 90
    ring = ShapeRoi(Roi(10, 10, 80, 60)).xor(ShapeRoi(OvalRoi(30.5, 25.2, 30, 20)))
    rois = {
        "rectangle": Roi(5.5, 7.25, 50.3, 30.6),
        "oval": OvalRoi(20.3, 10.7, 61.1, 45.4),
        "polygon": PolygonRoi([3.2, 100.7, 60.1, 20.4], [4.6, 10.3, 80.9, 70.2], 4,
                              Roi.POLYGON),
        "freehand": PolygonRoi([10, 50, 90, 70, 30], [10, 5, 40, 85, 60], 5, Roi.FREEROI),
        "composite": ring,
    }
    for kind, roi in rois.items():
        mine = convert.rois_to_region([roi], w, h).mask
        path = tmp_path / f"{kind}.roi"
        RoiEncoder.save(roi, str(path))
        theirs = read_region(path).to_mask((h, w))
        assert mine.any(), kind
        assert np.array_equal(mine, theirs), f"{kind}: {np.sum(mine != theirs)} pixels differ"
    assert convert.rois_to_region([PolygonRoi([1.0, 5.0], [1.0, 5.0], 2, Roi.POLYLINE)], w,
                                  h) is None


def test_published_rois_equal_write_roiset(ij, tmp_path):
    """The ROIs the Python-hosted path makes are those golddigger.io.rois writes (what the
    installed path loads): names, shapes, positions, colours, groups, properties."""
    from ij.plugin.frame import RoiManager

    from golddigger.imagej import publish

    t = ParticleTable([10.0, 20.5, 30.25], [40.0, 50.5, 60.75], [6, 12, 18], [0.9, 0.8, 0.7],
                      [0, 1, 2])
    rm = RoiManager.getRoiManager()
    for shape in ("oval", "point"):
        rm.reset()
        publish.add_to_manager(publish.particle_rois(t, PX, shape, positions=True))
        mine, _ = _manager_rois(tmp_path, f"mine_{shape}.zip")
        write_roiset(tmp_path / f"theirs_{shape}.zip", t, PX, shape=shape, positions=True)
        with zipfile.ZipFile(tmp_path / f"theirs_{shape}.zip") as zf:
            theirs = [ImagejRoi.frombytes(zf.read(n)) for n in zf.namelist()]
        for a, b in zip(mine, theirs, strict=True):
            assert (a.name, a.roitype, a.position, a.group) == (b.name, b.roitype, b.position,
                                                                b.group)
            assert a.stroke_color == b.stroke_color
            if shape == "oval":  # 2 screen pixels wide at every zoom, both ways
                # (a point's stroke_width field is its marker size: ImageJ's own)
                assert a.stroke_width == b.stroke_width == 2
                assert not a.options & ROI_OPTIONS.SCALE_STROKE_WIDTH
                assert not b.options & ROI_OPTIONS.SCALE_STROKE_WIDTH
            assert a.properties == b.properties
            assert np.allclose(a.coordinates(), b.coordinates(), atol=1e-3)
        a = read_particles(tmp_path / f"mine_{shape}.zip", PX)
        b = read_particles(tmp_path / f"theirs_{shape}.zip", PX)
        assert np.allclose(a.xy, b.xy, atol=1e-4) and np.allclose(a.xy, t.xy, atol=1e-4)
        assert np.array_equal(a.diameter_nm, b.diameter_nm) and np.array_equal(a.slice, t.slice)
    # ImageJ reads the RoiSet's ovals back with the stroke that does not scale with zoom
    rm.reset()
    rm.runCommand("Open", str(tmp_path / "theirs_oval.zip"))
    roi = rm.getRoi(0)
    assert (float(roi.getStrokeWidth()), bool(roi.getScaleStrokeWidth())) == (2.0, False)


def test_menu_order_about_and_result_windows(ij):
    """Python-hosted: Plugins > Gold Digger with Detect Gold first and About last; About
    from a macro writes the version, model and citation to the Log and from the menu shows
    them in a window; Detect Gold's result windows open beside the image, apart."""
    from ij import IJ, Menus, WindowManager
    from ij.plugin.frame import RoiManager
    from java.awt import Container, Dialog, Menu, Toolkit, Window
    from java.awt.event import ActionEvent
    from javax.swing.text import JTextComponent

    from golddigger import __version__
    from golddigger.imagej import convert

    sub = _menu_item(Menus.getMenuBar(), ["Plugins", "Gold Digger"])
    assert isinstance(sub, Menu)
    labels = [str(sub.getItem(i).getLabel()) for i in range(sub.getItemCount())]
    assert labels == ["Detect Gold", "Detect Gold in Folder", "-", "Add to Training Set",
                      "Analyze Gold Distribution", "-", "About Gold Digger"]
    _macro('run("About Gold Digger");')
    log = str(IJ.getLog())
    assert f"Gold Digger {__version__}" in log and "Jerez" in log and "fril-gold" in log
    ij.session.dialogs = True
    try:
        item = _menu_item(Menus.getMenuBar(), ["Plugins", "Gold Digger", "About Gold Digger"])
        ij.window.actionPerformed(ActionEvent(item, ActionEvent.ACTION_PERFORMED,
                                              "About Gold Digger"))
        about = None
        for _ in range(200):
            about = next((w for w in Window.getWindows() if isinstance(w, Dialog)
                          and w.isVisible() and "About" in str(w.getTitle())), None)
            if about is not None:
                break
            time.sleep(0.05)
        assert about is not None, "About Gold Digger showed no window"
        texts = []

        def walk(c):
            if isinstance(c, JTextComponent):
                texts.append(str(c.getText()))
            if isinstance(c, Container):
                for k in c.getComponents():
                    walk(k)

        walk(about)
        about.dispose()
    finally:
        ij.session.dialogs = False
    assert "Jerez" in " ".join(texts) and __version__ in " ".join(texts)

    r = _synth((400, 420), {6: 8, 12: 3}, seed=31)
    imp = convert.array_to_imageplus("layout.tif", r.image, PX)
    imp.show()
    _macro('run("Detect Gold", "region=image");')
    screen = Toolkit.getDefaultToolkit().getScreenSize()
    boxes = {"image": imp.getWindow(), "manager": RoiManager.getInstance(),
             "results": WindowManager.getWindow("Gold Digger Results"),
             "summary": WindowManager.getWindow("Gold Digger Summary")}
    assert all(w is not None for w in boxes.values()), boxes
    boxes = {k: (int(w.getX()), int(w.getY()), int(w.getWidth()), int(w.getHeight()))
             for k, w in boxes.items()}
    for name, (x, y, w, h) in boxes.items():
        assert 0 <= x and x + w <= screen.width and 0 <= y and y + h <= screen.height, name
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(boxes[a], boxes[b]), (a, boxes[a], b, boxes[b])


def test_screenshot(ij, tmp_path):
    """ImageJ with a micrograph, its membrane outline and the detections in the ROI Manager
    (GOLDDIGGER_UPDATE_SCREENSHOT=1 writes docs/imagej_screenshot.png)."""
    if shutil.which("import") is None:
        pytest.skip("imagemagick's import is not installed")
    from ij import WindowManager
    from ij.plugin.frame import RoiManager

    from golddigger.imagej import convert

    r = _synth((600, 640), {6: 24, 12: 10, 18: 4}, seed=3)
    imp = convert.array_to_imageplus("synapse 1.tif", r.image)
    cal = imp.getCalibration()  # in microns, as EM images usually are
    cal.setUnit("micron")
    cal.pixelWidth = cal.pixelHeight = PX / 1000
    imp.show()
    xs = ",".join(f"{x},{y}" for x, y in POLYGON)
    _macro(f'makePolygon({xs}); run("Detect Gold", "");')

    win, rm = imp.getWindow(), RoiManager.getInstance()
    ij.window.setLocation(0, 0)
    win.setLocation(0, 100)
    rm.setLocation(665, 100)
    rm.setSize(300, 330)
    for title, (x, y, w, h) in {"Gold Digger Results": (665, 440, 610, 230),
                                "Gold Digger Summary": (665, 680, 610, 120)}.items():
        table = WindowManager.getWindow(title)
        if table is not None:
            table.setLocation(x, y)
            table.setSize(w, h)
    imp.getWindow().toFront()
    time.sleep(1.5)
    shot = tmp_path / "imagej_screenshot.png"
    subprocess.run(["import", "-window", "root", "-crop", "1280x810+0+0", str(shot)],
                   check=True, timeout=30, env={**os.environ})
    from PIL import Image

    with Image.open(shot) as im:
        a = np.asarray(im.convert("L"))
    assert a.shape == (810, 1280) and a.std() > 20
    if os.environ.get("GOLDDIGGER_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, REPO / "docs" / "imagej_screenshot.png")


CLI_MACRO = r"""
out = getArgument();
t0 = getTime();
makePolygon(@POLYGON@);
run("Detect Gold", "");
t1 = getTime();
run("Detect Gold", "region=image rerun=add");
t2 = getTime();
roiManager("Deselect");
roiManager("Save", out + "cli_rois.zip");
File.saveString("READY=" + d2s(t0, 0) + " FIRST_MS=" + (t1 - t0) + " LATER_MS=" + (t2 - t1)
	+ " N=" + roiManager("count") + " TITLE=" + replace(getTitle(), " ", "_") + "\n",
	out + "cli.txt");
"""


def test_golddigger_imagej_command(xvfb, detector, tmp_path):
    """``golddigger imagej --batch --macro M IMAGE`` in a fresh process, with an ImageJ
    folder where the commands are not installed (the menu items are added at start-up)."""
    golddigger = Path(sys.executable).with_name("golddigger")
    if not golddigger.exists():
        pytest.skip("the golddigger script is not installed beside this Python")
    r = _synth()
    write_tiff(tmp_path / "synapse 1.tif", r.image, PX)
    (tmp_path / "bare ij" / "plugins").mkdir(parents=True)
    macro = tmp_path / "m.ijm"
    macro.write_text(CLI_MACRO.replace("@POLYGON@", ",".join(f"{x},{y}" for x, y in POLYGON)))
    t0 = time.time()
    proc = subprocess.run([str(golddigger), "imagej", "--ij-dir", str(tmp_path / "bare ij"),
                           "--batch", "--macro", str(macro), "--macro-arg",
                           str(tmp_path) + os.sep, str(tmp_path / "synapse 1.tif")],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "DISPLAY": xvfb})
    assert proc.returncode == 0, proc.stderr
    values = dict(tok.split("=", 1) for tok in (tmp_path / "cli.txt").read_text().split())
    ready_s = float(values["READY"]) / 1000 - t0
    print(f"golddigger imagej: ready {ready_s:.1f} s after launch; first Detect Gold (with "
          f"model load) {values['FIRST_MS']} ms, later {values['LATER_MS']} ms",
          file=sys.stderr)
    assert values["TITLE"] == "synapse_1.tif"
    found = read_particles(tmp_path / "cli_rois.zip", PX)
    assert int(values["N"]) == len(found)
    mask = _polygon_mask(r.image.shape)
    assert all(n.startswith("gold-") for n in _roi_names(tmp_path / "cli_rois.zip"))
    whole = detector.predict(r.image, pixel_size_nm=PX)
    inside = detector.predict(r.image, pixel_size_nm=PX, region=Region.from_mask(mask))
    assert len(found) == len(inside) + len(whole)


def _roi_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [ImagejRoi.frombytes(zf.read(n)).name for n in zf.namelist()]


# ---------------------------------------------------------------------------- installed
BATCH_MACRO = r"""
// Gold Digger's installed commands in plain ImageJ 1, as a user's batch macro runs them.
out = getArgument();
// In batch mode each macro has its own hidden ROI Manager unless the window is open.
setBatchMode(false); run("ROI Manager..."); setBatchMode(true);
weird = out + "in" + fromCharCode(252) + " 'q' \"dq\"; $(touch pwned) dir" + File.separator;

open(out + "synapse 1.tif");
makePolygon(@POLYGON@);
t = getTime();
run("Detect Gold", "");
print("DETECT_MS=" + (getTime() - t));
print("N_ROIS=" + roiManager("count") + " N_RESULTS=" + Table.size("Gold Digger Results")
	+ " SEL=" + selectionType());
Table.save(out + "results.csv", "Gold Digger Results");
run("Detect Gold", "");
print("N_RERUN=" + roiManager("count") + " T_RERUN=" + Table.size("Gold Digger Results")
	+ " S_RERUN=" + Table.size("Gold Digger Summary") + " SEL_RERUN=" + selectionType());
run("Detect Gold", "rerun=add add_to=both");
print("N_ADD=" + roiManager("count") + " OV_ADD=" + Overlay.size);
run("Detect Gold", "");
print("N_BACK=" + roiManager("count") + " OV_BACK=" + Overlay.size);
roiManager("Deselect");
roiManager("Save", out + "image_rois.zip");
roiManager("Reset");
close("*");

open(out + "stack.tif");
setSlice(2);
run("Detect Gold", "whole_stack");
print("STACK_ROIS=" + roiManager("count"));
roiManager("Deselect");
roiManager("Save", out + "stack_rois.zip");
roiManager("Reset");
close("*");

open(out + "synapse 1.tif");
run("Detect Gold", "region=image threshold=0.3");
roiManager("select", 0);
roiManager("delete");
makePoint(123, 234);
roiManager("add");
run("Select None");
run("Add to Training Set", "folder=[" + weird + "train] default_class=12 name=[trained]");
roiManager("Deselect");
roiManager("Save", out + "train_rois.zip");
t = getTime();
run("Analyze Gold Distribution", "simulations=9 region=hull");
print("ANALYZE_MS=" + (getTime() - t));
print("ANALYSIS_ROWS=" + Table.size("Gold Digger Analysis"));
close("*");
roiManager("Reset");

t = getTime();
run("Detect Gold in Folder", "input=[" + weird + "] output=[" + out + "folder results]");
print("FOLDER_MS=" + (getTime() - t));
print("SUMMARY_ROWS=" + Table.size("Gold Digger Summary"));
open(out + "synapse 1.tif");
makeLine(10, 10, 200, 150);
n = roiManager("count");
run("Detect Gold", "");
print("LINE_ADDED=" + (roiManager("count") - n));
print("DONE");
run("Quit");
"""


def test_installed_commands_in_plain_imagej(xvfb, detector, ij_dir, tmp_path):
    """``golddigger install-fiji`` into an ImageJ folder, then ImageJ 1 started by its own
    launcher line (``java -jar ij.jar -batch``): a batch macro runs the commands on an
    image and a 3-slice stack, with file names full of spaces, quotes, semicolons and
    non-ASCII letters."""
    r = _synth()
    write_tiff(tmp_path / "synapse 1.tif", r.image, PX)
    planes = [_synth((400, 420), {6: 6, 12: 3}, seed=s).image for s in (11, 12, 13)]
    write_tiff(tmp_path / "stack.tif", np.stack(planes), PX)
    weird = tmp_path / "in\u00fc 'q' \"dq\"; $(touch pwned) dir"
    weird.mkdir()
    shutil.copyfile(tmp_path / "synapse 1.tif", weird / "synapse 1.tif")
    shutil.copyfile(tmp_path / "stack.tif", weird / "stack.tif")
    region = ImagejRoi.frompoints(np.array(POLYGON, dtype=np.int32))
    region.roitype = ROI_TYPE.POLYGON
    region.tofile(weird / "synapse 1_region.roi")

    macro = tmp_path / "batch.ijm"
    macro.write_text(BATCH_MACRO.replace("@POLYGON@", ",".join(f"{x},{y}" for x, y in POLYGON)),
                     encoding="ascii")
    cmd = [shutil.which("java"), f"-Dplugins.dir={ij_dir}", "-jar", str(IJ_JAR), "-ijpath",
           str(ij_dir), "-batch", str(macro), str(tmp_path) + os.sep]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                              env={**os.environ, "DISPLAY": xvfb}, cwd=tmp_path)
    except subprocess.TimeoutExpired as err:
        shot = tmp_path / "timeout.png"
        subprocess.run(["import", "-window", "root", str(shot)], env={**os.environ,
                                                                      "DISPLAY": xvfb})
        pytest.fail(f"ImageJ did not finish in {TIMEOUT} s (a dialog? see {shot}): "
                    f"{err.stdout}")
    seconds = time.perf_counter() - t0
    out = proc.stdout
    print(out, proc.stderr, file=sys.stderr)
    assert "DONE" in out, out + proc.stderr
    values = dict(tok.split("=", 1) for line in out.splitlines() for tok in line.split()
                  if "=" in tok and tok.split("=", 1)[0].isupper())
    print(f"installed path: {seconds:.1f} s in all; detect {values['DETECT_MS']} ms, "
          f"analyze {values['ANALYZE_MS']} ms, folder {values['FOLDER_MS']} ms",
          file=sys.stderr)

    # the image: the same particles as the Python-hosted path and Detector.predict find
    found = read_particles(tmp_path / "image_rois.zip", PX)
    assert int(values["N_ROIS"]) == int(values["N_RESULTS"]) == len(found) > 0
    # a rerun replaces (ROI Manager, tables; the selection stays), add keeps, overlay/both
    n = len(found)
    assert int(values["N_RERUN"]) == int(values["T_RERUN"]) == n
    assert values["S_RERUN"] == "1" and values["SEL_RERUN"] == "2"
    assert (int(values["N_ADD"]), int(values["OV_ADD"])) == (2 * n, n)
    assert (int(values["N_BACK"]), int(values["OV_BACK"])) == (n, 0)
    assert values["LINE_ADDED"] == "0" and "counts inside an area selection" in out
    assert values["SEL"] == "2"
    mask = _polygon_mask(r.image.shape)
    direct = detector.predict(r.image, pixel_size_nm=PX, region=Region.from_mask(mask))
    _same_particles(found, direct)
    results = (tmp_path / "results.csv").read_text().splitlines()
    assert len(results) == len(found) + 1 and "X_px" in results[0]

    # the stack: every slice, with positions
    stack = read_particles(tmp_path / "stack_rois.zip", PX)
    assert set(stack.slice) == {0, 1, 2} and int(values["STACK_ROIS"]) == len(stack)
    with zipfile.ZipFile(tmp_path / "stack_rois.zip") as zf:
        positions = {ImagejRoi.frombytes(zf.read(n)).position for n in zf.namelist()}
    assert positions == {1, 2, 3}

    # the training pair, in a folder whose name is full of shell syntax
    pair_csv = weird / "train" / "trained.csv"
    pair = read_particles(pair_csv)
    assert pair == ParticleTable.from_csv(pair_csv)
    added = pair[(np.abs(pair.x - 123) < 0.01) & (np.abs(pair.y - 234) < 0.01)]
    assert len(added) == 1 and added.diameter_nm[0] == 12.0
    with zipfile.ZipFile(tmp_path / "train_rois.zip") as zf:
        n_manager = len(zf.namelist())
    assert len(pair) == n_manager
    assert read_image(weird / "train" / "trained.tif").pixel_size_nm == pytest.approx(PX)
    assert int(values["ANALYSIS_ROWS"]) >= 2

    # the folder: per-image outputs, the membrane ROI beside synapse 1 used
    res = tmp_path / "folder results"
    for stem in ("synapse 1", "stack"):
        for suffix in (".csv", "_RoiSet.zip", "_summary.csv"):
            assert (res / f"{stem}{suffix}").is_file(), stem + suffix
    in_folder = ParticleTable.from_csv(res / "synapse 1.csv")
    assert len(in_folder) == len(found)
    assert set(ParticleTable.from_csv(res / "stack.csv").slice) == {0, 1, 2}
    summary = (res / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 1 + 3
    assert [row.split(",")[2] for row in summary[1:]] == ["image"] * 3 + [
        "synapse 1_region.roi"]
    assert int(values["SUMMARY_ROWS"]) == 4
    # no command injection anywhere
    assert not list(tmp_path.rglob("pwned")) and not (ij_dir / "pwned").exists()


def test_debian_launcher_and_the_overlay_fallback(xvfb, detector, tmp_path):
    """Debian's own launcher (/usr/bin/imagej, by full path: pyimagej's `imagej` command
    hides it in the venv) with the commands installed into ~/.imagej (made if missing). Its
    -b runs the macro in batch mode without a ROI Manager window: Detect Gold then puts the
    particles in the image's overlay."""
    launcher = Path("/usr/bin/imagej")
    golddigger = Path(sys.executable).with_name("golddigger")
    if not launcher.is_file() or not golddigger.exists():
        pytest.skip("no /usr/bin/imagej (Debian's imagej package) or golddigger script")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "DISPLAY": xvfb}
    subprocess.run([str(golddigger), "install-fiji", str(home / ".imagej")], env=env,
                   check=True, capture_output=True, timeout=60)
    planes = [_synth((300, 320), {6: 4, 12: 2}, seed=s).image for s in (51, 52)]
    write_tiff(tmp_path / "st.tif", np.stack(planes), PX)
    macro = tmp_path / "m.ijm"
    macro.write_text(f'open("{tmp_path / "st.tif"}"); run("Detect Gold", "whole_stack");'
                     f'File.saveString("" + roiManager("count") + " " + Overlay.size,'
                     f' "{tmp_path / "out.txt"}"); run("Quit");')
    subprocess.run([str(launcher), "-b", str(macro)], env=env, capture_output=True,
                   timeout=TIMEOUT, cwd=tmp_path)
    n_manager, n_overlay = (int(v) for v in (tmp_path / "out.txt").read_text().split())
    expected = detector.predict(np.stack(planes), pixel_size_nm=PX)
    assert n_manager == 0 and n_overlay == len(expected) > 0


# ---------------------------------------------------------------------------- documented
def documented_commands() -> list[str]:
    """The shell lines between ``<!-- tested-commands -->`` markers of docs/imagej.md."""
    text = (REPO / "docs" / "imagej.md").read_text(encoding="utf-8")
    start, end = "<!-- tested-commands -->", "<!-- /tested-commands -->"
    assert start in text and end in text, "docs/imagej.md lost its tested-commands block"
    block = text[text.index(start) + len(start):text.index(end)]
    return [line.strip() for line in block.splitlines()
            if line.strip() and not line.strip().startswith(("```", "#"))]


def _docs_sandbox(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the repository's example folders, a fresh HOME, and this environment's
    golddigger first on the PATH: where the documented lines run."""
    golddigger = Path(sys.executable).with_name("golddigger")
    if not golddigger.exists() or shutil.which("xvfb-run") is None:
        pytest.skip("no golddigger script beside this Python, or no xvfb-run")
    work = tmp_path / "repo"
    shutil.copytree(REPO / "fiji-scripts", work / "fiji-scripts")
    shutil.copytree(REPO / "examples", work / "examples")
    (tmp_path / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1",
           "PATH": f"{golddigger.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("DISPLAY", None)  # xvfb-run brings its own display
    return work, env


def _run_documented(line: str, work: Path, env: dict, timeout: int = TIMEOUT):
    try:
        return subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"documented command did not finish in {timeout} s (a hidden dialog?):"
                    f"\n{line}\n{err.stdout}\n{err.stderr}")


def test_documented_batch_commands_run_verbatim(detector, tmp_path):
    """Each command line of docs/imagej.md's tested block, exactly as written, from a copy of
    the repository's folders with a fresh HOME: each finishes in time and writes what the
    docs say; the same java line without -ijpath stops at once with a message."""
    work, env = _docs_sandbox(tmp_path)
    lines = documented_commands()
    assert any("install-fiji ~/.imagej" in ln for ln in lines)
    assert any(ln.startswith("xvfb-run -a java -jar") and "-ijpath ~/.imagej" in ln
               for ln in lines)
    assert any("/usr/bin/imagej -b" in ln for ln in lines)
    assert any("golddigger imagej --batch" in ln for ln in lines)
    ex = work / "examples"
    for line in lines:
        if "/usr/bin/imagej" in line and not Path("/usr/bin/imagej").is_file():
            continue
        t0 = time.perf_counter()
        proc = _run_documented(line, work, env)
        print(f"{time.perf_counter() - t0:5.1f} s  {line}", file=sys.stderr)
        # Debian's launcher exits 1 after any run (its lock-file clean-up)
        if "/usr/bin/imagej" not in line:
            assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
        assert "Unrecognized command" not in proc.stdout + proc.stderr
        if "install-fiji" in line:
            assert (tmp_path / "home" / ".imagej" / "plugins" / "Gold Digger"
                    / "detect-gold.txt").is_file()
        elif "batch_folder" in line:
            found = read_particles(ex / "gold" / "synthetic_fril_RoiSet.zip", PX)
            assert len(found) > 0 and (ex / "gold" / "summary.csv").is_file()
        elif "batch_stack" in line:
            assert (ex / "synthetic_fril_RoiSet.zip").is_file(), proc.stdout + proc.stderr
            assert (ex / "synthetic_fril_summary.csv").is_file()
        elif "folder_command" in line:
            assert (ex / "golddigger" / "summary.csv").is_file(), proc.stdout + proc.stderr
    # the same ImageJ line without the plugins folder: a message, at once, no dialog
    java = next(ln for ln in lines if ln.startswith("xvfb-run -a java -jar"))
    bare = java.replace(" -ijpath ~/.imagej", "")
    t0 = time.perf_counter()
    proc = _run_documented(bare, work, env, timeout=60)
    assert time.perf_counter() - t0 < 60
    assert "ImageJ has no Plugins > Gold Digger > Detect Gold" in proc.stdout, proc.stdout


def test_installed_commands_stop_with_a_message_when_the_program_is_gone(xvfb, tmp_path):
    """Commands installed for a golddigger program that no longer exists: a -batch run
    prints why and ends (no hidden dialog; the calling macro goes on, and each later call
    says the same)."""
    from golddigger.imagej.install import install

    d = tmp_path / "ij"
    (d / "plugins").mkdir(parents=True)
    install(d, argv=[str(tmp_path / "gone" / "bin" / "golddigger")])
    write_tiff(tmp_path / "a.tif", _synth((200, 220), {6: 3}, seed=2).image, PX)
    macro = tmp_path / "m.ijm"
    macro.write_text(f'open("{tmp_path / "a.tif"}"); run("Detect Gold", ""); print("AFTER");')
    proc = subprocess.run([shutil.which("java"), "-jar", str(IJ_JAR), "-ijpath", str(d),
                           "-batch", str(macro)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DISPLAY": xvfb})
    assert "the Python program behind Plugins > Gold Digger is missing" in proc.stdout
    assert "AFTER" in proc.stdout  # ended, rather than waiting on a dialog


# ---------------------------------------------------------------------------- recorder
RECORD_SCRIPT = r'''
"""Plain ImageJ (no Python listener: the installed .ijm runs), a menu click on
Plugins > Gold Digger > Detect Gold with the recorder on, OK in its dialog; then the
recorded macro replayed on the same image. Prints RECORDED, the ROIs of both runs."""
import sys, time
import jpype, jpype.imports
jpype.startJVM(f"-Dplugins.dir={sys.argv[1]}", classpath=[sys.argv[3]])
from ij import IJ, ImageJ, Menus
from ij.gui import GenericDialog
from ij.plugin.frame import Recorder, RoiManager
from java.awt import Window
from java.awt.event import ActionEvent
from java.lang import System

def wait(cond, seconds=120.0):
    t = time.time()
    while time.time() - t < seconds:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    return None

def rois():
    rm = RoiManager.getInstance()
    out = []
    for i in range(rm.getCount() if rm is not None else 0):
        b = rm.getRoi(i).getFloatBounds()
        out.append(f"{rm.getName(i)}:{b.x:.2f}:{b.y:.2f}")
    return sorted(out)

ij = ImageJ()
imp = IJ.openImage(sys.argv[2])
imp.show()
IJ.runMacro("makeRectangle(40, 40, 500, 500);")
IJ.run("Record...")
wait(lambda: Recorder.getInstance() is not None and Recorder.record)
item = Menus.getCommands().get("Detect Gold")
bar = Menus.getMenuBar()
plugins = next(bar.getMenu(i) for i in range(bar.getMenuCount())
               if str(bar.getMenu(i).getLabel()) == "Plugins")
sub = next(plugins.getItem(i) for i in range(plugins.getItemCount())
           if str(plugins.getItem(i).getLabel()) == "Gold Digger")
item = next(sub.getItem(i) for i in range(sub.getItemCount())
            if str(sub.getItem(i).getLabel()) == "Detect Gold")
ij.actionPerformed(ActionEvent(item, ActionEvent.ACTION_PERFORMED, "Detect Gold"))
dialog = wait(lambda: next((w for w in Window.getWindows() if isinstance(w, GenericDialog)
                            and w.isVisible()), None), 60)
dialog.actionPerformed(ActionEvent(dialog.getButtons()[0], ActionEvent.ACTION_PERFORMED, "OK"))
wait(lambda: RoiManager.getInstance() is not None and RoiManager.getInstance().getCount())
time.sleep(2.0)  # the command's last steps (tables, status line)
first = rois()
recorded = str(Recorder.getInstance().getText())
Recorder.getInstance().close()
RoiManager.getInstance().reset()
IJ.runMacro(recorded)
second = rois()
print("RECORDED<<" + recorded.strip().replace("\n", "\\n") + ">>")
print("FIRST", " ".join(first))
print("SECOND", " ".join(second))
sys.stdout.flush()
System.exit(0)
'''


def test_installed_command_records_only_user_options_and_replays(xvfb, detector, ij_dir,
                                                                 tmp_path):
    """A menu click on the installed Detect Gold (plain ImageJ, the .ijm runs) with the
    recorder on: the recorded macro holds one run("Detect Gold", ...) line with the dialog's
    options only (no temporary files), and replaying it gives the same ROIs."""
    write_tiff(tmp_path / "rec.tif", _synth((560, 580), {6: 12, 12: 4}, seed=71).image, PX)
    script = tmp_path / "record.py"
    script.write_text(RECORD_SCRIPT)
    env = {**os.environ, "DISPLAY": xvfb, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), str(ij_dir), str(tmp_path / "rec.tif"),
                           str(IJ_JAR)], capture_output=True, text=True, timeout=TIMEOUT,
                          env=env, cwd=tmp_path)
    out = proc.stdout
    assert "RECORDED<<" in out, out + proc.stderr
    recorded = out.split("RECORDED<<", 1)[1].split(">>", 1)[0].split("\\n")
    lines = [ln for ln in recorded if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('run("Detect Gold", "model=default '), lines
    assert "save=" not in lines[0] and "golddigger-" not in lines[0] and "tmp" not in lines[0]
    first = next(ln for ln in out.splitlines() if ln.startswith("FIRST")).split()[1:]
    second = next(ln for ln in out.splitlines() if ln.startswith("SECOND")).split()[1:]
    assert first and first == second


CANCEL_SCRIPT = r'''
"""Plain ImageJ (the installed .ijm runs): Detect Gold on a stack from a macro thread, then
what Esc does to a running macro (Interpreter.abort) once the golddigger program reports
progress. Prints the ROI Manager count after the program has had time to stop."""
import sys, time, threading
import jpype, jpype.imports
jpype.startJVM(f"-Dplugins.dir={sys.argv[1]}", f"-Djava.io.tmpdir={sys.argv[3]}",
               classpath=[sys.argv[4]])
from ij import IJ, ImageJ
from ij.macro import Interpreter
from ij.plugin.frame import RoiManager
from java.lang import System
from pathlib import Path

ij = ImageJ()
IJ.run("ROI Manager...")
imp = IJ.openImage(sys.argv[2])
imp.show()
runner = threading.Thread(target=lambda: IJ.runMacro(
    'run("Detect Gold", "whole_stack region=image");'), daemon=True)
runner.start()
tmp = Path(sys.argv[3])
t0 = time.time()
while time.time() - t0 < 120 and not list(tmp.glob("golddigger-*/progress")):
    time.sleep(0.05)
print("PROGRESS_SEEN", bool(list(tmp.glob("golddigger-*/progress"))))
Interpreter.abort()  # what Esc does to the running macro
t1 = time.time()
while time.time() - t1 < 90 and list(tmp.glob("golddigger-*")):
    time.sleep(0.2)
rm = RoiManager.getInstance()
print("LEFT", len(list(tmp.glob("golddigger-*"))), "ROIS", rm.getCount() if rm else 0,
      "STOPPED_AFTER_S", round(time.time() - t1, 1))
sys.stdout.flush()
System.exit(0)
'''


def test_installed_detect_gold_escape_stops_the_program(xvfb, detector, ij_dir, tmp_path):
    """Esc during the installed Detect Gold (plain ImageJ): the golddigger program notices
    that the macro is gone, stops, adds nothing and removes its temporary folder."""
    planes = [_synth((700, 720), {6: 10, 12: 4}, seed=s).image for s in (81, 82, 83, 84, 85)]
    write_tiff(tmp_path / "long.tif", np.stack(planes), PX)
    jtmp = tmp_path / "java tmp"
    jtmp.mkdir()
    script = tmp_path / "cancel.py"
    script.write_text(CANCEL_SCRIPT)
    # results finished just after Esc wait this long for a macro that will not come
    env = {**os.environ, "DISPLAY": xvfb, "OMP_NUM_THREADS": "1", "GOLDDIGGER_ABANDONED_S": "5",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), str(ij_dir), str(tmp_path / "long.tif"),
                           str(jtmp), str(IJ_JAR)], capture_output=True, text=True,
                          timeout=TIMEOUT + 100, env=env, cwd=tmp_path)
    out = proc.stdout
    print(out, file=sys.stderr)
    assert "PROGRESS_SEEN True" in out, out + proc.stderr
    values = dict(zip(out.split()[2::2], out.split()[3::2], strict=False))
    assert values.get("LEFT") == "0", out  # the temporary folder is gone
    assert values.get("ROIS") == "0", out  # nothing added

# ---------------------------------------------------------------------------- installed UI
PREVIEW_SCRIPT = r'''
"""Plain ImageJ (the installed macros run): the Plugins > Gold Digger menu, About, Detect
Gold's dialog with Preview (ticked, OK: the overlay and the dialog again; a new threshold;
Cancel; then Preview unticked, OK: the command runs), the result windows' places and the
particle ovals' stroke. Prints KEY=VALUE lines."""
import sys, time, threading
from pathlib import Path
import jpype, jpype.imports
jpype.startJVM(f"-Dplugins.dir={sys.argv[1]}", f"-Djava.io.tmpdir={sys.argv[3]}",
               classpath=[sys.argv[4]])
from ij import IJ, ImageJ, Menus, WindowManager
from ij.gui import GenericDialog
from ij.plugin.frame import RoiManager
from java.awt import Container, Dialog, Menu, Window
from java.awt.event import ActionEvent, ItemEvent
from java.lang import System
from javax.swing.text import JTextComponent

def wait(cond, seconds=120.0):
    t = time.time()
    while time.time() - t < seconds:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    return None

def macro(code):
    """A macro on a thread of its own, as ImageJ runs them (an aborted macro stops its
    thread: never this one)."""
    th = threading.Thread(target=lambda: IJ.runMacro(code), daemon=True)
    th.start()
    th.join(300)

def out(key, value):
    print(f"{key}={value}", flush=True)

def dump_threads(why):
    """Every Java thread's name and top frames, and ImageJ's Log: what a stalled run was
    doing (printed before the test's own timeout kills this process)."""
    from java.lang import Thread
    print(f"STALL {why}", flush=True)
    traces = Thread.getAllStackTraces()
    for t in traces.keySet():
        frames = [str(f) for f in traces.get(t)[:12]]
        print(f"THREAD {t.getName()} {t.getState()}: " + " < ".join(frames), flush=True)
    print("LOG " + str(IJ.getLog()).replace("\n", " | "), flush=True)
    for w in Window.getWindows():
        if w.isVisible() and isinstance(w, Dialog):
            print(f"DIALOG {w.getTitle()}: {message(w)}", flush=True)

def watchdog(seconds):
    time.sleep(seconds)
    dump_threads(f"after {seconds} s")

threading.Thread(target=watchdog, args=(float(sys.argv[5]),), daemon=True).start()

def dialog(old=None):
    d = wait(lambda: next((w for w in Window.getWindows() if isinstance(w, GenericDialog)
                           and w.isVisible() and w is not old), None), 120)
    if d is None:
        dump_threads("no dialog")
    return d

def press(d, which):  # 0: OK, 1: Cancel
    b = d.getButtons()[which]
    d.actionPerformed(ActionEvent(b, ActionEvent.ACTION_PERFORMED, str(b.getLabel())))
    wait(lambda: not d.isVisible(), 30)

def tick(d, state):
    boxes = d.getCheckboxes()
    box = boxes.get(boxes.size() - 1)
    assert str(box.getLabel()) == "Preview", box.getLabel()
    box.setState(state)
    d.itemStateChanged(ItemEvent(box, ItemEvent.ITEM_STATE_CHANGED, box,
                                 ItemEvent.SELECTED if state else ItemEvent.DESELECTED))

def message(d):
    from java.awt import Label
    from ij.gui import MultiLineLabel
    texts = []  # the dialog's labels and its message (a MultiLineLabel)
    def walk(c):
        if isinstance(c, Label):
            texts.append(str(c.getText()))
        elif isinstance(c, MultiLineLabel):
            field = MultiLineLabel.class_.getDeclaredField("lines")
            field.setAccessible(True)
            texts.append(" / ".join(str(s) for s in field.get(c)))
        if isinstance(c, Container):
            for k in c.getComponents():
                walk(k)
    walk(d)
    return " | ".join(texts)

def click(path):
    bar = Menus.getMenuBar()
    items = [bar.getMenu(i) for i in range(bar.getMenuCount())]
    for label in path:
        m = next(m for m in items if str(m.getLabel()) == label)
        if isinstance(m, Menu):
            items = [m.getItem(i) for i in range(m.getItemCount())]
    ij.actionPerformed(ActionEvent(m, ActionEvent.ACTION_PERFORMED, path[-1]))

def overlay_size():
    ov = imp.getOverlay()
    return 0 if ov is None else int(ov.size())

def bounds(w):
    return f"{w.getX()},{w.getY()},{w.getWidth()},{w.getHeight()}" if w is not None else "none"

ij = ImageJ()
bar = Menus.getMenuBar()
plugins = next(bar.getMenu(i) for i in range(bar.getMenuCount())
               if str(bar.getMenu(i).getLabel()) == "Plugins")
sub = next(plugins.getItem(i) for i in range(plugins.getItemCount())
           if str(plugins.getItem(i).getLabel()) == "Gold Digger")
out("MENU", "|".join(str(sub.getItem(i).getLabel()) for i in range(sub.getItemCount())))

# About: from the menu a message window, from a macro the Log
click(["Plugins", "Gold Digger", "About Gold Digger"])
about = wait(lambda: next((w for w in Window.getWindows() if isinstance(w, Dialog)
                           and w.isVisible() and "About" in str(w.getTitle())), None), 60)
texts = []
def walk(c):
    if isinstance(c, JTextComponent):
        texts.append(str(c.getText()))
    if isinstance(c, Container):
        for k in c.getComponents():
            walk(k)
if about is not None:
    walk(about)
    about.dispose()
out("ABOUT_DIALOG", " ".join(" ".join(texts).split()))
macro('run("About Gold Digger");')
out("ABOUT_LOG", " ".join(str(IJ.getLog()).split()))
IJ.log("\\Clear")

imp = IJ.openImage(sys.argv[2])
imp.show()
wait(lambda: imp.getWindow() is not None and imp.getWindow().isVisible(), 30)
macro("makePolygon(20,20,380,30,390,380,40,390);")
tmp = Path(sys.argv[3])

# Preview: threshold 0.5, then 0.9, then Cancel
click(["Plugins", "Gold Digger", "Detect Gold"])
d = dialog()
out("FIRST_MESSAGE", str(d.getTitle()) + ": " + message(d))
d.getNumericFields().get(0).setText("0.5")
tick(d, True)
press(d, 0)
d2 = dialog(d)
out("PREVIEW_05", overlay_size())
out("MESSAGE_05", message(d2))
out("PREVIEW_SEL", imp.getRoi().getType() if imp.getRoi() is not None else -1)
d2.getNumericFields().get(0).setText("0.9")
press(d2, 0)
d3 = dialog(d2)
out("PREVIEW_09", overlay_size())
out("MESSAGE_09", message(d3))
# sizes the model does not have: found at their scale, shown as Detect Gold reports them
d3.getNumericFields().get(0).setText("0.5")
d3.getStringFields().get(1).setText("10,20")
press(d3, 0)
d4 = dialog(d3)
out("MESSAGE_1020", message(d4))
press(d4, 1)  # Cancel
if not wait(lambda: overlay_size() == 0 and not list(tmp.glob("golddigger-*")), 60):
    dump_threads("after Cancel")
out("CANCEL_OVERLAY", overlay_size())
rm = RoiManager.getInstance()
out("CANCEL_ROIS", rm.getCount() if rm is not None else 0)
out("CANCEL_TMP", len(list(tmp.glob("golddigger-*"))))

# Preview at 0.5, then untick and OK: the command runs with threshold 0.5
click(["Plugins", "Gold Digger", "Detect Gold"])
d = dialog()
d.getNumericFields().get(0).setText("0.5")
tick(d, True)
press(d, 0)
d2 = dialog(d)
n_preview = overlay_size()
tick(d2, False)
press(d2, 0)
wait(lambda: RoiManager.getInstance() is not None and RoiManager.getInstance().getCount() > 0)
wait(lambda: WindowManager.getWindow("Gold Digger Results") is not None, 60)
time.sleep(2.0)
rm = RoiManager.getInstance()
out("RUN_ROIS", rm.getCount())
out("RUN_OVERLAY", overlay_size())
out("RUN_PREVIEW", n_preview)
roi = rm.getRoi(0)
out("STROKE", f"{roi.getStrokeWidth():g},{roi.getScaleStrokeWidth()}")
def names():
    rm = RoiManager.getInstance()
    return sorted(f"{rm.getName(i)}:{rm.getRoi(i).getFloatBounds().x:.2f}"
                  for i in range(rm.getCount()))
first = names()
out("SCREEN", f"{ij.getToolkit().getScreenSize().width},{ij.getToolkit().getScreenSize().height}")
out("WIN_IMAGE", bounds(imp.getWindow()))
out("WIN_MANAGER", bounds(rm))
for title in ("Gold Digger Results", "Gold Digger Summary"):
    out("WIN_" + title.split()[-1].upper(), bounds(WindowManager.getWindow(title)))
# the same options without the preview: the same particles
rm.reset()
macro('run("Detect Gold", "threshold=0.5");')
second = names()
out("SAME", first == second and len(first) > 0)
out("DONE", 1)
System.exit(0)
'''


def _overlap(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_installed_menu_about_preview_and_windows(xvfb, detector, ij_dir, tmp_path):
    """Plain ImageJ with the installed commands: Plugins > Gold Digger lists Detect Gold
    first and About last; About shows the version, model and citation (a window from the
    menu, the Log from a macro); Detect Gold's Preview shows the particles of the dialog's
    threshold in the overlay, fewer for a higher one, Cancel leaves the image and the
    temporary folder as they were, and OK with Preview unticked adds what the preview
    showed, the same particles as the same options without a preview; the result windows
    opened beside the image, not over it or each other; ovals drawn 2 px wide at any zoom."""
    write_tiff(tmp_path / "prev.tif", _synth((400, 420), {6: 10, 12: 4}, seed=27).image, PX)
    jtmp = tmp_path / "java tmp"
    jtmp.mkdir()
    script = tmp_path / "preview.py"
    script.write_text(PREVIEW_SCRIPT)
    env = {**os.environ, "DISPLAY": xvfb, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, str(script), str(ij_dir),
                               str(tmp_path / "prev.tif"), str(jtmp), str(IJ_JAR),
                               str(TIMEOUT + 120)], capture_output=True, text=True,
                              timeout=TIMEOUT + 150, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as err:
        text = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout
        pytest.fail(f"the preview script stalled; what it printed:\n{text}")
    out = proc.stdout
    print(out, file=sys.stderr)
    assert "DONE=1" in out, out + proc.stderr
    v = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert v["MENU"].split("|") == ["Detect Gold", "Detect Gold in Folder", "-",
                                    "Add to Training Set", "Analyze Gold Distribution", "-",
                                    "About Gold Digger"]
    from golddigger import __version__

    for key in ("ABOUT_DIALOG", "ABOUT_LOG"):
        assert f"Gold Digger {__version__}" in v[key] and "fril-gold" in v[key]
        assert "Jerez" in v[key] and "Scientific Reports" in v[key] and "imagej.md" in v[key]
    n05, n09 = int(v["PREVIEW_05"]), int(v["PREVIEW_09"])
    assert n05 > n09 and f"{n05} particles" in v["MESSAGE_05"]
    assert f"{n09} particles" in v["MESSAGE_09"] and "threshold 0.9" in v["MESSAGE_09"]
    assert v["PREVIEW_SEL"] == "2"  # the membrane outline stays the selection
    # 12 nm gold asked for as 10 nm (7.5-15 nm), the 6 nm gold "other": not the model's
    # classes relabelled
    assert "10 nm:" in v["MESSAGE_1020"] and "12 nm" not in v["MESSAGE_1020"]
    assert "6 nm" not in v["MESSAGE_1020"]
    assert (v["CANCEL_OVERLAY"], v["CANCEL_ROIS"], v["CANCEL_TMP"]) == ("0", "0", "0")
    assert int(v["RUN_PREVIEW"]) == int(v["RUN_ROIS"]) == n05 and v["RUN_OVERLAY"] == "0"
    assert v["SAME"] == "True"
    assert v["STROKE"] == "2,False"  # 2 screen pixels, not scaled with the zoom
    screen = tuple(int(s) for s in v["SCREEN"].split(","))
    boxes = {k: tuple(int(s) for s in v[k].split(",")) for k in
             ("WIN_IMAGE", "WIN_MANAGER", "WIN_RESULTS", "WIN_SUMMARY")}
    for name, (x, y, w, h) in boxes.items():
        assert 0 <= x and x + w <= screen[0] and 0 <= y and y + h <= screen[1], name
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(boxes[a], boxes[b]), (a, boxes[a], b, boxes[b])
