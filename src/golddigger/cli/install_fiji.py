"""``golddigger install-fiji``: add Plugins > Gold Digger to a Fiji or ImageJ folder."""

from __future__ import annotations

from pathlib import Path

from golddigger.cli._common import new_parser

EXAMPLES = """\
  golddigger install-fiji ~/Fiji.app
  golddigger install-fiji ~/.imagej                  # Debian's ImageJ (apt-get install imagej)
  golddigger install-fiji ~/Fiji.app --uninstall

Installs Detect Gold, Detect Gold in Folder, Add to Training Set and Analyze Gold
Distribution as ImageJ macros in DIR/plugins/Gold Digger/. They run this golddigger
program (its absolute path is recorded: reinstall after moving it). Restart ImageJ, or use
Help > Refresh Menus. In an ImageJ started with 'golddigger imagej' the same commands run
inside Python instead.
"""


def add_parser(sub) -> None:
    p = new_parser(sub, "install-fiji", help="install the Gold Digger menu commands in Fiji",
                   description="Install the Gold Digger commands (Plugins > Gold Digger) in a "
                               "Fiji.app or ImageJ folder.", examples=EXAMPLES)
    p.add_argument("target", type=Path, metavar="DIR",
                   help="a Fiji.app folder, or an ImageJ folder (Debian: ~/.imagej)")
    p.add_argument("--uninstall", action="store_true", help="remove the commands again")
    p.set_defaults(func=run)


def run(args) -> int:
    from golddigger.imagej.install import install, uninstall

    if args.uninstall:
        removed = uninstall(args.target)
        if not args.quiet:
            print(f"removed {len(removed)} command(s) from {args.target}")
        return 0
    done = install(args.target)
    if not args.quiet:
        print(f"installed in {done.folder}:")
        for name in done.commands:
            print(f"  Plugins > Gold Digger > {name}")
        print(f"they run: {' '.join(done.argv)}")
        print("restart ImageJ (or Help > Refresh Menus) to see them")
    return 0
