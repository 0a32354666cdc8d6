"""Error messages in ImageJ's terms.

The engine speaks command line (``--pixel-size``, ``--overwrite``, "save as TIFF") and names
the files it read; in ImageJ those are dialog fields and menu paths, and the file is a
temporary copy the user never saw. `imagej_terms` rewrites a message for ImageJ.
"""

from __future__ import annotations

import re

__all__ = ["imagej_terms"]

_PHRASES = (
    # the calibration hint of golddigger.io.images
    (re.compile(r"give it with --pixel-size NM \(nm per pixel\), or set it in ImageJ "
                r"\(Image > Properties\) and save as TIFF"),
     "set it with Image > Properties (unit nm or micron), or type it (nm per pixel) in the "
     "dialog's Pixel size field"),
    (re.compile(r"\(--pixel-size is in nm per pixel\)"),
     "(the Pixel size field is in nm per pixel)"),
)

#: Command-line flags -> the dialog field of the same meaning.
_FIELDS = {
    "pixel-size": "Pixel size", "overwrite": "Overwrite", "resume": "Resume",
    "threshold": "Threshold", "classes": "Classes", "tta": "Tta", "sizing": "Sizing",
    "precision": "Precision", "whole-image-if-no-roi": "Whole image if no roi",
}

_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")
#: The installed commands' temporary copies: ``.../golddigger-<time>-<n>/image.tif`` etc.
_TEMP = re.compile(r"(?:[A-Za-z]:)?[^\s:;'\"]*golddigger-[0-9.E-]+[/\\][^\s:;'\"]*")


def imagej_terms(message: str, image: str = "the image") -> str:
    """``message`` with command-line flags named as dialog fields and temporary file paths
    replaced by ``image`` (the title of the image they are a copy of)."""
    text = str(message)
    for pattern, repl in _PHRASES:
        text = pattern.sub(repl, text)
    text = _TEMP.sub(image, text)

    def field(m: re.Match) -> str:
        name = _FIELDS.get(m.group(1), m.group(1).replace("-", " ").capitalize())
        return f"the dialog's {name} option"

    return _FLAG.sub(field, text)
