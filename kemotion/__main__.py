"""kemotion COMMAND [arguments ...]: every entry point behind one command, as `yolo TASK MODE ARGS` is for ultralytics.

`kemotion train +experiment=yolo_kemo` is `python -m kemotion.train +experiment=yolo_kemo`: runpy runs the command's
module as `__main__` with the rest of the command line, as `python -m` does, so whatever starts the command again sees
it as `python -m` started it (Lightning's DDP starts ranks 1..N-1 as `python -m <__main__'s module> <sys.argv[1:]>`).
Installed as the `kemotion` console script (pyproject.toml); also `python -m kemotion`.
"""

from __future__ import annotations

import argparse
import runpy
import sys

from kemotion.core.commands import COMMANDS


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (default: the command line) with the rest of it; 0 after listing the commands."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)  # the command is one of COMMANDS: argparse refuses any other
    command_line, sys.argv = sys.argv, [sys.argv[0], *args.args]
    try:
        runpy.run_module(f"kemotion.{args.command}", run_name="__main__", alter_sys=True)
    finally:
        sys.argv = command_line
    return 0


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS)) + 2
    listing = "\n".join(f"  {name.ljust(width)}{line}" for name, line in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="kemotion", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Facial-emotion recognition on Korean faces: face detection, face crop, classification.",
        epilog=f"commands:\n{listing}\n\n`kemotion COMMAND --help` lists a command's options. Examples:\n"
               "  kemotion train +experiment=yolo_kemo trainer.max_epochs=5\n"
               "  kemotion predict run=outputs/runs/RUN source=photos/\n"
               "  kemotion export run=outputs/runs/RUN")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="the command's arguments: Hydra overrides (key=value), -m, --help, ...")
    return parser


if __name__ == "__main__":
    sys.exit(main())
