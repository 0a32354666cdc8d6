"""The Gold Digger service: one Python process, the model kept loaded, that serves the
installed ImageJ commands' ``golddigger imagej --call ...`` runs.

Without it every click of an installed command starts a new Python that imports torch and
loads the model (3-7 s). With it, ``--call`` is a small client: it sends its arguments to the
service and prints the service's answer.

* Private to the user: a Unix socket in a folder only its owner may enter (mode 0700,
  ``$XDG_RUNTIME_DIR/golddigger-<uid>`` or ``<tmp>/golddigger-service-<uid>``); never a
  network port.
* Started by the first call (`call`), kept alive between calls; it ends after
  ``GOLDDIGGER_SERVICE_IDLE_S`` seconds (default 900) without a call, or once every ImageJ
  that called it has quit.
* A service that crashed (or is stale) is replaced and the call retried once; if that fails
  too, the call runs in the calling process (the old way).
* ``GOLDDIGGER_SERVICE=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from golddigger.errors import GoldDiggerError

__all__ = ["call", "enabled", "inside", "serve", "service_dir", "socket_path"]

logger = logging.getLogger(__name__)

_ENV_IN_SERVICE = "GOLDDIGGER_IN_SERVICE"


def enabled() -> bool:
    """Whether ``--call`` goes through the service (not inside the service itself, not
    with ``GOLDDIGGER_SERVICE=0``, only where Unix sockets exist)."""
    return (os.environ.get("GOLDDIGGER_SERVICE", "1") != "0"
            and not inside() and hasattr(socket, "AF_UNIX"))


def inside() -> bool:
    """Whether this process is the service (its calls' stdout goes back to a client)."""
    return bool(os.environ.get(_ENV_IN_SERVICE))


def idle_seconds() -> float:
    return float(os.environ.get("GOLDDIGGER_SERVICE_IDLE_S", "900"))


def service_dir() -> Path:
    """The user's private folder for the socket (made with mode 0700; refused if another
    user owns it or others may enter it)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    if len(base) > 60:  # a Unix socket's path holds ~100 bytes
        base = "/tmp"
    d = Path(base) / f"golddigger-service-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    st = d.stat()
    if st.st_uid != os.getuid():
        raise GoldDiggerError(f"{d} belongs to another user; remove it")
    if st.st_mode & 0o077:
        os.chmod(d, 0o700)
    return d


def socket_path() -> Path:
    """The socket of this installation's service (one per Gold Digger install and Python:
    two environments never serve each other's calls)."""
    import hashlib

    import golddigger

    key = f"{Path(golddigger.__file__).resolve().parent}|{sys.executable}|{golddigger.__version__}"
    return service_dir() / f"service-{hashlib.sha1(key.encode()).hexdigest()[:12]}.sock"


# ---------------------------------------------------------------------------- client
def _send(argv: Sequence[str], imagej_pid: int, timeout: float | None) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(str(socket_path()))
        s.settimeout(timeout)
        s.sendall((json.dumps({"argv": list(argv), "imagej_pid": int(imagej_pid),
                               "cwd": os.getcwd()}) + "\n").encode("utf-8"))
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("the Gold Digger service closed the connection")
            data += chunk
    return json.loads(data.decode("utf-8"))


def _start() -> None:
    """Start a service in its own session (its log: service.log beside the socket)."""
    log = socket_path().with_suffix(".log")
    with open(log, "a", encoding="utf-8") as fh:
        subprocess.Popen([sys.executable, "-m", "golddigger.cli.main", "imagej", "--serve"],
                         stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                         start_new_session=True, env={**os.environ, _ENV_IN_SERVICE: "1"})


def _wait_for_socket(seconds: float = 60.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(socket_path()))
            return True
        except OSError:
            time.sleep(0.05)
    return False


def call(argv: Sequence[str], imagej_pid: int = 0) -> dict | None:
    """Run ``golddigger <argv>`` in the service (started if needed); returns its answer
    ``{"stdout": ..., "code": ...}``, or None when no service could serve it (the caller
    then runs the call itself). A failed attempt is retried once with a new service."""
    for attempt in (1, 2):
        try:
            return _send(argv, imagej_pid, timeout=None)
        except (OSError, ConnectionError, ValueError) as err:
            logger.info("Gold Digger service not reached (%s), attempt %d", err, attempt)
            with contextlib.suppress(OSError):
                socket_path().unlink()
            _start()
            if not _wait_for_socket():
                return None
    return None


# ---------------------------------------------------------------------------- service
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_argv(argv: Sequence[str], cwd: str | None = None) -> dict:
    """Run a golddigger command line in this process (in the caller's folder); its stdout
    is the answer."""
    from golddigger.cli.main import build_parser

    args = build_parser().parse_args(list(argv))
    buf = io.StringIO()
    here = os.getcwd()
    saved = sys.argv
    try:
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        sys.argv = ["golddigger", *argv]
        with contextlib.redirect_stdout(buf):
            code = args.func(args)
    finally:
        sys.argv = saved
        os.chdir(here)
    return {"stdout": buf.getvalue(), "code": int(code or 0), "pid": os.getpid()}


def serve(idle_s: float | None = None) -> int:
    """Serve calls until idle for ``idle_s`` seconds or every calling ImageJ has quit."""
    os.environ[_ENV_IN_SERVICE] = "1"
    idle_s = idle_seconds() if idle_s is None else float(idle_s)
    path = socket_path()
    if _wait_for_socket(0.2):
        logger.info("a Gold Digger service already runs at %s", path)
        return 0
    with contextlib.suppress(OSError):
        path.unlink()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        srv.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    inode = _identity(path)
    srv.listen(8)
    srv.settimeout(0.5)
    lock = threading.Lock()  # one call at a time: they share the model and torch's threads
    state = {"last": time.time(), "busy": 0, "pids": set()}
    logger.info("Gold Digger service (pid %d) at %s", os.getpid(), path)

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            request = json.loads(data.decode("utf-8"))
            if request.get("imagej_pid"):
                state["pids"].add(int(request["imagej_pid"]))
            with lock:
                state["busy"] += 1
                try:
                    answer = _run_argv(request["argv"], request.get("cwd"))
                except SystemExit as err:  # argparse
                    answer = {"stdout": f"GOLDDIGGER ERROR bad call ({err})\n", "code": 2}
                except Exception as err:  # keep serving
                    logger.exception("call failed")
                    answer = {"stdout": f"GOLDDIGGER ERROR internal error: {err}\n",
                              "code": 2}
                finally:
                    state["busy"] -= 1
                    state["last"] = time.time()
            conn.sendall((json.dumps(answer) + "\n").encode("utf-8"))

    try:
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                if state["busy"]:
                    continue
                if time.time() - state["last"] > idle_s:
                    logger.info("idle for %.0f s: the service ends", idle_s)
                    break
                if not _still_ours(path, inode):
                    logger.info("another service took over %s: this one ends", path)
                    break
                pids = state["pids"]
                if pids and not any(_pid_alive(p) for p in pids):
                    logger.info("every ImageJ that called has quit: the service ends")
                    break
                continue
            state["last"] = time.time()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    finally:
        srv.close()
        if _still_ours(path, inode):
            with contextlib.suppress(OSError):
                path.unlink()
    return 0


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_ctime_ns


def _still_ours(path: Path, inode: tuple[int, int]) -> bool:
    """Whether the socket file is still the one this service bound (two commands that
    start a service at once: the later one replaces the file, the earlier service ends)."""
    try:
        return _identity(path) == inode
    except OSError:
        return False
