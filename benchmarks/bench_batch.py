"""Benchmark of batch rebalancing: the shipped book of 1,000 households (``models/book``) solved
serially, on a local pool of 2 processes, and on a Dask ``LocalCluster`` with 1 and 2 worker
processes (one thread each).

Prints, per run, households per second, the wall time and the statuses; then each goal with the
measured figure and whether it is met:

- households per second with 2 workers (LocalCluster, and the 2-process pool): goal >= 150 on a
  2-core machine;
- scaling efficiency from 1 to 2 LocalCluster workers, rate(2) / (2 rate(1)): goal >= 80%;
- compiles per worker (new shapes a worker met) at most the distinct shapes of the book (the
  compiles of the serial run, which meets each shape once).

Run: ``python benchmarks/bench_batch.py [--households N]`` (the whole book takes minutes on 2
cores; nothing is asserted). Timings depend on the load of the machine: run it on a quiet one.
The pool and the clusters run before the serial batch, so that no forked worker inherits the
shapes the serial run met.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optirebal as orb
from optirebal.batch import BatchResult

BOOK = Path(__file__).resolve().parents[1] / "models" / "book"
GOAL_RATE, GOAL_EFFICIENCY = 150.0, 0.80


def run(label: str, solve: object) -> tuple[BatchResult, float]:
    start = time.perf_counter()
    batch = solve()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    rate = len(batch) / seconds
    counts = ", ".join(f"{s} {n}" for s, n in batch.summary().items() if n and s != "total")
    compiles = batch.compiles_per_worker()
    print(f"{label:<24} {rate:8.1f} households/s  {seconds:7.1f} s  ({counts}); compiles per "
          f"worker {compiles.max()} max over {len(compiles)} workers", flush=True)
    return batch, rate


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, help="the first N households of the book")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    book = orb.load_book(BOOK)
    if args.households:
        book = book.subset(list(book)[:args.households])
    print(f"{book}")
    rates, compiles = {}, {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("optirebal.batch"))  # imports outside the timing
            batch, rates[f"dask {workers}"] = run(
                f"LocalCluster, {workers} worker{'s' if workers > 1 else ''}",
                lambda c=client: orb.solve_many(book, client=c, progress=False))
            compiles[f"dask {workers}"] = int(batch.compiles_per_worker().max())
    batch, rates["pool 2"] = run("process pool, 2", lambda: orb.solve_many(
        book, processes=2, progress=False))
    compiles["pool 2"] = int(batch.compiles_per_worker().max())
    serial, rates["serial"] = run("serial", lambda: orb.solve_many(book, processes=1,
                                                                   progress=False))
    shapes = int(serial.statuses["compiles"].sum())
    seconds = serial.statuses["seconds"]
    print(f"per household in its worker (serial): median {seconds.median() * 1e3:.1f} ms, "
          f"mean {seconds.mean() * 1e3:.1f} ms; distinct shapes {shapes}")

    print("\ngoals")
    for key in ("dask 2", "pool 2"):
        print(f"households/s with 2 workers ({key}): {rates[key]:8.1f}  (goal >= {GOAL_RATE:g}) "
              f"{verdict(rates[key] >= GOAL_RATE)}")
    efficiency = rates["dask 2"] / (2 * rates["dask 1"])
    print(f"scaling efficiency, 1 -> 2 LocalCluster workers: {efficiency:6.1%}  "
          f"(goal >= {GOAL_EFFICIENCY:.0%}) {verdict(efficiency >= GOAL_EFFICIENCY)}")
    for key, value in compiles.items():
        print(f"compiles per worker ({key}): {value}  (goal <= {shapes} distinct shapes) "
              f"{verdict(value <= shapes)}")


if __name__ == "__main__":
    main()
