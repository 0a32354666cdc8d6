"""``golddigger imagej``: ImageJ (or Fiji) started from Python, with the Gold Digger
commands served in-process (the model is loaded once, at the first command).

`start` does the set-up and returns; `run` is the whole command line: start, open images,
run a macro, then wait until the user quits ImageJ (or quit at once with ``batch``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from golddigger.errors import GoldDiggerError
from golddigger.imagej.commands import Session
from golddigger.imagej.connect import Connection, connect
from golddigger.imagej.listener import ensure_menus, install_listener

__all__ = ["Running", "default_ij_dir", "open_image", "run", "start", "wait_until_closed"]

logger = logging.getLogger(__name__)


@dataclass
class Running:
    """A started ImageJ: its connection, the command session, the main window (or None)."""

    connection: Connection
    session: Session
    window: object | None
    seconds: float


def default_ij_dir() -> Path | None:
    """``~/.imagej`` (Debian's ImageJ folder, where its launcher keeps plugins) if it
    exists, so the user's own plugins stay available."""
    home = Path(os.path.expanduser("~")) / ".imagej"
    return home if (home / "plugins").is_dir() else None


def start(fiji=None, ij_jar=None, heap=None, ij_dir=None, headless=None, dialogs=True,
          output_dir=None) -> Running:
    """Start ImageJ in this process with the Gold Digger commands served from Python.

    Parameters
    ----------
    fiji, ij_jar, heap, headless
        See `golddigger.imagej.connect.connect`.
    ij_dir : path, optional
        ImageJ 1: the folder above ``plugins/`` (default `default_ij_dir`). If the
        Gold Digger ``.ijm`` files are not installed there the menu items are added at
        run time.
    dialogs : bool
        Interactive dialogs for options and errors (False for batch runs).
    output_dir : path, optional
        Headless: where RoiSets go.
    """
    t0 = time.perf_counter()
    if ij_dir is None and not (fiji or os.environ.get("FIJI_HOME")):
        ij_dir = default_ij_dir()
    conn = connect(fiji=fiji, ij_jar=ij_jar, heap=heap, headless=headless, plugins_dir=ij_dir)
    session = Session(headless=conn.headless, dialogs=dialogs, output_dir=output_dir)
    install_listener(session)
    window = None
    if not conn.headless:
        from ij import IJ

        window = IJ.getInstance()
        if window is None and conn.kind == "imagej1":
            from ij import ImageJ

            window = ImageJ()
        ensure_menus(window)
    return Running(conn, session, window, time.perf_counter() - t0)


def open_image(path: str | os.PathLike, show: bool = True):
    """Open an image file in ImageJ (and show it, when there is a display)."""
    from ij import IJ

    path = Path(path)
    if not path.is_file():
        raise GoldDiggerError(f"{path}: no such image file")
    imp = IJ.openImage(str(path))
    if imp is None:
        raise GoldDiggerError(f"{path}: ImageJ cannot open this file")
    if show:
        imp.show()
    else:
        from ij import WindowManager

        WindowManager.setTempCurrentImage(imp)
    return imp


def wait_until_closed(poll_seconds: float = 0.5) -> None:
    """Block (keeping the Python main thread alive, which the listener needs) until the
    ImageJ window is closed and ImageJ has finished quitting."""
    from ij import IJ

    while IJ.getInstance() is not None:
        time.sleep(poll_seconds)
    join_quit_thread()


def join_quit_thread(timeout_s: float = 30.0) -> None:
    """Wait for ImageJ's "Quit" thread (it closes windows and saves preferences after the
    main window is gone): Python must not exit while it runs, or the process aborts."""
    from java.lang import Thread

    for t in list(Thread.getAllStackTraces().keySet()):
        if str(t.getName()) == "Quit" and t.isAlive():
            t.join(int(timeout_s * 1000))


def IJ_quit_requested() -> bool:  # noqa: N802 - reads as ImageJ's "quit requested"
    """Whether ImageJ's main window is gone (a macro ran "Quit", or the user closed it)."""
    from ij import IJ

    return IJ.getInstance() is None


def close_all(keep_main_window: bool = True) -> None:
    """Close every image and window without asking to save anything (images, the Results
    table and the ROI Manager would otherwise each ask, in a dialog)."""
    from ij import IJ, ImageJ, WindowManager
    from ij.measure import ResultsTable
    from ij.plugin.frame import RoiManager
    from ij.text import TextWindow
    from java.awt import Window

    for image_id in list(WindowManager.getIDList() or []):
        imp = WindowManager.getImage(image_id)
        if imp is not None:
            imp.changes = False
            imp.close()
    rt = ResultsTable.getResultsTable()
    if rt is not None:
        rt.reset()
    rm = RoiManager.getInstance()
    if rm is not None:
        rm.reset()
        rm.close()
    main = IJ.getInstance()
    for w in Window.getWindows():
        if keep_main_window and isinstance(w, ImageJ):
            continue
        if isinstance(w, TextWindow) and str(w.getTitle()) == "Log":
            # closing the Log makes ImageJ log (and so open a new Log window) from this
            # thread, racing the event thread over AWT's window table: clear it instead
            IJ.log("\\Clear")
            if keep_main_window:
                continue
        if isinstance(w, TextWindow):
            w.close(False)
        if w is main and not keep_main_window:
            main.quit()
        else:
            w.dispose()


def run(images=(), fiji=None, ij_jar=None, heap=None, ij_dir=None, macro=None,
        macro_arg: str = "", batch: bool = False, headless=None, output_dir=None) -> int:
    """Start ImageJ, open ``images``, run ``macro``; then wait for the user to quit ImageJ,
    or (``batch``) quit at once. Returns an exit code."""
    running = start(fiji, ij_jar, heap, ij_dir, headless, dialogs=not batch,
                    output_dir=output_dir)
    if running.connection.headless and running.connection.kind == "imagej1":
        from golddigger.imagej.connect import ImageJError

        raise ImageJError("ImageJ 1 cannot run commands without a display (its menus are "
                          "windows): run it under a virtual display (xvfb-run golddigger "
                          "imagej ...), use Fiji (--fiji), or use 'golddigger detect'")
    logger.info("ImageJ %s ready in %.1f s", running.connection.version, running.seconds)
    for p in images:
        open_image(p, show=not running.connection.headless)
    if macro:
        from ij import IJ

        macro = Path(macro)
        if not macro.is_file():
            raise GoldDiggerError(f"{macro}: no such macro file")
        IJ.runMacroFile(str(macro), macro_arg)
    if batch or running.connection.headless or IJ_quit_requested():
        close_all(keep_main_window=False)
        join_quit_thread()
        return 0
    wait_until_closed()
    close_all(keep_main_window=False)
    join_quit_thread()
    return 0
