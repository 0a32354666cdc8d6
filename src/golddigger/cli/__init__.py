"""The ``golddigger`` command. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``."""
