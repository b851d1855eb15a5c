"""`drift completion bash|zsh|tcsh`: a shell completion script, generated from the parser by shtab.

source <(drift completion bash)                     # this shell
drift completion zsh > "${fpath[1]}/_drift"          # every zsh
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import shtab

__all__ = ["SHELLS", "add_commands"]

SHELLS = ("bash", "zsh", "tcsh")


def _cmd_completion(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.root_parser
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    sys.stdout.flush()
    return 0


def add_commands(commands: Any, root: argparse.ArgumentParser) -> None:
    """Register `completion` on the `drift` subparsers (`root` is the whole command line's parser)."""
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or tcsh)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=_cmd_completion, root_parser=root)
