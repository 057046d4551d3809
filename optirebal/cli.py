"""The ``optirebal`` command: ``optirebal solve MODEL.toml [--out FILE]``.

Exit status: 0 solved, 2 anything else (bad input, an infeasible policy, a solver or decode
failure, a file that cannot be written), with one line on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from optirebal.errors import OptirebalError
from optirebal.model_file import load
from optirebal.rebalance import solve
from optirebal.result import Result

OUT_SUFFIXES = {".csv": "the orders", ".json": "every table of Result.to_frames()"}
CSV_FLOAT_FORMAT = "%.12g"
"""Twelve significant digits: cents on a billion, and no binary noise (61880, not
61880.00000000001)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 otherwise)."""
    from optirebal import __version__

    parser = argparse.ArgumentParser(prog="optirebal", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"optirebal {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log the solver chain's attempts to standard error")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("solve", help="rebalance a model file and print the trades")
    run.add_argument("model", type=Path, help="a model TOML file, e.g. models/pension_6040.toml")
    run.add_argument("--out", type=Path,
                     help="write the orders (.csv) or every table (.json)")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        if args.out is not None:
            check_out(args.out)  # before solving: a bad path should not cost a solve
        result = solve(*load(args.model))
        print(result.summary())
        if args.out is not None:
            write(result, args.out)
            print(f"\nwrote {args.out}")
    except OptirebalError as exc:
        print(f"optirebal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the command line's promise: one line, never a traceback
        print(f"optirebal: unexpected {type(exc).__name__}: {exc} (please report it)",
              file=sys.stderr)
        return 2
    return 0


def check_out(path: Path) -> None:
    """Refuse an output path before solving: unknown suffix, missing folder, a directory."""
    if path.suffix.lower() not in OUT_SUFFIXES:
        kinds = ", ".join(f"{s} ({what})" for s, what in OUT_SUFFIXES.items())
        raise OptirebalError(f"--out must end in {kinds}, got {path.name!r}")
    if path.is_dir():
        raise OptirebalError(f"--out {str(path)!r} is a directory")
    if not path.parent.is_dir():
        raise OptirebalError(f"--out: folder {str(path.parent)!r} does not exist")


def write(result: Result, path: Path) -> None:
    """Write the orders as CSV, or every table of :meth:`Result.to_frames` as JSON records."""
    if path.suffix.lower() == ".csv":
        result.orders.to_csv(path, index=False, float_format=CSV_FLOAT_FORMAT)
        return
    frames = result.to_frames()
    doc = {name: json.loads(frame.to_json(orient="records", date_format="iso"))
           for name, frame in frames.items()}
    path.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
