"""``golddigger imagej``: ImageJ or Fiji started from Python, with the Gold Digger commands
(Plugins > Gold Digger) run in this process, the model loaded once."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from golddigger.cli._common import CliError, new_parser

logger = logging.getLogger(__name__)

EXAMPLES = """\
  golddigger imagej                                  # ImageJ 1 (Debian's, or $IJ_JAR)
  golddigger imagej synapse.tif stack.tif            # ... with these images open
  golddigger imagej --fiji ~/Fiji.app synapse.tif    # a local Fiji (or set FIJI_HOME)
  golddigger imagej --heap 8g --macro batch.ijm --batch images/S1.tif

Then draw the membrane outline and choose Plugins > Gold Digger > Detect Gold; macros can
call run("Detect Gold", "threshold=0.4 whole_stack"). Nothing is downloaded and no network
port is opened. To use the commands in an ImageJ started the usual way, install them with
'golddigger install-fiji'.
"""


def add_parser(sub) -> None:
    from golddigger.imagej.calls import add_call_arguments

    p = new_parser(sub, "imagej", help="start ImageJ/Fiji with the Gold Digger commands",
                   description="Start ImageJ 1 or a local Fiji inside Python, with "
                               "Plugins > Gold Digger served by this process (the model is "
                               "loaded once).", examples=EXAMPLES)
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="images to open")
    p.add_argument("--fiji", type=Path, metavar="PATH",
                   help="a Fiji.app folder, started through pyimagej (default: $FIJI_HOME)")
    p.add_argument("--ij-jar", type=Path, metavar="JAR",
                   help="ImageJ 1's ij.jar (default: $IJ_JAR, then /usr/share/java/ij.jar)")
    p.add_argument("--ij-dir", type=Path, metavar="DIR",
                   help="ImageJ 1: the folder holding plugins/ (default: ~/.imagej if it "
                        "has one)")
    p.add_argument("--heap", metavar="SIZE",
                   help="maximum Java heap, e.g. 8g, 8192m or 50%% (default: Java's)")
    p.add_argument("--macro", type=Path, metavar="FILE",
                   help="run this ImageJ macro after start-up (and after opening IMAGEs)")
    p.add_argument("--macro-arg", default="", metavar="TEXT",
                   help="the argument the macro gets from getArgument()")
    p.add_argument("--batch", action="store_true",
                   help="quit when the macro is done; errors go to stderr, not dialogs")
    p.add_argument("--headless", action="store_true",
                   help="no windows (no ROI Manager: ROIs go to the image overlay and a "
                        "RoiSet in --output)")
    p.add_argument("--output", type=Path, metavar="DIR",
                   help="with --headless: folder for RoiSets")
    add_call_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "serve", False):
        from golddigger.imagej.service import serve

        return serve()
    if getattr(args, "call", None):
        from golddigger.imagej.calls import run_call

        return run_call(args)
    from golddigger.imagej import session

    if args.batch and not args.macro:
        raise CliError("--batch needs --macro FILE")
    for image in args.images:
        if not image.is_file():
            raise CliError(f"{image}: no such image file")
    try:
        code = session.run(images=args.images, fiji=args.fiji, ij_jar=args.ij_jar,
                           heap=args.heap, ij_dir=args.ij_dir, macro=args.macro,
                           macro_arg=args.macro_arg, batch=args.batch,
                           headless=True if args.headless else None, output_dir=args.output)
    except ValueError as err:  # GoldDiggerError and friends, once Java may be running
        print(f"golddigger imagej: error: {err}", file=sys.stderr)
        code = 2
    _exit_through_java(code)
    return code


def _exit_through_java(code: int) -> None:
    """End the process through Java's System.exit: Python exiting on its own while ImageJ's
    threads still wind down (after "Quit") can abort the process."""
    import jpype

    sys.stdout.flush()
    sys.stderr.flush()
    if jpype.isJVMStarted():
        from java.lang import System

        System.exit(int(code))
