"""Fuzz benchmark: thousands of random valid portfolios against the hardening goals (issue 13).

Each case (1 to 4 accounts of mixed tax types, 2 to 60 securities, 1 to 10 lots per position,
flows including withdrawals larger than cash, random bands, modes, tax settings, sometimes index
futures; ``tests/test_fuzz.py`` draws and checks them) is solved and classified: solved,
infeasible, input_error, solver_error, decode_error, raw_error. On solved cases the script checks
hard bands (a miss returned as success), NAV x 1,000 (post-trade weights within 1e-6, on the
fractional variant) and, with linear costs, that re-solving the post-trade portfolio trades
nothing (at most ``RESOLVE_DOLLARS``). Goals:

- 0 raw errors (any exception not an ``optirebal.OptirebalError``, in the solve or the checks);
- 0 band misses returned as success;
- SolverError plus DecodeError at most 0.1% of cases;
- weights equal to 1e-6 when NAV is multiplied by 1,000;
- re-solving the post-trade portfolio with linear costs trades nothing.

Run: ``python benchmarks/bench_fuzz.py [--cases 5000] [--seed 0] [--processes 2] [--json F]``
(about 6 minutes for 5,000 cases on 2 cores). It prints the counts per outcome, the rates, each
goal with its number and met / NOT met, the seeds of every failure by kind (the first 10 of
each, with the message) and the time; ``--json`` writes every case's record. A seed reproduces with
``run_case(seed)`` or ``random_case(seed)`` from ``tests/test_fuzz.py``. Nothing is asserted;
the exit status is 1 when a goal is not met.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_fuzz import OUTCOMES, RESOLVE_DOLLARS, failures, run_case


def _quiet_run(seed: int) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    return run_case(seed)


def run(seeds: list[int], processes: int) -> list[dict[str, Any]]:
    if processes <= 1:
        return [_quiet_run(s) for s in seeds]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return list(pool.imap_unordered(_quiet_run, seeds, chunksize=8))


def report(results: list[dict[str, Any]], seconds: float, processes: int) -> bool:
    n = len(results)
    results = sorted(results, key=lambda r: r["seed"])
    counts = collections.Counter(r["outcome"] for r in results)
    print(f"cases {n}, {processes} processes, {seconds:.1f} s wall "
          f"({seconds / max(n, 1) * 1e3:.1f} ms a case; per case: solve "
          f"{np.mean([r.get('solve_seconds', 0.0) for r in results]) * 1e3:.1f} ms, with checks "
          f"{np.mean([r.get('seconds', 0.0) for r in results]) * 1e3:.1f} ms)")
    print("\noutcomes")
    for name in OUTCOMES:
        print(f"  {name:<14}{counts.get(name, 0):>7}  {counts.get(name, 0) / n:8.3%}")
    kinds = failures(results)
    nav = collections.Counter(r["nav"]["status"] for r in results)
    res = collections.Counter(r["resolve"]["status"] for r in results)
    why = collections.Counter(r["resolve"].get("why", "") for r in results
                              if r["resolve"]["status"] == "skip")
    print(f"\nchecks: NAV x1000 on {n - nav.get('skip', 0)} cases ({dict(nav)}); re-solve on "
          f"{n - res.get('skip', 0)} cases ({dict(res)}); re-solve skipped: "
          + ", ".join(f"{k} {v}" for k, v in why.most_common()))
    raw = len(kinds.get("raw_error", [])) + len(kinds.get("raw_error_in_check", []))
    band = [(s, m) for k, v in kinds.items() if k.startswith("band_miss") for s, m in v]
    misses = len({s for s, _ in band})
    unreported = len({s for s, m in band if "NOT reported" in m})
    errors = counts.get("solver_error", 0) + counts.get("decode_error", 0)
    nav_bad = sum(len(v) for k, v in kinds.items() if k.startswith("nav_scaling"))
    resolve_bad = sum(len(v) for k, v in kinds.items() if k.startswith("resolve_"))
    values = [r["resolve"]["value"] for r in results if r["resolve"].get("value") is not None]
    goals = [
        ("0 raw errors (solve and checks)", f"{raw}", raw == 0),
        ("0 band misses returned as success", f"{misses} cases ({unreported} without a "
         "band_breach event)", misses == 0),
        ("SolverError + DecodeError <= 0.1%", f"{errors} ({errors / n:.3%})", errors <= 0.001 * n),
        ("weights within 1e-6 at NAV x 1,000", f"{nav_bad} mismatches of "
         f"{n - nav.get('skip', 0)}", nav_bad == 0),
        (f"re-solve trades nothing (<= ${RESOLVE_DOLLARS:g})", f"{resolve_bad} of "
         f"{n - res.get('skip', 0)} traded or failed (largest ${max(values, default=0.0):,.2f})",
         resolve_bad == 0),
    ]
    print("\ngoals")
    for name, number, met in goals:
        print(f"  {'met    ' if met else 'NOT met'}  {name}: {number}")
    print(f"  (input errors, the generator's: {counts.get('input_error', 0)})")
    if kinds:
        print("\nfailures by kind: " + "; ".join(
            f"{kind} {len({s for s, _ in items})}" for kind, items in sorted(kinds.items())))
        print("(first 10 seeds of each, with the message; reproduce with run_case(seed) from "
              "tests/test_fuzz.py)")
    for kind, items in sorted(kinds.items()):
        seeds = sorted({s for s, _ in items})
        print(f"\n{kind}: {len(seeds)} cases")
        shown = set()
        for seed, message in items:
            if seed in shown:
                continue
            shown.add(seed)
            print(f"  seed {seed}: {message}")
            if len(shown) == 10:
                break
    return all(met for _, _, met in goals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0, help="first seed (cases are consecutive)")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", help="also write every case's record to this file")
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.cases))
    start = time.perf_counter()
    results = run(seeds, args.processes)
    if args.json:
        Path(args.json).write_text(json.dumps(sorted(results, key=lambda r: r["seed"]),
                                              default=str, indent=1))
    return 0 if report(results, time.perf_counter() - start, args.processes) else 1


if __name__ == "__main__":
    sys.exit(main())
