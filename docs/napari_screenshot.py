"""Make docs/napari_screenshot.png: napari with the synthetic sample, Detect Gold run in the
membrane outline, and the Analyze widget. Synthetic data only.

Run on a display (e.g. ``xvfb-run -s "-screen 0 1600x1000x24"``), from the repository root:

    PYTHONPATH=src python docs/napari_screenshot.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
import npe2
from qtpy.QtWidgets import QApplication

MANIFEST = Path(__file__).resolve().parents[1] / "src" / "golddigger" / "napari" / "napari.yaml"
OUT = Path(__file__).resolve().parent / "napari_screenshot.png"


def wait(condition, timeout: float = 120.0) -> None:
    t0 = time.time()
    while not condition():
        QApplication.processEvents()
        time.sleep(0.05)
        if time.time() - t0 > timeout:
            raise TimeoutError("timed out")


def main() -> int:
    pm = npe2.PluginManager.instance()
    if "golddigger" not in {m.name for m in pm.iter_manifests()}:  # not pip-installed
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    viewer.open_sample("golddigger", "synthetic_fril")
    _, detect = viewer.window.add_plugin_dock_widget("golddigger", "Detect Gold")
    detect.region.value = viewer.layers["membrane"]
    detect.start()
    wait(lambda: not detect.running)
    detect.threshold.value = 0.38
    viewer.layers.selection.active = viewer.layers[-1]
    viewer.reset_view()
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()  # napari's start-up notices
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    viewer.screenshot(str(OUT), canvas_only=False)  # then: convert -colors 256 PNG8:
    print(f"{OUT}: {detect.status.value}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
