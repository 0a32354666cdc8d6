"""``golddigger install-fiji DIR``: put the Gold Digger menu commands into a Fiji.app or an
ImageJ folder (Debian's ImageJ: ``~/.imagej``).

The commands are ImageJ macros (which both Fiji and plain ImageJ 1 run) written to
``DIR/plugins/Gold Digger/`` with a small ``Gold_Digger.jar`` beside them that holds only a
``plugins.config``: it puts the commands under Plugins > Gold Digger in `MENU_LAYOUT`'s
order (Detect Gold first, separators, About last). ImageJ would otherwise list macro files
itself, sorted by name (Add to Training Set first); so the macro files are named
``detect-gold.txt`` etc., which ImageJ does not list (a ``.txt`` macro without an
underscore), and each menu item runs its file through ``ij.plugin.Macro_Runner``, exactly
as ImageJ runs a listed macro: ``run("Detect Gold", "...")`` is unchanged. Each macro is
made from its source in ``fiji-scripts/`` by replacing the line ``//@GENERATED@`` with

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
from golddigger.imagej.options import COMMANDS, MENU_LAYOUT, Field, about_text
from golddigger.imagej.options import help_html as options_help_html
from golddigger.io.rois import CLASS_COLORS, CLASS_GROUPS, PARTICLE_STROKE_WIDTH

__all__ = [
    "MENU_FOLDER",
    "MENU_JAR",
    "Installed",
    "command_files",
    "golddigger_argv",
    "install",
    "macro_string",
    "plugins_config",
    "render_command",
    "source_files",
    "scripts_dir",
    "uninstall",
]

logger = logging.getLogger(__name__)

#: The folder under ``plugins/`` (its name is the submenu of Plugins).
MENU_FOLDER = "Gold Digger"
#: The jar (in `MENU_FOLDER`) whose ``plugins.config`` lays out the menu; ImageJ loads a
#: plugin jar only when its name has an underscore.
MENU_JAR = "Gold_Digger.jar"
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


def _commands() -> list[str]:
    return [name for name in MENU_LAYOUT if name != "-"]


def source_files() -> dict[str, str]:
    """Menu command -> its macro source in ``fiji-scripts/`` (``Detect_Gold.ijm``)."""
    return {name: name.replace(" ", "_") + ".ijm" for name in _commands()}


def command_files() -> dict[str, str]:
    """Menu command -> installed macro file name (``detect-gold.txt``: ImageJ lists no
    ``.txt`` macro without an underscore in its menus, so only `plugins_config` places
    the commands)."""
    return {name: name.lower().replace(" ", "-") + ".txt" for name in _commands()}


#: File names of earlier installs (ImageJ listed these itself, sorted by name); removed by
#: `install` and `uninstall` so that no command appears twice.
_OLD_FILES = tuple(name.replace(" ", "_") + ".ijm" for name in COMMANDS)


def plugins_config() -> str:
    """The ``plugins.config`` of `MENU_JAR`: one line per `MENU_LAYOUT` entry, each
    command run by ImageJ's own macro runner from `MENU_FOLDER` (a path relative to the
    plugins folder, so a moved Fiji.app keeps working)."""
    files = command_files()
    lines = ["# Plugins > Gold Digger, written by golddigger install-fiji: the menu's order"]
    for name in MENU_LAYOUT:
        if name == "-":
            lines.append(f'Plugins>{MENU_FOLDER}, "-"')
        else:
            lines.append(f'Plugins>{MENU_FOLDER}, "{name}", '
                         f'ij.plugin.Macro_Runner("{MENU_FOLDER}/{files[name]}")')
    return "\n".join(lines) + "\n"


def _menu_jar() -> bytes:
    """A jar holding only `plugins_config` (ImageJ needs no class to read it)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("plugins.config", plugins_config())
    return buf.getvalue()


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
    defaults, else a dialog; returns a macro option string. ``gdDialog(current, message,
    preview)`` shows the dialog with the values of the option string ``current``, a
    message under the fields and (Detect Gold) a Preview box; Detect Gold's dialog runs
    through ``gdAskWithPreview`` (golddigger-common.ijm)."""
    preview = command == "Detect Gold"
    lines = [
        "// The options: from the macro that ran this command, else (a macro gave none) the",
        "// defaults, else (a menu click) from a dialog, which the macro recorder records.",
        "function gdAsk() {",
        '\topts = "" + call("ij.Macro.getOptions");',
        '\tif (opts != "null" && lengthOf(opts) > 0) return opts;',
        '\tif (gdFromMacro()) return "";',
        "\ts = gdAskWithPreview();" if preview else '\ts = gdDialog("", "", false);',
        "\t// Record the command now, with the dialog's options only: the temporary files the",
        "\t// command saves and opens later must not reach the recorded macro.",
        "\tgdRecord(s);",
        "\treturn s;",
        "}",
        "",
        "// The dialog, showing the values of the option string `current` (\"\": the defaults);",
        "// returns its options (with \"preview\" when that box is ticked).",
        "function gdDialog(current, message, preview) {",
        "\t// only this dialog's options are recorded (not those of a preview before it)",
        '\tcall("ij.plugin.frame.Recorder.setCommand", GD_COMMAND);',
        f"\tDialog.create({macro_string('Gold Digger: ' + command)});",
    ]
    for f in fields:
        label = macro_string(f.label)
        key = macro_string(f.key)
        if f.kind == "number":
            lines.append(f"\tDialog.addNumber({label}, parseFloat(gdValue(current, {key}, "
                         f'"{float(f.default):g}")), {f.digits}, 8, "");')
        elif f.kind == "string":
            lines.append(f"\tDialog.addString({label}, gdValue(current, {key}, "
                         f"{macro_string(str(f.default))}), 24);")
        elif f.kind == "directory":
            lines.append(f"\tDialog.addDirectory({label}, gdValue(current, {key}, "
                         f"{macro_string(str(f.default))}));")
        elif f.kind == "choice":
            choices = ", ".join(macro_string(c) for c in f.choices)
            lines.append(f"\tDialog.addChoice({label}, newArray({choices}), gdValue(current, "
                         f"{key}, {macro_string(str(f.default))}));")
        else:
            default = "true" if f.default else "false"
            lines.append(f"\tDialog.addCheckbox({label}, gdChecked(current, {key}, {default}));")
    lines.append('\tif (message != "") Dialog.addMessage(message);')
    lines.append('\tif (preview) Dialog.addCheckbox("Preview", gdFlag(current, "preview"));')
    help_html = options_help_html(command, fields)
    lines.append(f"\tDialog.addHelp({macro_string(help_html)});")
    lines.append("\tDialog.show();")
    lines.append('\ts = "";')
    for f in fields:
        key = f.key
        if f.kind == "number":
            lines.append(f'\ts = s + "{key}=" + gdNumber(Dialog.getNumber()) + " ";')
        elif f.kind in ("string", "directory"):
            lines.append(f'\ts = s + gdOption("{key}", Dialog.getString());')
        elif f.kind == "choice":
            lines.append(f'\ts = s + gdOption("{key}", Dialog.getChoice());')
        else:
            lines.append(f'\tif (Dialog.getCheckbox()) s = s + "{key} ";')
    lines += [
        '\tif (preview) if (Dialog.getCheckbox()) s = s + "preview ";',
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
        '\t\t"--unit=" + unit, "--name=" + name, "--groups=" + groups,',
        '\t\t"--layout=" + GD_LAYOUT);',
        "}",
        "",
        "// The same, started in the background (Esc can stop it: see gdRun).",
        "function gdCallDetached(what, image, roi, rois, out, opts, slices, stackSize, current,",
        "\t\tunit, name, groups) {",
        f'\treturn exec({prog}, "imagej", "--call=" + what, "--detach", "--image=" + image,',
        '\t\t"--roi=" + roi, "--rois=" + rois, "--out=" + out, "--options=" + opts,',
        '\t\t"--slices=" + slices, "--stack-size=" + stackSize, "--current-slice=" + current,',
        '\t\t"--unit=" + unit, "--name=" + name, "--groups=" + groups,',
        '\t\t"--layout=" + GD_LAYOUT);',
        "}",
    ])


def render_command(command: str, source: str, common: str,
                   argv: Sequence[str] | None = None) -> str:
    """The installed macro text of ``command`` from its source and the common functions."""
    if _MARKER not in source:
        raise GoldDiggerError(f"{command}: the macro source has no {_MARKER} line")
    argv = list(argv or golddigger_argv())
    _, fields = COMMANDS.get(command, ("about", ()))
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
        f"var GD_STROKE_WIDTH = {PARTICLE_STROKE_WIDTH:g};",
        "// the screen and the image window, for the result windows' places (gdLayoutArg)",
        'var GD_LAYOUT = "";',
        f"var GD_ABOUT_TEXT = {macro_string(about_text())};",
        f"var GD_ABOUT_HTML = {macro_string(about_text(html=True))};",
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
    #: The menu commands, top to bottom.
    commands: list[str]


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
    sources = source_files()
    for command, filename in command_files().items():
        path = folder / filename
        if path.exists() and not overwrite:
            raise GoldDiggerError(f"{path} exists; use --overwrite")
        text = render_command(command, (src / sources[command]).read_text(encoding="utf-8"),
                              common, argv)
        if any(ord(c) > 127 for c in text):
            raise GoldDiggerError(f"{filename}: non-ASCII text left in the macro")
        atomic_write_bytes(path, text.encode("ascii"))
        files.append(path)
    atomic_write_bytes(folder / MENU_JAR, _menu_jar())
    files.append(folder / MENU_JAR)
    for old in _OLD_FILES:  # an earlier install's macros would list the commands twice
        (folder / old).unlink(missing_ok=True)
    logger.info("installed %d commands in %s", len(files) - 1, folder)
    return Installed(folder, files, argv, _commands())


def uninstall(target: str | os.PathLike) -> list[Path]:
    """Remove the installed commands (and the folder when it is left empty)."""
    folder = _plugins_dir(Path(target)) / MENU_FOLDER
    removed = []
    for filename in (*command_files().values(), MENU_JAR, *_OLD_FILES):
        p = folder / filename
        if p.is_file():
            p.unlink()
            removed.append(p)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return removed
