"""The ``optirebal`` command: ``optirebal solve MODEL.toml [--out FILE]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from optirebal.errors import OptirebalError
from optirebal.model_file import load
from optirebal.rebalance import solve
from optirebal.result import Result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or infeasible)."""
    parser = argparse.ArgumentParser(prog="optirebal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("solve", help="rebalance a model file and print the trades")
    run.add_argument("model", type=Path, help="a model TOML file, e.g. models/pension_6040.toml")
    run.add_argument("--out", type=Path, help="write the orders (.csv) or every table (.json)")
    args = parser.parse_args(argv)
    try:
        result = solve(*load(args.model))
    except OptirebalError as exc:
        print(f"optirebal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if args.out is not None:
        write(result, args.out)
        print(f"\nwrote {args.out}")
    return 0


def write(result: Result, path: Path) -> None:
    """Write the orders as CSV, or every table as JSON (records), chosen by the suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        result.orders.to_csv(path, index=False)
    elif suffix == ".json":
        tables = {
            "orders": result.orders,
            "lots_sold": result.lots_sold.reset_index(),
            "weights": result.weights.reset_index(),
            "costs": result.costs.reset_index(),
            "cash": result.cash.reset_index(),
        }
        doc = {name: json.loads(frame.to_json(orient="records")) for name, frame in tables.items()}
        doc["tracking_error"] = result.tracking_error.to_dict()
        d = result.diagnostics
        doc["diagnostics"] = {"solver": d.solver, "status": d.status, "iterations": d.iterations,
                              "cache_hit": d.cache_hit, "residual": d.residual,
                              "fixes": list(d.fixes), "notes": list(d.notes)}
        path.write_text(json.dumps(doc, indent=2))
    else:
        raise SystemExit(f"optirebal: --out must end in .csv or .json, got {path.name!r}")


if __name__ == "__main__":
    raise SystemExit(main())
