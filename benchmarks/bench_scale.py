"""How build time, solve time and memory grow with the size of the book.

(securities, lots) = (100, 1k), (500, 5k), (2,000, 20k), (5,000, 50k), 3 accounts, 10 factors,
3/2-power impact and linear tax (the portfolio of ``benchmarks/bench_core.py`` at each size).
Each size runs in a fresh process, which prints:

- cold: a new ``Rebalancer``'s first solve (seconds); warm: the same ``Rebalancer`` after a 1%
  price move (seconds);
- bare: Clarabel alone on the same conic data (seconds);
- data: the portfolio and policy turned into weight-space arrays (seconds);
- build: the conic program assembled from its terms (seconds; what replaced cvxpy's
  compilation), and its share of the solver's time;
- peak RSS of the process, and the peak that data and build add to what the portfolio already
  held (MB);
- Clarabel's iterations, and the program solves of the warm call (a new same-solve wash-sale
  conflict after the price move costs a second).

Then the exponents of build time and build memory fitted against the number of lots (log-log
least squares). Goals (issue: composable terms, linear build): build exponents <= 1.2; 2,000 /
20k within 2 GB peak; 5,000 / 50k runs within 6 GB; build at most 25% of the solver's time at
every size.

Run: ``python benchmarks/bench_scale.py`` (2 cores; about two minutes). ``--sizes 100,1000``
limits the sizes. No timing is asserted anywhere.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [(100, 1_000), (500, 5_000), (2_000, 20_000), (5_000, 50_000)]


def peak_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n_securities: int, n_lots: int) -> dict[str, float]:
    """Every figure of one size, in this process (run it in a fresh one)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_core

    import optirebal as orb
    from optirebal.program.prepare import build_problem_data
    from optirebal.program.solvers import solve_conic
    from optirebal.program.terms import build_program

    bench_core.N_SECURITIES, bench_core.N_LOTS = n_securities, n_lots
    portfolio, policy = bench_core.build()
    moved = portfolio.with_prices(portfolio.securities["price"] * 1.01)
    held = peak_mb()
    start = time.perf_counter()
    data = build_problem_data(moved, policy)
    prepared = time.perf_counter()
    program, _ = build_program(data)
    build = time.perf_counter() - prepared
    inputs = prepared - start
    build_peak = peak_mb() - held
    answer = solve_conic(program, "CLARABEL")
    bare = answer.seconds
    rebalancer = orb.Rebalancer(policy)
    start = time.perf_counter()
    rebalancer.solve(portfolio)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    warm = rebalancer.solve(moved)
    warm_seconds = time.perf_counter() - start
    return {"securities": n_securities, "lots": n_lots, "cold": cold, "warm": warm_seconds,
            "bare": bare, "build": build, "data": inputs, "build_mb": build_peak,
            "peak_mb": peak_mb(),
            "iterations": answer.iterations or 0, "solves": warm.diagnostics.solves,
            "status": answer.status}


def fitted_exponent(sizes: list[float], values: list[float]) -> float:
    """Slope of log(value) against log(size)."""
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(values, 1e-9)), 1)[0])


def goal(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(sizes: list[tuple[int, int]]) -> None:
    rows = []
    print(f"{'securities':>10} {'lots':>7} {'cold s':>8} {'warm s':>8} {'bare s':>8} "
          f"{'data s':>8} {'build s':>8} {'build/bare':>10} {'build MB':>9} {'peak MB':>8} "
          f"{'iters':>6} {'solves':>6}")
    for n_securities, n_lots in sizes:
        done = subprocess.run([sys.executable, __file__, "--one", str(n_securities), str(n_lots)],
                              capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['securities']:>10,} {row['lots']:>7,} {row['cold']:8.3f} {row['warm']:8.3f} "
              f"{row['bare']:8.3f} {row['data']:8.3f} {row['build']:8.3f} "
              f"{row['build'] / row['bare']:10.2f} {row['build_mb']:9.1f} {row['peak_mb']:8.0f} "
              f"{row['iterations']:6d} {row['solves']:6d}", flush=True)
    lots = [r["lots"] for r in rows]
    if len(rows) > 1:
        time_exp = fitted_exponent(lots, [r["build"] + r["data"] for r in rows])
        memory_exp = fitted_exponent(lots, [max(r["build_mb"], 1.0) for r in rows])
        solver_exp = fitted_exponent(lots, [r["bare"] for r in rows])
        print(f"fitted exponent, data + build time / lots:  {time_exp:5.2f} (goal <= 1.2) "
              f"{goal(time_exp <= 1.2)}")
        print(f"fitted exponent, build memory against lots: {memory_exp:5.2f} (goal <= 1.2) "
              f"{goal(memory_exp <= 1.2)}")
        print(f"fitted exponent, bare solver against lots:  {solver_exp:5.2f} (for reference)")
    share = max(r["build"] / r["bare"] for r in rows)
    print(f"largest build / solver time:                {share:5.2f} (goal <= 0.25) "
          f"{goal(share <= 0.25)}")
    for r in rows:
        if r["lots"] == 20_000:
            print(f"peak RSS at 2,000 / 20k:                    {r['peak_mb']:5.0f} MB "
                  f"(goal <= 2048) {goal(r['peak_mb'] <= 2048)}")
        if r["lots"] == 50_000:
            print(f"peak RSS at 5,000 / 50k:                    {r['peak_mb']:5.0f} MB "
                  f"(goal <= 6144) {goal(r['peak_mb'] <= 6144)}")


if __name__ == "__main__":
    if "--one" in sys.argv:
        at = sys.argv.index("--one")
        print(json.dumps(measure(int(sys.argv[at + 1]), int(sys.argv[at + 2]))))
    else:
        chosen = SIZES
        if "--sizes" in sys.argv:
            values = [int(v) for v in sys.argv[sys.argv.index("--sizes") + 1].split(",")]
            chosen = [s for s in SIZES if s[0] in values or s[1] in values]
        main(chosen)
