"""``python -m golddigger``: the command line (same as the ``golddigger`` command)."""

from golddigger.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
