"""Installed commands that Esc can stop: ``golddigger imagej --call ... --detach``.

ImageJ's macro ``exec()`` blocks until the program it runs has ended, and Esc cannot stop
it. So the installed Detect Gold starts the call detached (`start_detached`: a child in its
own session, its status line going to ``<folder>/status.txt``) and waits in a macro loop
that shows the child's progress (``<folder>/progress``) and touches
``<folder>/heartbeat``. Esc aborts that loop; the child (`Watch`) sees the heartbeat go
stale, stops between slices, adds nothing and removes the temporary folder. ``<folder>/done``
tells the macro the status line is complete: it is written by the process whose stdout is
``status.txt``, after that line (`mark_done`). When the Gold Digger service runs the call,
that process is the detached client, which writes the service's answer: the service's own
`Watch` (``announce=False``) must not say ``done`` first, or the macro reads an empty status.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DONE", "GONE_S", "HEARTBEAT", "PROGRESS", "STALE_S", "STATUS", "Watch",
           "mark_done", "start_detached"]

logger = logging.getLogger(__name__)

HEARTBEAT = "heartbeat"
PROGRESS = "progress"
STATUS = "status.txt"
DONE = "done"
ERRORS = "stderr.txt"
#: Seconds without a heartbeat after which the macro is taken to be gone (Esc, or closed).
STALE_S = 10.0
#: At the end of a call: a heartbeat this old means the macro is gone (Esc): the results
#: are removed rather than left for nobody. Generous: a macro that is only slow (a busy
#: machine can hold ImageJ's macro thread for seconds) would report its results as lost;
#: results of a macro that did go are swept later anyway (`abandoned_seconds`).
GONE_S = 10.0


def start_detached(argv: Sequence[str], folder: str | os.PathLike) -> int:
    """Run ``golddigger`` with ``argv`` (the arguments after the program) in a new session,
    its stdout in ``folder/status.txt``; returns the child's pid at once."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "golddigger.cli.main", *argv]
    with open(folder / STATUS, "w", encoding="utf-8") as out, \
            open(folder / ERRORS, "w", encoding="utf-8") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 start_new_session=True,
                                 env={**os.environ, "GOLDDIGGER_IMAGEJ_PID": str(os.getppid())})
    return int(child.pid)


class Watch:
    """The child's side: cancelled once ``folder/heartbeat`` is older than ``stale_s``
    seconds (or gone after it existed); writes progress for the macro.

    Usable as the engine's ``cancel`` (it has ``is_set``) and ``on_plane`` (`progress`).
    ``announce``: whether `finish` writes ``done`` (False in the service, whose answer the
    client still has to write to ``status.txt``; the client calls `mark_done`).
    """

    def __init__(self, folder: str | os.PathLike, stale_s: float = STALE_S,
                 poll_s: float = 0.2, announce: bool = True) -> None:
        self.folder = Path(folder)
        self.stale_s = float(stale_s)
        self.announce = bool(announce)
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._started = time.time()
        self._thread = threading.Thread(target=self._run, args=(poll_s,), daemon=True,
                                        name="golddigger-watch")
        self._thread.start()

    def _run(self, poll_s: float) -> None:
        beat = self.folder / HEARTBEAT
        while not self._stop.wait(poll_s):
            try:
                last = beat.stat().st_mtime
            except OSError:
                last = self._started  # not written yet: count from the start
            if time.time() - last > self.stale_s:
                logger.info("no heartbeat from ImageJ for %.0f s: cancelling", self.stale_s)
                self._cancelled.set()
                return

    def is_set(self) -> bool:
        return self._cancelled.is_set()

    def progress(self, i: int, n: int) -> None:
        try:
            (self.folder / PROGRESS).write_text(f"{int(i)} {max(int(n), 1)}\n")
        except OSError:
            pass

    def finish(self) -> None:
        """Stop watching; tell the macro the status line is complete (``done``, when this
        process wrote it), or, when cancelled, remove the whole temporary folder."""
        self._stop.set()
        try:  # finished before noticing: is the macro still there to collect the results?
            age = time.time() - (self.folder / HEARTBEAT).stat().st_mtime
        except OSError:
            age = 0.0
        if age > GONE_S:
            self._cancelled.set()
        if self.is_set():
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        if self.announce and not mark_done(self.folder):
            return
        # A macro stopped just before the end never collects (and removes) the results:
        # sweep the folder if it is still there long after (a live macro removes it itself,
        # having read every file right after `done`). In the long-lived service the timer
        # must not keep the process alive once it has stopped serving.
        sweeper = threading.Timer(abandoned_seconds(), self._sweep)
        sweeper.daemon = not self.announce
        sweeper.start()

    def _sweep(self) -> None:
        if self.folder.is_dir():
            logger.info("%s: results not collected by ImageJ; removed", self.folder)
            shutil.rmtree(self.folder, ignore_errors=True)


def mark_done(folder: str | os.PathLike) -> bool:
    """Write ``folder/done``: the status line in ``status.txt`` is complete (call it only
    after that line is written and flushed). False when the folder is gone (the call was
    cancelled and removed it): nothing is written then."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    try:
        (folder / DONE).write_text("done\n")
    except OSError:
        return False
    return True


def abandoned_seconds() -> float:
    """How long finished results wait for the macro (``GOLDDIGGER_ABANDONED_S``, 120 s)."""
    return float(os.environ.get("GOLDDIGGER_ABANDONED_S", "120"))
