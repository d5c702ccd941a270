#!/usr/bin/env python3
"""snnsim's command line in a checkout: `python experiment.py train|inference|eval|continue ...`.

The same CLI as the installed `snnsim` command; it lives in `snnsim.cli` (`--help` lists
every subcommand, model families' included).
"""
import sys

from snnsim.cli import build_parser, main  # noqa: F401  (build_parser: for scripts and tests)

if __name__ == "__main__":
    sys.exit(main())
