"""The ``optirebal`` command: ``optirebal solve MODEL.toml [--out FILE]`` and
``optirebal solve-many BOOK --out orders.parquet [--workers N] [--scheduler ADDRESS]``.

Exit status: 0 solved, 2 anything else (bad input, an infeasible policy, a solver or decode
failure, a file that cannot be written), with one line on standard error, never a traceback.
``solve-many`` exits 1 when the batch ran but some households did not solve (each is listed,
and every household's status is in ``--tables``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from optirebal.errors import OptirebalError
from optirebal.model_file import load
from optirebal.rebalance import solve
from optirebal.result import Result

OUT_SUFFIXES = {".csv": "the orders", ".parquet": "the orders as Parquet",
                ".json": "every table of Result.to_frames()"}
BATCH_SUFFIXES = {".parquet": "the orders as Parquet", ".csv": "the orders as CSV"}
SHOW_FAILED = 20
"""Failed households listed on the terminal (all of them are in the statuses table)."""
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
                     help="write the orders (.csv, .parquet) or every table (.json)")
    run.add_argument("--tables", type=Path,
                     help="also write every table of the result as Parquet files to this folder")
    many = sub.add_parser("solve-many", help="rebalance every household of a book, in parallel")
    many.add_argument("book", type=Path, help="a book folder, e.g. models/book")
    many.add_argument("--out", type=Path, required=True,
                      help="write every household's orders (.parquet or .csv)")
    many.add_argument("--tables", type=Path,
                      help="also write every table (orders, lots sold, costs, tax, events, "
                           "statuses) as Parquet files to this folder")
    many.add_argument("--workers", type=int,
                      help="local worker processes (default: one per core)")
    many.add_argument("--scheduler", help="address of a Dask scheduler, e.g. tcp://host:8786 "
                                          '(pip install "optirebal[distributed]")')
    many.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.command == "solve-many":
        return _guard(lambda: solve_many_command(args))
    return _guard(lambda: solve_command(args))


def _guard(run: Callable[[], int]) -> int:
    """The command line's promise: one line on standard error, never a traceback."""
    try:
        return run()
    except OptirebalError as exc:
        print(f"optirebal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"optirebal: unexpected {type(exc).__name__}: {exc} (please report it)",
              file=sys.stderr)
        return 2


def solve_command(args: argparse.Namespace) -> int:
    """``optirebal solve``: one model file."""
    if args.out is not None:
        check_out(args.out)  # before solving: a bad path should not cost a solve
    if args.tables is not None and args.tables.exists() and not args.tables.is_dir():
        raise OptirebalError(f"--tables {str(args.tables)!r} is a file, not a folder")
    result = solve(*load(args.model))
    print(result.summary())
    if args.out is not None:
        write(result, args.out)
        print(f"\nwrote {args.out}")
    if args.tables is not None:
        result.to_parquet(args.tables)
        print(f"wrote {args.tables}/")
    return 0


def solve_many_command(args: argparse.Namespace) -> int:
    """``optirebal solve-many``: every household of a book; 1 when some did not solve."""
    from optirebal.batch import solve_many
    from optirebal.datasets.book import load_book

    check_out(args.out, BATCH_SUFFIXES)
    if args.tables is not None and args.tables.exists() and not args.tables.is_dir():
        raise OptirebalError(f"--tables {str(args.tables)!r} is a file, not a folder")
    if args.workers is not None and args.workers < 1:
        raise OptirebalError(f"--workers must be at least 1, got {args.workers}")
    book = load_book(args.book)
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise OptirebalError('--scheduler needs Dask: pip install "optirebal[distributed]"'
                                 ) from None
        with Client(args.scheduler) as client:
            batch = solve_many(book, client=client, progress=not args.no_progress,
                               frames=True)
    else:
        batch = solve_many(book, processes=args.workers, progress=not args.no_progress,
                           frames=True)
    if args.out.suffix.lower() == ".parquet":
        batch.to_parquet(args.out)
    else:
        batch.to_csv(args.out)
    print(repr(batch))
    counts = batch.summary()
    print(", ".join(f"{status} {n}" for status, n in counts.items()))
    failed = batch.failed()
    for household, row in failed.head(SHOW_FAILED).iterrows():
        print(f"{household}: {row['status']}: {row['message']}")
    if len(failed) > SHOW_FAILED:
        print(f"... and {len(failed) - SHOW_FAILED} more (see the statuses table)")
    print(f"wrote {args.out}")
    if args.tables is not None:
        batch.write(args.tables)
        print(f"wrote {args.tables}/")
    return 1 if len(failed) else 0


def check_out(path: Path, suffixes: Mapping[str, str] = OUT_SUFFIXES) -> None:
    """Refuse an output path before solving: unknown suffix, missing folder, a directory."""
    if path.suffix.lower() not in suffixes:
        kinds = ", ".join(f"{s} ({what})" for s, what in suffixes.items())
        raise OptirebalError(f"--out must end in {kinds}, got {path.name!r}")
    if path.is_dir():
        raise OptirebalError(f"--out {str(path)!r} is a directory")
    if not path.parent.is_dir():
        raise OptirebalError(f"--out: folder {str(path.parent)!r} does not exist")


def write(result: Result, path: Path) -> None:
    """Write the orders as CSV or Parquet, or every table of :meth:`Result.to_frames` as JSON
    records."""
    if path.suffix.lower() == ".csv":
        result.orders.to_csv(path, index=False, float_format=CSV_FLOAT_FORMAT)
        return
    if path.suffix.lower() == ".parquet":
        result.orders.to_parquet(path, index=False)
        return
    frames = result.to_frames()
    doc = {name: json.loads(frame.to_json(orient="records", date_format="iso"))
           for name, frame in frames.items()}
    path.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
