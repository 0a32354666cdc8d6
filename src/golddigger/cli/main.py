"""Entry point of the ``golddigger`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from golddigger import __version__
from golddigger.cli._common import CliError, configure_logging

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some inputs failed, 2 usage/input error,
    130 interrupted)."""
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
    except ValueError as err:  # GoldDiggerError and friends: the user's input
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
    finally:
        restore()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
