"""What every subcommand shares: options, logging, input discovery, progress."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from golddigger.io.images import IMAGE_SUFFIXES

__all__ = [
    "CliError",
    "add_common_options",
    "configure_logging",
    "expand_images",
    "progress",
]


class CliError(Exception):
    """A usage problem: printed as one line, exit code 2."""


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose``, on every subcommand."""
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only errors (no progress bar, no summary)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log output (-vv for debug)")


def new_parser(sub, name: str, help: str, description: str, examples: str
               ) -> argparse.ArgumentParser:
    """A subcommand parser with the house style: description, examples, common options."""
    p = sub.add_parser(name, help=help, description=description,
                       epilog="examples:\n" + examples,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(p)
    return p


def configure_logging(quiet: bool = False, verbose: int = 0):
    """Send golddigger's log to stderr for one command; returns a function that undoes it
    (so calling `main` from Python leaves the logging state as it was)."""
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(
        verbose, logging.DEBUG)
    root = logging.getLogger("golddigger")
    old_level = root.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("golddigger: %(levelname)s: %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    if level < logging.WARNING:
        root.setLevel(level)
    # tifffile logs about odd files on its own (e.g. "ImageJ series metadata invalid or
    # corrupted file"); Gold Digger reports what matters in one line, so show them with -v
    tiff_log = logging.getLogger("tifffile")
    old_tiff_level = tiff_log.level
    tiff_log.setLevel(logging.WARNING if verbose else logging.CRITICAL)

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(old_level)
        tiff_log.setLevel(old_tiff_level)

    return restore


def expand_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted, not recursive).

    Raises
    ------
    CliError
        A path that does not exist, or a folder without images.
    """
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not p.name.startswith("."))
            if not found:
                raise CliError(f"{path}: no images in this folder (looked for "
                               f"{', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise CliError(f"{path}: no such file or folder")
    return out


def progress(iterable, total: int | None = None, desc: str = "", quiet: bool = False,
             unit: str = "it"):
    """A tqdm progress bar on stderr, silent with ``quiet`` or when not a terminal."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=quiet or None,
                leave=False, file=sys.stderr)
