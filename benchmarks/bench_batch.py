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

It also prints the speed-up of 2 workers over the serial run, and the speed-up the goal asks of
this machine: the figure that does not depend on the machine's speed.

Run: ``python benchmarks/bench_batch.py [--households N] [--repeat R]`` (the whole book takes
minutes on 2 cores; with ``--repeat``, each rate is the median of R rounds; nothing is
asserted). Timings depend on the load of the machine: run it on a quiet one.
The pool and the clusters run before the serial batch, so that no forked worker inherits the
shapes the serial run met.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import optirebal as orb
import optirebal.batch as batch_module
import optirebal.datasets.book as book_module
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
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the four runs; each rate is the median of its rounds "
                             "(a busy or shared machine varies by a fifth from run to run)")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    book = orb.load_book(BOOK)
    if args.households:
        book = book.subset(list(book)[:args.households])
    print(f"{book}")
    samples: dict[str, list[float]] = {}
    compiles: dict[str, int] = {}
    for round_ in range(args.repeat):
        if args.repeat > 1:
            print(f"round {round_ + 1} of {args.repeat}")
        # what the last round's serial run kept in this process (its shapes and validated
        # universe), which the pool's forked workers would otherwise inherit
        batch_module._REBALANCERS.clear()
        book_module._UNIVERSES.clear()
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(lambda: __import__("optirebal.batch"))  # imports outside the timing
                batch, rate = run(
                    f"LocalCluster, {workers} worker{'s' if workers > 1 else ''}",
                    lambda c=client: orb.solve_many(book, client=c, progress=False))
            samples.setdefault(f"dask {workers}", []).append(rate)
            compiles[f"dask {workers}"] = max(compiles.get(f"dask {workers}", 0),
                                              int(batch.compiles_per_worker().max()))
        batch, rate = run("process pool, 2", lambda: orb.solve_many(
            book, processes=2, progress=False))
        samples.setdefault("pool 2", []).append(rate)
        compiles["pool 2"] = max(compiles.get("pool 2", 0),
                                 int(batch.compiles_per_worker().max()))
        serial, rate = run("serial", lambda: orb.solve_many(book, processes=1, progress=False))
        samples.setdefault("serial", []).append(rate)
    rates = {key: float(np.median(values)) for key, values in samples.items()}
    shapes = int(serial.statuses["compiles"].sum())
    seconds = serial.statuses["seconds"]
    print(f"per household in its worker (serial): median {seconds.median() * 1e3:.1f} ms, "
          f"mean {seconds.mean() * 1e3:.1f} ms; distinct shapes {shapes}")
    if args.repeat > 1:
        print("median of the rounds: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    # the machine's own figure: how much faster than one process 2 workers run, and how much
    # faster the goal asks (above 2, no parallelism reaches it: only less work per household)
    print(f"speed-up over serial with 2 workers: dask {rates['dask 2'] / rates['serial']:.2f}, "
          f"pool {rates['pool 2'] / rates['serial']:.2f}; the goal asks "
          f"{GOAL_RATE / rates['serial']:.2f} on this machine")

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
