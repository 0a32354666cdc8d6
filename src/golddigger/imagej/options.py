"""The options of the Gold Digger menu commands, shared by every path that runs them.

A command's options are declared once, as `Field` s. The same declaration drives

* the ImageJ dialog (`ij.gui.GenericDialog` in the Python-hosted path, ``Dialog.*`` in the
  installed ``.ijm`` macros): each field's label starts with its macro key, so ImageJ's
  macro recorder writes ``run("Detect Gold", "threshold=0.4 classes=6 shape=points")``;
* the parsing of those macro option strings (`parse_options`), in the Python-hosted
  command listener and in ``golddigger imagej --call``, which the ``.ijm`` files run.

Macro option strings follow ImageJ: ``key=value`` pairs separated by spaces, values with
spaces in square brackets (``folder=[/data/my images]``), and a check box is on when its
key appears alone (``whole_stack``). Keys not given take the field's default; this is what
``run("Detect Gold", "")`` in a macro gets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from golddigger.errors import GoldDiggerError

__all__ = [
    "ABOUT",
    "ANALYZE_FIELDS",
    "COMMANDS",
    "DETECT_FIELDS",
    "FOLDER_FIELDS",
    "MENU_LAYOUT",
    "TRAINING_FIELDS",
    "Field",
    "about_text",
    "format_options",
    "help_html",
    "parse_classes",
    "parse_options",
    "recorded_line",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Field:
    """One option of a menu command.

    Attributes
    ----------
    key : str
        The macro key (lower case, no spaces), e.g. ``"threshold"``.
    label : str
        The dialog label. Its first word, lower-cased, is ``key`` (ImageJ derives the macro
        key from the label that way); underscores show as spaces in the dialog.
    kind : {"number", "string", "choice", "checkbox", "directory"}
    default : float, str or bool
    choices : tuple of str
        The values of a ``"choice"`` field.
    help : str
        One line shown under the field in the dialog and in the documentation.
    digits : int
        Decimal places shown for numbers.
    """

    key: str
    label: str
    kind: str
    default: float | str | bool
    choices: tuple[str, ...] = ()
    help: str = ""
    digits: int = 2

    def __post_init__(self) -> None:
        first = self.label.split(" ")[0].lower().rstrip(":")
        if first != self.key:
            raise ValueError(f"label {self.label!r} must start with its key {self.key!r}")
        if self.kind not in ("number", "string", "choice", "checkbox", "directory"):
            raise ValueError(f"unknown field kind {self.kind!r}")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of {self.choices}")


_MODEL = Field("model", "Model", "string", "default",
               help="a shipped model's name or a model folder ('default': the shipped one)")
_THRESHOLD = Field("threshold", "Threshold (0 = model's)", "number", 0.0,
                   help="score threshold in (0, 1); lower finds more; 0 = the model's tuned one")
_CLASSES = Field("classes", "Classes", "string", "all",
                 help="particle diameters to report in nm, e.g. 6,12 ('all': every class)")
_SHAPE = Field("shape", "Shape", "choice", "ovals", ("ovals", "points"),
               help="ROIs drawn as ovals of the particle size, or as points")
_SIZING = Field("sizing", "Sizing", "choice", "model", ("model", "maps", "image"),
                help="size class from the class maps or measured on the image ('model': "
                     "the model's setting)")
_TTA = Field("tta", "Tta", "choice", "1", ("1", "2", "4", "8"),
             help="test-time augmentation passes (N times slower)")
_PRECISION = Field("precision", "Precision", "choice", "auto", ("auto", "float32", "bfloat16"),
                   help="network arithmetic (auto: bfloat16 where the CPU does it natively)")
_PIXEL = Field("pixel_size", "Pixel_size (nm, 0 = calibration)", "number", 0.0, digits=4,
               help="nm per pixel; 0 = from the image's calibration (Image > Properties)")

#: Plugins > Gold Digger > Detect Gold.
DETECT_FIELDS: tuple[Field, ...] = (
    _MODEL, _THRESHOLD, _CLASSES, _SHAPE,
    Field("region", "Region", "choice", "selection", ("selection", "roi_manager", "image"),
          help="count inside the current selection (whole image if none), the area ROIs "
               "of the ROI Manager (not the gold-* particles), or the whole image"),
    _PIXEL,
    Field("whole_stack", "Whole_stack", "checkbox", False,
          help="every slice of a stack (default: the current slice)"),
    _SIZING, _TTA, _PRECISION,
    Field("rerun", "Rerun", "choice", "replace", ("replace", "add"),
          help="replace: this image's earlier gold ROIs and table rows (of the slices "
               "searched) give way to the new ones; add: keep them"),
    Field("add_to", "Add_to", "choice", "roi_manager", ("roi_manager", "overlay", "both"),
          help="where the particle ROIs go: the ROI Manager, the image's overlay, or both"),
    Field("results", "Results (copy to ImageJ's Results table)", "checkbox", False,
          help="also put the particle rows into ImageJ's Results table (they are always "
               "in 'Gold Digger Results')"),
)

#: Plugins > Gold Digger > Detect Gold in Folder.
FOLDER_FIELDS: tuple[Field, ...] = (
    Field("input", "Input", "directory", "",
          help="folder of images (TIFF, PNG, JPEG); every slice of stacks is searched"),
    Field("output", "Output", "directory", "",
          help="folder for the results (default: a 'golddigger' folder inside the input)"),
    _MODEL, _THRESHOLD, _CLASSES, _SHAPE, _PIXEL,
    Field("overwrite", "Overwrite", "checkbox", False, help="replace existing results"),
    Field("resume", "Resume", "checkbox", False,
          help="skip images finished by an earlier run into the same output folder"),
    Field("overlay", "Overlay", "checkbox", False, help="also write <name>_overlay.png"),
    _SIZING, _TTA, _PRECISION,
)

#: Plugins > Gold Digger > Add to Training Set.
TRAINING_FIELDS: tuple[Field, ...] = (
    Field("folder", "Folder", "directory", "",
          help="the training folder (<name>.tif and <name>.csv are written there)"),
    Field("name", "Name", "string", "",
          help="file name stem (default: the image's title)"),
    Field("default_class", "Default_class", "number", 6.0, digits=1,
          help="diameter (nm) of points that state no class (no name, group or property)"),
    _PIXEL,
    Field("whole_stack", "Whole_stack", "checkbox", False,
          help="save every slice of a stack (default: the current slice)"),
    Field("overwrite", "Overwrite", "checkbox", False, help="replace an existing pair"),
)

#: Plugins > Gold Digger > Analyze Gold Distribution.
ANALYZE_FIELDS: tuple[Field, ...] = (
    Field("region", "Region", "choice", "selection", ("selection", "roi_manager", "hull"),
          help="the analysis region: the current selection, the area ROIs of the ROI "
               "Manager (several named ones: analysed region by region), or estimated "
               "from the particles (Ripley-Rasson; area and densities only: no tests unless "
               "Convex_estimate)"),
    Field("convex_estimate", "Convex_estimate", "checkbox", False,
          help="estimate a convex region from the particles (convex membranes only): with "
               "no region, run the tests on it"),
    Field("default_class", "Default_class", "number", 6.0, digits=1,
          help="diameter (nm) of point ROIs that state no class"),
    _PIXEL,
    Field("simulations", "Simulations", "number", 499.0, digits=0,
          help="random patterns per null model for the tests (0: no tests)"),
    Field("cluster_distance", "Cluster_distance", "number", 30.0, digits=1,
          help="particles at most this far apart (nm, centre to centre) form clusters"),
    Field("min_cluster_size", "Min_cluster_size", "number", 3.0, digits=0,
          help="smallest linked group counted as a cluster"),
    Field("output", "Output", "directory", "",
          help="folder for the tables (CSV) and plots (PNG) (default: a temporary folder; "
               "the folder is named in the Log)"),
    Field("overwrite", "Overwrite", "checkbox", False,
          help="replace earlier results in the output folder"),
    Field("append", "Append", "checkbox", True,
          help="add the rows to the open tables (one image after another) instead of "
               "replacing them"),
    Field("plots", "Plots", "checkbox", True, help="open the plots (PNG) in ImageJ"),
)

#: Menu command name -> (internal name, fields).
COMMANDS: dict[str, tuple[str, tuple[Field, ...]]] = {
    "Detect Gold": ("detect", DETECT_FIELDS),
    "Detect Gold in Folder": ("folder", FOLDER_FIELDS),
    "Add to Training Set": ("training", TRAINING_FIELDS),
    "Analyze Gold Distribution": ("analyze", ANALYZE_FIELDS),
}

#: The command that says what Gold Digger is (version, model, what to cite, documentation).
ABOUT = "About Gold Digger"

#: Plugins > Gold Digger, top to bottom ("-": a separator): the command used most first.
#: ``golddigger install-fiji`` writes this order into the menu (a ``plugins.config``), and
#: `golddigger.imagej.listener.ensure_menus` adds missing items in it.
MENU_LAYOUT: tuple[str, ...] = (
    "Detect Gold", "Detect Gold in Folder", "-",
    "Add to Training Set", "Analyze Gold Distribution", "-",
    ABOUT,
)

_TOKEN = re.compile(r"\s*([^\s=\[\]]+)(?:=(\[[^\]]*\]|\S*))?")


def _tokens(text: str) -> dict[str, str | None]:
    """``key=value`` / ``key=[value with spaces]`` / ``key`` tokens (ImageJ's syntax)."""
    out: dict[str, str | None] = {}
    pos = 0
    text = text or ""
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip():
                raise GoldDiggerError(f"cannot read the macro options near {text[pos:]!r}; "
                                      "write key=value, with [brackets] around values "
                                      "that contain spaces")
            break
        key, value = m.group(1).lower(), m.group(2)
        if value is not None and value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        out[key] = value
        pos = m.end()
    return out


def parse_options(text: str | None, fields: Sequence[Field],
                  command: str = "command") -> dict[str, float | str | bool]:
    """Values of ``fields`` from an ImageJ macro option string (defaults where absent).

    Raises
    ------
    GoldDiggerError
        A number that is not a number, or a choice that is not one of the choices.
    """
    tokens = _tokens(text or "")
    known = {f.key for f in fields}
    tokens.pop("preview", None)  # Detect Gold's dialog-only Preview box, when recorded ticked
    unknown = sorted(set(tokens) - known)
    if unknown:
        logger.warning("%s: ignored unknown option(s) %s (known: %s)", command,
                       ", ".join(unknown), ", ".join(sorted(known)))
    values: dict[str, float | str | bool] = {}
    for f in fields:
        if f.key not in tokens:
            values[f.key] = False if f.kind == "checkbox" else f.default
            continue
        raw = tokens[f.key]
        if f.kind == "checkbox":
            values[f.key] = raw is None or raw.lower() in ("", "true", "1", "yes", "on")
        elif f.kind == "number":
            try:
                values[f.key] = float(raw or "nan")
            except ValueError:
                raise GoldDiggerError(f"{command}: {f.key}={raw!r} is not a number") from None
            if values[f.key] != values[f.key]:  # NaN: "key=" with no value
                values[f.key] = f.default
        elif f.kind == "choice":
            value = (raw or "").strip()
            match = [c for c in f.choices if c.lower() == value.lower()]
            if not match:
                raise GoldDiggerError(f"{command}: {f.key}={value!r} is not one of "
                                      f"{', '.join(f.choices)}")
            values[f.key] = match[0]
        else:
            values[f.key] = (raw or "").strip()
    return values


def format_options(values: Mapping[str, float | str | bool], fields: Sequence[Field]) -> str:
    """The macro option string for ``values`` (what the recorder would write)."""
    parts = []
    for f in fields:
        if f.key not in values:
            continue
        v = values[f.key]
        if f.kind == "checkbox":
            if v:
                parts.append(f.key)
            continue
        text = f"{float(v):g}" if f.kind == "number" else str(v)
        if text == "" or any(c.isspace() for c in text):
            text = f"[{text}]"
        parts.append(f"{f.key}={text}")
    return " ".join(parts)


def recorded_line(command: str, options: str, script: bool = False) -> str:
    """The line ImageJ's macro recorder gets for ``command`` run with ``options``:
    ``run("Detect Gold", "threshold=0.4 classes=6");`` (``IJ.run(...)`` when the recorder
    records JavaScript, ``script``), with ``\\``, ``"`` and line breaks escaped."""

    def literal(text: str) -> str:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + text.replace("\n", "\\n").replace("\r", "\\r") + '"'

    return f"{'IJ.run(' if script else 'run('}{literal(command)}, {literal(options)});\n"


def parse_classes(text: str) -> list[float | str] | None:
    """``"all"`` -> None; ``"6,12"`` / ``"6 12"`` / ``"6nm; 12 nm"`` -> [6.0, 12.0];
    ranges stay text: ``"5-8, 12"`` -> ["5-8", 12.0]."""
    text = (text or "").strip().lower()
    if text in ("", "all", "*"):
        return None
    text = re.sub(r"\s*-\s*", "-", text.replace("nm", " ")).strip()
    parts = [p for p in re.split(r"[,;\s]+", text) if p]
    try:
        return [p if "-" in p.lstrip("-") else float(p) for p in parts]
    except ValueError:
        raise GoldDiggerError(f"classes={text!r}: give diameters in nm separated by commas, "
                              "e.g. 6,12 (or ranges such as 5-8), or 'all'") from None


def help_html(command: str, fields: Sequence[Field]) -> str:
    """The dialog's Help text: each field, then About (version, default model, what to
    cite, where the documentation is)."""
    from golddigger import __version__
    from golddigger.model.folder import DEFAULT_MODEL

    rows = "<br>".join(f"<b>{f.label.replace('_', ' ')}</b>: {f.help}" for f in fields)
    return ("<html><b>Gold Digger: " + command + "</b><br>" + rows + "<br><br>"
            f"<b>About</b>: Gold Digger {__version__}, default model {DEFAULT_MODEL}. "
            "Documentation: docs/imagej.md of Gold Digger (the commands, their options, "
            "batch macros). If you publish results, please cite the method, Jerez et al., "
            "<i>Scientific Reports</i> 2021, and Gold Digger " + __version__ + ".</html>")


def about_text(html: bool = False) -> str:
    """What *About Gold Digger* shows: version, default model, what to cite, where the
    documentation is (plain lines, or HTML for ImageJ's message dialog)."""
    from golddigger import __version__
    from golddigger.export.bioimageio import CITATION_DOI, CITATION_TEXT
    from golddigger.model.folder import DEFAULT_MODEL, installed_data_dir

    docs = installed_data_dir("docs") / "imagej.md"
    where = (str(docs) if docs.is_file()
             else "docs/imagej.md in the Gold Digger source")
    lines = [
        f"Gold Digger {__version__}: immunogold particles in electron micrographs",
        f"Default model: {DEFAULT_MODEL}",
        "If you publish results, please cite the method:",
        f"  {CITATION_TEXT} https://doi.org/{CITATION_DOI}",
        f"and the software: Gold Digger {__version__} (model {DEFAULT_MODEL}).",
        f"Documentation: {where}",
    ]
    if not html:
        return "\n".join(lines)
    link = f'<a href="https://doi.org/{CITATION_DOI}">doi:{CITATION_DOI}</a>'
    return ("<html><h3>Gold Digger " + __version__ + "</h3>"
            "Immunogold particles in electron micrographs.<br>"
            f"Default model: <b>{DEFAULT_MODEL}</b><br><br>"
            "If you publish results, please cite the method:<br>"
            f"{CITATION_TEXT} {link}<br>"
            f"and the software: Gold Digger {__version__} (model {DEFAULT_MODEL}).<br><br>"
            f"Documentation: {where}</html>")
