"""Start ImageJ inside this Python process: a user's Fiji through pyimagej, or plain
ImageJ 1 (``ij.jar``) through JPype.

Nothing here downloads anything:

* **Fiji** (``--fiji PATH`` or ``$FIJI_HOME``): pyimagej wraps the local ``Fiji.app``.
  pyimagej and scyjava would otherwise reach the network twice: scyjava fetches a JDK by
  default (``fetch="always"``), and importing imglyb adds the Maven endpoint
  ``net.imglib2:imglib2-imglyb``, which makes scyjava resolve artifacts with jgo. So
  before ``imagej.init`` we check that a Java exists (Fiji's bundled one, ``$JAVA_HOME``
  or ``java`` on the PATH), set ``fetch="auto"`` (which then uses that Java; ``"never"``
  trips an ``UnboundLocalError`` in pyimagej 1.8's Java version guess) and clear the
  endpoint list, so the JVM starts with Fiji's own jars only. The bridge uses the
  original-ImageJ API (``ij.*``) that Fiji's legacy layer provides, not imglyb.
* **ImageJ 1** (``ij.jar`` from ``--ij-jar``, ``$IJ_JAR`` or Debian's
  ``/usr/share/java/ij.jar``): JPype starts a JVM with that jar on the class path (~0.5 s).

JPype can start one JVM per process and never restart it, so `connect` returns the same
`Connection` on later calls.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from golddigger.errors import GoldDiggerError

__all__ = [
    "DEBIAN_IJ_JAR",
    "Connection",
    "ImageJError",
    "connect",
    "connection",
    "display_available",
    "find_fiji",
    "find_ij_jar",
    "find_java_home",
    "fiji_java_home",
    "fiji_plan",
    "heap_option",
    "jvm_options",
]

logger = logging.getLogger(__name__)

#: Where Debian's ``imagej`` package puts ImageJ 1.
DEBIAN_IJ_JAR = Path("/usr/share/java/ij.jar")

_CONNECTION: Connection | None = None


class ImageJError(GoldDiggerError):
    """ImageJ, Fiji or Java cannot be found or started."""


@dataclass
class Connection:
    """A running ImageJ in this process.

    Attributes
    ----------
    kind : {"imagej1", "fiji"}
    version : str
        ImageJ 1's version (``IJ.getVersion()``), e.g. ``"1.53t"``.
    headless : bool
        True when AWT cannot open windows (no ROI Manager, no dialogs).
    location : Path
        The ``ij.jar`` or the ``Fiji.app`` folder.
    plugins_dir : Path or None
        The folder above ``plugins/`` ImageJ was told to use.
    gateway : object or None
        pyimagej's ImageJ2 gateway (Fiji only).
    seconds : float
        Time to start the JVM (and the gateway).
    """

    kind: str
    version: str
    headless: bool
    location: Path
    plugins_dir: Path | None = None
    gateway: object | None = None
    seconds: float = 0.0
    options: list[str] = field(default_factory=list)


def connection() -> Connection | None:
    """The running connection, if `connect` was called in this process."""
    return _CONNECTION


# ---------------------------------------------------------------------------- discovery
def display_available() -> bool:
    """Whether windows can be opened (Linux/BSD: ``$DISPLAY`` or ``$WAYLAND_DISPLAY``)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def find_java_home(extra: list[Path] | None = None) -> Path | None:
    """A Java home: one of ``extra`` (e.g. Fiji's bundled Java), ``$JAVA_HOME``, or the
    installation behind ``java`` on the PATH. None if there is none."""
    candidates = list(extra or [])
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    exe = shutil.which("java")
    if exe:
        candidates.append(Path(os.path.realpath(exe)).parent.parent)
    for home in candidates:
        if (home / "bin" / ("java.exe" if os.name == "nt" else "java")).is_file():
            return home
    return None


def find_ij_jar(ij_jar: str | os.PathLike | None = None) -> Path:
    """``ij_jar``, else ``$IJ_JAR``, else Debian's ``/usr/share/java/ij.jar``.

    Raises
    ------
    ImageJError
        If none of them is a file.
    """
    for source, value in (("--ij-jar", ij_jar), ("IJ_JAR", os.environ.get("IJ_JAR"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise ImageJError(f"{source}: {path} is not a file; give the path of ImageJ's "
                                  "ij.jar")
            return path
    if DEBIAN_IJ_JAR.is_file():
        return DEBIAN_IJ_JAR
    raise ImageJError("ImageJ not found: give --fiji PATH (a Fiji.app folder) or set FIJI_HOME, "
                      "or give --ij-jar / IJ_JAR (an ij.jar), or install Debian's ImageJ "
                      "(apt-get install imagej)")


def find_fiji(fiji: str | os.PathLike | None = None) -> Path | None:
    """``fiji`` or ``$FIJI_HOME`` as a checked ``Fiji.app`` folder; None when neither is set.

    Raises
    ------
    ImageJError
        If the folder is missing or has no ``jars/`` with ImageJ's jars.
    """
    source = "--fiji" if fiji else "FIJI_HOME"
    value = fiji or os.environ.get("FIJI_HOME")
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_file() and path.parent.name.lower().startswith("fiji"):
        path = path.parent  # the launcher was given
    if not path.is_dir():
        raise ImageJError(f"{source}: {path} is not a folder; give the Fiji.app folder")
    jars = path / "jars"
    if not jars.is_dir() or not any(jars.glob("ij-*.jar")) and not any(jars.glob("ij.jar")):
        raise ImageJError(f"{source}: {path} does not look like Fiji (no jars/ij-*.jar); give "
                          "the Fiji.app folder, the one that holds jars/ and plugins/")
    return path


def fiji_java_home(fiji: Path) -> Path | None:
    """The Java bundled with a Fiji.app (``java/<platform>/<jdk>/``), if any."""
    base = fiji / "java"
    if not base.is_dir():
        return None
    exe = "java.exe" if os.name == "nt" else "java"
    homes = sorted({p.parent.parent for p in base.glob(f"*/*/bin/{exe}")}
                   | {p.parent.parent for p in base.glob(f"*/*/jre/bin/{exe}")}
                   | {p.parent.parent for p in base.glob(f"*/bin/{exe}")})
    return homes[-1] if homes else None


_HEAP_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def heap_option(heap: str | int | None) -> str | None:
    """The JVM option for a maximum heap: ``"4g"`` -> ``-Xmx4096m``, ``"4096"`` (MB) ->
    ``-Xmx4096m``, ``"50%"`` -> ``-XX:MaxRAMPercentage=50``; None -> None (Java's default,
    a quarter of the RAM).

    Raises
    ------
    ImageJError
        For text that is not a size.
    """
    if heap is None or str(heap).strip() == "":
        return None
    text = str(heap).strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            pct = -1.0
        if not 1 <= pct <= 95:
            raise ImageJError(f"Java heap {text!r}: a percentage must be between 1% and 95%")
        return f"-XX:MaxRAMPercentage={pct:g}"
    m = _HEAP_RE.match(text)
    if not m:
        raise ImageJError(f"Java heap {text!r} is not a size; write e.g. 4g, 4096m or 50%")
    value, unit = float(m.group(1)), (m.group(2) or "m").lower()
    mb = value * {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}[unit]
    if mb < 64:
        raise ImageJError(f"Java heap {text!r} is too small (at least 64m)")
    return f"-Xmx{int(mb)}m"


def jvm_options(heap: str | int | None = None, headless: bool = False,
                plugins_dir: str | os.PathLike | None = None,
                extra: list[str] | None = None) -> list[str]:
    """JVM options for ImageJ: heap, headless AWT, the folder above ``plugins/``."""
    opts = []
    h = heap_option(heap)
    if h:
        opts.append(h)
    if headless:
        opts.append("-Djava.awt.headless=true")
    if plugins_dir:
        opts.append(f"-Dplugins.dir={Path(plugins_dir)}")
    opts.extend(extra or [])
    return opts


# ---------------------------------------------------------------------------- starting
def connect(fiji: str | os.PathLike | None = None, ij_jar: str | os.PathLike | None = None,
            heap: str | int | None = None, headless: bool | None = None,
            plugins_dir: str | os.PathLike | None = None) -> Connection:
    """Start ImageJ in this process (once) and return the `Connection`.

    Parameters
    ----------
    fiji : path, optional
        A Fiji.app folder (default ``$FIJI_HOME``). When given, Fiji is started through
        pyimagej; otherwise ImageJ 1 from ``ij_jar``.
    ij_jar : path, optional
        ImageJ 1's jar (default ``$IJ_JAR``, then ``/usr/share/java/ij.jar``).
    heap : str, optional
        Maximum Java heap, e.g. ``"8g"`` (default: Java's, a quarter of the RAM).
    headless : bool, optional
        Default: True when no display is available.
    plugins_dir : path, optional
        ImageJ 1 only: the folder above ``plugins/`` (ImageJ's ``plugins.dir``).

    Raises
    ------
    ImageJError
        No Java, no ImageJ, or a JVM already running without ImageJ.
    """
    global _CONNECTION
    if _CONNECTION is not None:
        return _CONNECTION
    if headless is None:
        headless = not display_available()
    fiji_path = find_fiji(fiji)
    if fiji_path is not None:
        _CONNECTION = _start_fiji(fiji_path, heap, headless)
    else:
        _CONNECTION = _start_imagej1(find_ij_jar(ij_jar), heap, headless, plugins_dir)
    logger.info("%s %s started in %.1f s%s", _CONNECTION.kind, _CONNECTION.version,
                _CONNECTION.seconds, " (headless)" if headless else "")
    return _CONNECTION


def _start_imagej1(jar: Path, heap, headless: bool, plugins_dir) -> Connection:
    import jpype

    opts = jvm_options(heap, headless, plugins_dir)
    t0 = time.perf_counter()
    if jpype.isJVMStarted():
        # Someone (a test session, a notebook) started Java already: usable only if it
        # has ImageJ on its class path.
        logger.info("a JVM is running already; options %s not applied", opts)
    else:
        java_home = find_java_home()
        try:
            jvm = (jpype.getDefaultJVMPath() if java_home is None
                   else _libjvm(java_home) or jpype.getDefaultJVMPath())
        except jpype.JVMNotFoundException:
            raise ImageJError("no Java found: install a Java runtime (11 or later; Debian: "
                              "apt-get install default-jre) or set JAVA_HOME") from None
        try:
            jpype.startJVM(jvm, *opts, classpath=[str(jar)], convertStrings=False)
        except OSError as err:
            raise ImageJError(f"cannot start Java ({jvm}): {err}") from None
        _no_destroy_at_exit()
    try:
        ij = jpype.JClass("ij.IJ")
    except TypeError:
        raise ImageJError(f"the running JVM has no ImageJ on its class path ({jar})") from None
    import jpype.imports  # noqa: F401  (enables `from ij import ...`)

    return Connection("imagej1", str(ij.getVersion()), headless, jar,
                      Path(plugins_dir) if plugins_dir else None, None,
                      time.perf_counter() - t0, opts)


def _no_destroy_at_exit() -> None:
    """Let Python exit without destroying the JVM: destroying it waits for every non-daemon
    Java thread, and AWT's event threads live as long as any window is displayable, so an
    ImageJ window left open would keep the process alive forever."""
    import jpype.config

    jpype.config.destroy_jvm = False


def _libjvm(java_home: Path) -> str | None:
    for rel in ("lib/server/libjvm.so", "jre/lib/amd64/server/libjvm.so",
                "lib/server/libjvm.dylib", "bin/server/jvm.dll"):
        p = java_home / rel
        if p.is_file():
            return str(p)
    return None


@dataclass
class FijiPlan:
    """What `_start_fiji` will do, computed without starting anything (testable)."""

    fiji: Path
    java_home: Path
    mode: str
    options: list[str]
    set_java_home: bool
    removed_endpoints: list[str]


def fiji_plan(fiji: Path, heap=None, headless: bool = False,
              endpoints: list[str] | None = None) -> FijiPlan:
    """Plan an offline start of a local Fiji (see the module docstring).

    Raises
    ------
    ImageJError
        If no Java can be found (a Fiji without bundled Java and no system Java), since
        scyjava would then try to download one.
    """
    bundled = fiji_java_home(fiji)
    home = find_java_home([bundled] if bundled else None)
    if home is None:
        raise ImageJError(f"no Java found for Fiji at {fiji}: Fiji has no bundled Java "
                          "(java/ folder) and none is installed; install Java 11 or later or "
                          "set JAVA_HOME (nothing is downloaded)")
    opts = jvm_options(heap, headless=False)  # pyimagej adds the headless flag itself
    opts.append("--add-opens=java.base/java.lang=ALL-UNNAMED")
    set_home = bundled is not None and home == bundled
    return FijiPlan(fiji, home, "headless" if headless else "interactive", opts, set_home,
                    list(endpoints or []))


def _start_fiji(fiji: Path, heap, headless: bool) -> Connection:
    try:
        import imagej
        import scyjava
    except ImportError as err:
        raise ImageJError(f"pyimagej is needed for Fiji ({err}); pip install pyimagej") \
            from None
    if scyjava.jvm_started():
        raise ImageJError("a JVM is already running in this process; Fiji must be started "
                          "first (restart Python)")
    plan = fiji_plan(fiji, heap, headless, list(scyjava.config.endpoints))
    if plan.set_java_home:
        os.environ["JAVA_HOME"] = str(plan.java_home)
    # No JDK download (a Java exists, so "auto" uses it) and no Maven: Fiji's own jars only.
    scyjava.config.set_java_constraints(fetch="auto")
    if plan.removed_endpoints:
        logger.debug("removing Maven endpoints %s (Fiji's jars are used)",
                     plan.removed_endpoints)
    scyjava.config.endpoints.clear()
    for opt in plan.options:
        scyjava.config.add_option(opt)
    t0 = time.perf_counter()
    try:
        gateway = imagej.init(str(fiji), mode=plan.mode)
    except Exception as err:  # pyimagej raises many kinds
        raise ImageJError(f"Fiji at {fiji} did not start: {err}") from None
    if not gateway:
        raise ImageJError(f"Fiji at {fiji} did not start (see the log above)")
    _no_destroy_at_exit()
    if not headless:
        gateway.ui().showUI()
    ij = scyjava.jimport("ij.IJ")
    return Connection("fiji", str(ij.getVersion()), headless, fiji, fiji, gateway,
                      time.perf_counter() - t0, plan.options)
