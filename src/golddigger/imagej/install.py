"""``golddigger install-fiji DIR``: put the Gold Digger menu commands into a Fiji.app or an
ImageJ folder (Debian's ImageJ: ``~/.imagej``).

The commands are ImageJ macros (``.ijm``, which both Fiji and plain ImageJ 1 run) written
to ``DIR/plugins/Gold Digger/``, so they appear under Plugins > Gold Digger. Each is made
from its source in ``fiji-scripts/`` by replacing the line ``//@GENERATED@`` with

* ``GD_*`` constants: the version, and the absolute path of this ``golddigger`` program,
  which the macro runs (an argument array, never a shell command line);
* ``gdAsk()``: the command's dialog, built from `golddigger.imagej.options`, so the macro
  keys and defaults are those the Python side parses;
* ``gdCall(...)``: the ``exec`` of ``golddigger imagej --call ...`` (ImageJ 1.53's ``exec``
  takes a fixed list of string arguments, so the program's path is spliced in here);
* the shared functions of ``fiji-scripts/golddigger-common.ijm``.

Non-ASCII characters in those strings are written as ``fromCharCode(...)``: ImageJ reads
macro files in the platform charset and has no ``\\u`` escapes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from golddigger import __version__
from golddigger.errors import GoldDiggerError
from golddigger.imagej.options import COMMANDS, Field
from golddigger.imagej.options import help_html as options_help_html
from golddigger.io.rois import CLASS_COLORS, CLASS_GROUPS

__all__ = [
    "MENU_FOLDER",
    "Installed",
    "command_files",
    "golddigger_argv",
    "install",
    "macro_string",
    "render_command",
    "scripts_dir",
    "uninstall",
]

logger = logging.getLogger(__name__)

#: The folder under ``plugins/`` (its name is the submenu of Plugins).
MENU_FOLDER = "Gold Digger"
_MARKER = "//@GENERATED@"
_COMMON = "golddigger-common.ijm"


def scripts_dir() -> Path:
    """Where the ``.ijm`` sources are: ``$GOLDDIGGER_FIJI_SCRIPTS``, else the repository's
    ``fiji-scripts/`` (beside ``src/``), else the copy a wheel installs under
    ``<prefix>/share/golddigger/``."""
    env = os.environ.get("GOLDDIGGER_FIJI_SCRIPTS")
    if env:
        path = Path(env)
    else:
        from golddigger.model.folder import installed_data_dir

        path = installed_data_dir("fiji-scripts")
    if not (path / _COMMON).is_file():
        raise GoldDiggerError(f"the Gold Digger ImageJ macros are not in {path}; set "
                              "GOLDDIGGER_FIJI_SCRIPTS to the fiji-scripts folder")
    return path


def command_files() -> dict[str, str]:
    """Menu command -> macro file name (ImageJ turns ``_`` into spaces in the menu)."""
    return {name: name.replace(" ", "_") + ".ijm" for name in COMMANDS}


def golddigger_argv() -> list[str]:
    """How to run this golddigger: the venv's ``golddigger`` script beside the Python
    running now, else ``python -m golddigger.cli.main``. Absolute paths."""
    bindir = Path(sys.executable).parent
    for name in ("golddigger", "golddigger.exe"):
        script = bindir / name
        if script.is_file():
            return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "golddigger.cli.main"]


def macro_string(text: str) -> str:
    """A macro-language expression for ``text``: a quoted string with ``\\`` and ``"``
    escaped; non-ASCII characters (and control characters) as ``fromCharCode(n)``."""
    parts: list[str] = []
    buf = ""
    for ch in str(text):
        code = ord(ch)
        if 32 <= code < 127:
            buf += "\\\\" if ch == "\\" else '\\"' if ch == '"' else ch
        else:
            if buf:
                parts.append(f'"{buf}"')
                buf = ""
            if code > 0xFFFF:  # ImageJ strings are UTF-16: write the surrogate pair
                hi = 0xD800 + ((code - 0x10000) >> 10)
                lo = 0xDC00 + ((code - 0x10000) & 0x3FF)
                parts.append(f"fromCharCode({hi}, {lo})")
            else:
                parts.append(f"fromCharCode({code})")
    if buf or not parts:
        parts.append(f'"{buf}"')
    return " + ".join(parts)


def _dialog_code(command: str, fields: Sequence[Field]) -> str:
    """``gdAsk()``: options from the macro, else (run by a macro without options) the
    defaults, else a dialog; returns a macro option string."""
    lines = [
        "// The options: from the macro that ran this command, else (a macro gave none) the",
        "// defaults, else (a menu click) from a dialog, which the macro recorder records.",
        "function gdAsk() {",
        '\topts = "" + call("ij.Macro.getOptions");',
        '\tif (opts != "null" && lengthOf(opts) > 0) return opts;',
        '\tif (gdFromMacro()) return "";',
        f"\tDialog.create({macro_string('Gold Digger: ' + command)});",
    ]
    for f in fields:
        label = macro_string(f.label)
        if f.kind == "number":
            lines.append(f"\tDialog.addNumber({label}, {float(f.default):g}, {f.digits}, 8, "
                         '"");')
        elif f.kind == "string":
            lines.append(f"\tDialog.addString({label}, {macro_string(str(f.default))}, 24);")
        elif f.kind == "directory":
            lines.append(f"\tDialog.addDirectory({label}, {macro_string(str(f.default))});")
        elif f.kind == "choice":
            choices = ", ".join(macro_string(c) for c in f.choices)
            lines.append(f"\tDialog.addChoice({label}, newArray({choices}), "
                         f"{macro_string(str(f.default))});")
        else:
            lines.append(f"\tDialog.addCheckbox({label}, {'true' if f.default else 'false'});")
    help_html = options_help_html(command, fields)
    lines.append(f"\tDialog.addHelp({macro_string(help_html)});")
    lines.append("\tDialog.show();")
    lines.append('\ts = "";')
    for f in fields:
        key = f.key
        if f.kind == "number":
            lines.append(f'\ts = s + "{key}=" + d2s(Dialog.getNumber(), 9) + " ";')
        elif f.kind in ("string", "directory"):
            lines.append(f'\ts = s + "{key}=[" + Dialog.getString() + "] ";')
        elif f.kind == "choice":
            lines.append(f'\ts = s + "{key}=" + Dialog.getChoice() + " ";')
        else:
            lines.append(f'\tif (Dialog.getCheckbox()) s = s + "{key} ";')
    lines += [
        "\t// Record the command now, with the dialog's options only: the temporary files the",
        "\t// command saves and opens later must not reach the recorded macro.",
        '\tcall("ij.plugin.frame.Recorder.saveCommand");',
        "\treturn s;",
        "}",
    ]
    return "\n".join(lines)


def _call_code(argv: Sequence[str]) -> str:
    """``gdCall(...)``: run ``golddigger imagej --call`` with ``exec`` (no shell)."""
    prog = ", ".join(macro_string(a) for a in argv)
    return "\n".join([
        "// Run the golddigger program (an argument array: no shell, any file name is safe);",
        "// returns what it printed. Values are passed as --name=value, so a value that",
        "// starts with '-' is not taken for an option.",
        "function gdCall(what, image, roi, rois, out, opts, slices, stackSize, current, unit,",
        "\t\tname, groups) {",
        f'\treturn exec({prog}, "imagej", "--call=" + what, "--image=" + image,',
        '\t\t"--roi=" + roi, "--rois=" + rois, "--out=" + out, "--options=" + opts,',
        '\t\t"--slices=" + slices, "--stack-size=" + stackSize, "--current-slice=" + current,',
        '\t\t"--unit=" + unit, "--name=" + name, "--groups=" + groups);',
        "}",
        "",
        "// The same, started in the background (Esc can stop it: see gdRun).",
        "function gdCallDetached(what, image, roi, rois, out, opts, slices, stackSize, current,",
        "\t\tunit, name, groups) {",
        f'\treturn exec({prog}, "imagej", "--call=" + what, "--detach", "--image=" + image,',
        '\t\t"--roi=" + roi, "--rois=" + rois, "--out=" + out, "--options=" + opts,',
        '\t\t"--slices=" + slices, "--stack-size=" + stackSize, "--current-slice=" + current,',
        '\t\t"--unit=" + unit, "--name=" + name, "--groups=" + groups);',
        "}",
    ])


def render_command(command: str, source: str, common: str,
                   argv: Sequence[str] | None = None) -> str:
    """The installed macro text of ``command`` from its source and the common functions."""
    if _MARKER not in source:
        raise GoldDiggerError(f"{command}: the macro source has no {_MARKER} line")
    argv = list(argv or golddigger_argv())
    _, fields = COMMANDS[command]
    groups = sorted(CLASS_GROUPS.items(), key=lambda kv: kv[1])
    generated = "\n".join([
        "// ---- generated by golddigger install-fiji: do not edit, reinstall instead ----",
        f"var GD_VERSION = {macro_string(__version__)};",
        f"var GD_COMMAND = {macro_string(command)};",
        f"var GD_PROGRAM = {macro_string(' '.join(argv))};",
        f"var GD_PROGRAM_FILE = {macro_string(argv[0])};",
        "var GD_GROUPS = newArray(" + ", ".join(str(g) for _, g in groups) + ");",
        "var GD_COLOURS = newArray(" + ", ".join(
            macro_string(CLASS_COLORS.get(d, "#ffff00")) for d, _ in groups) + ");",
        _call_code(argv),
        "",
        _dialog_code(command, fields),
        "",
        common.rstrip(),
        "// a missing program stops here with a message (printed on the terminal in -batch",
        "// runs) rather than failing later",
        "gdRequireBackend();",
        "// ---- end of the generated part ----",
    ])
    # functions and var declarations may come anywhere in an ImageJ macro file
    return source.replace(_MARKER, generated, 1)


@dataclass
class Installed:
    folder: Path
    files: list[Path]
    argv: list[str]


def _plugins_dir(target: Path) -> Path:
    target = Path(target).expanduser()
    if target.name == "plugins" and target.is_dir():
        return target
    if target == Path.home() / ".imagej" and not target.exists():
        target.mkdir()  # Debian's launcher makes it at its first start; we may be first
    if not target.is_dir():
        raise GoldDiggerError(f"{target} is not a folder; give a Fiji.app folder or an ImageJ "
                              "folder (Debian's ImageJ: ~/.imagej)")
    plugins = target / "plugins"
    if not plugins.is_dir():
        looks_ij = any((target / n).exists() for n in ("jars", "macros", "luts", "ij.jar",
                                                       "IJ_Prefs.txt"))
        if not looks_ij and target != Path.home() / ".imagej":
            raise GoldDiggerError(f"{target} has no plugins/ folder and does not look like "
                                  "Fiji or ImageJ; give the Fiji.app folder or ~/.imagej")
        plugins.mkdir()
    return plugins


def install(target: str | os.PathLike, argv: Sequence[str] | None = None,
            overwrite: bool = True) -> Installed:
    """Install the menu commands into ``target`` (Fiji.app, an ImageJ folder, or its
    ``plugins/``); returns what was written. ImageJ must be restarted (or Help > Refresh
    Menus) to show them."""
    from golddigger.io.safe import atomic_write_bytes

    src = scripts_dir()
    common = (src / _COMMON).read_text(encoding="utf-8")
    folder = _plugins_dir(Path(target)) / MENU_FOLDER
    folder.mkdir(exist_ok=True)
    argv = list(argv or golddigger_argv())
    files = []
    for command, filename in command_files().items():
        path = folder / filename
        if path.exists() and not overwrite:
            raise GoldDiggerError(f"{path} exists; use --overwrite")
        text = render_command(command, (src / filename).read_text(encoding="utf-8"), common,
                              argv)
        if any(ord(c) > 127 for c in text):
            raise GoldDiggerError(f"{filename}: non-ASCII text left in the macro")
        atomic_write_bytes(path, text.encode("ascii"))
        files.append(path)
    logger.info("installed %d commands in %s", len(files), folder)
    return Installed(folder, files, argv)


def uninstall(target: str | os.PathLike) -> list[Path]:
    """Remove the installed commands (and the folder when it is left empty)."""
    folder = _plugins_dir(Path(target)) / MENU_FOLDER
    removed = []
    for filename in command_files().values():
        p = folder / filename
        if p.is_file():
            p.unlink()
            removed.append(p)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return removed
