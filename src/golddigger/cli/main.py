"""Entry point of the ``golddigger`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from golddigger import __version__
from golddigger.cli._common import CliError, configure_logging
from golddigger.errors import GoldDiggerError

#: Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("detect", "train", "evaluate", "analyze", "synth", "demo", "imagej",
               "install_fiji", "models", "export_bioimageio")

logger = logging.getLogger("golddigger")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="golddigger",
        description="Find immunogold particles in electron micrographs.",
        epilog="Run 'golddigger COMMAND --help' for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"golddigger {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"golddigger.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"golddigger.cli.{name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    return parser


def _is_validation_error(err: Exception) -> bool:
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, ValidationError)


def _one_line(err: Exception) -> str:
    from golddigger.model.folder import _one_line as one_line

    return one_line(err)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some inputs failed, 2 usage/input error,
    3 a bug (any exception that is not a `GoldDiggerError`), 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    restore = configure_logging(quiet=getattr(args, "quiet", False),
                                verbose=getattr(args, "verbose", 0))
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        print(f"golddigger {args.command}: error: {err}", file=sys.stderr)
        return 2
    except GoldDiggerError as err:  # the user's input, with its fix
        print(f"golddigger {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"golddigger {args.command}: interrupted; finished outputs are kept, "
              "unfinished ones were not written", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"golddigger {args.command}: error: out of memory; try --tile-size 512 or "
              "fewer --threads", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"golddigger {args.command}: error: {err.strerror or err}"
              f"{': ' + str(err.filename) if err.filename else ''}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else is a bug, not the user's doing
        if _is_validation_error(err):  # pydantic: settings the user gave
            print(f"golddigger {args.command}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        print(f"golddigger {args.command}: internal error ({type(err).__name__}: "
              f"{' '.join(str(err).split())}); this is a bug in Gold Digger, please report it"
              + ("" if getattr(args, "verbose", 0) else " (run with -v to see the traceback)"),
              file=sys.stderr)
        if getattr(args, "verbose", 0):
            traceback.print_exc(file=sys.stderr)
        return 3
    finally:
        restore()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
