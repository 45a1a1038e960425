"""The ``xwvnet`` command: one subcommand per job, each a thin call into a functional module.

Each subcommand has an ``_add_<name>(subparsers)`` that declares its arguments and a ``_run_<name>(args)`` that
calls the library and returns an exit code. No logic of its own lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


# --- ingest ---------------------------------------------------------------------------------------------------------
def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="read quicklooks into a Zarr imagette store (resumable, appends)")
    p.add_argument("sources", nargs="+", help="quicklook files, folders or glob patterns")
    p.add_argument("--store", required=True, type=Path, help="the Zarr store to create or append to")
    p.add_argument("--labels", type=Path, default=None, help="CSV with a 'filename' column and one 0/1 column per tag")
    p.add_argument("--batch", type=int, default=256, help="imagettes read and written per step")


def _run_ingest(args: argparse.Namespace) -> int:
    from .io.store import ingest

    report = ingest(args.sources, args.store, labels=args.labels, batch=args.batch, progress=True)
    print(report.summary())
    return 0


# --- demo -----------------------------------------------------------------------------------------------------------
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the sample data: ingest, embed, probe, retrieve, collocate")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="folder for the store, tables and figures")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.out, quick=args.quick)


_COMMANDS = ["ingest", "demo"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xwvnet`` command."""
    parser = argparse.ArgumentParser(prog="xwvnet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    module = sys.modules[__name__]
    for name in _COMMANDS:
        getattr(module, f"_add_{name}")(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xwvnet`` command."""
    args = build_parser().parse_args(argv)
    return getattr(sys.modules[__name__], f"_run_{args.command}")(args)


if __name__ == "__main__":
    sys.exit(main())
