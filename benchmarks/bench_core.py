"""Benchmark of `optirebal.Rebalancer`: cold solve, warm re-solve after a price move, bare Clarabel.

500 securities (each its own class: a security-level model), 5,000 lots in 3 accounts, a
10-factor risk model and 3/2-power impact, linear tax with loss lots (wash-sale conflicts
between accounts). Prints seconds and the ratios the project tracks:

- warm re-solve (the same ``Rebalancer``, prices moved 1%) over the bare Clarabel solve of the
  same conic data (goal <= 1.2), and the number of program solves it took (goal 1);
- cold solve (a new ``Rebalancer``) over bare Clarabel plus the build (problem data and conic
  assembly; goal <= 1.5).

The peer comparison (cvxportfolio) is ``benchmarks/bench_peer.py``; sizes are
``benchmarks/bench_scale.py``.

Run: ``python benchmarks/bench_core.py`` (2 cores, no timings are asserted anywhere).

Overlay variant: ``python benchmarks/bench_core.py --derivatives=10`` adds 10 index futures (each
on a basket of 50 securities, with margin, carry, basis risk and a current position) and prints
cold and warm times with and without them, and their ratios.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time

import numpy as np
import pandas as pd

import optirebal as orb
from optirebal.program.pooling import pooled
from optirebal.program.prepare import build_problem_data
from optirebal.program.solvers import solve_conic
from optirebal.program.terms import build_program

N_SECURITIES, N_ACCOUNTS, N_LOTS, N_FACTORS = 500, 3, 5000, 10
IMPACT = "power"  # or the first command-line argument
N_DERIVATIVES = 0  # or --derivatives=N
AS_OF = dt.date(2026, 11, 20)


def index_futures(names: list[str], n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` index futures, each on an equal-weight basket of 50 of the securities' classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n):
        basket = rng.choice(len(names), 50, replace=False)
        row = {"instrument": f"F{d}", "price": 5000.0, "multiplier": 10.0,
               "half_spread_bps": 0.3, "margin_rate": 0.05, "carry_per_year": 0.002,
               "basis_volatility": 0.005, "contracts": float(rng.integers(-20, 21))}
        row.update({f"exposure_{names[i]}": 1 / 50 for i in basket})
        rows.append(row)
    return pd.DataFrame(rows).fillna(0.0)


def build(seed: int = 0, n_derivatives: int = 0,
          first_account: str = "taxable") -> tuple[orb.Portfolio, orb.Policy]:
    """The benchmark's portfolio and policy; ``first_account`` is the type of the account
    holding a third of the lots (``tax_deferred`` removes every wash-sale conflict)."""
    rng = np.random.default_rng(seed)
    names = [f"S{n:03d}" for n in range(N_SECURITIES)]
    price = rng.uniform(10, 500, N_SECURITIES)
    securities = pd.DataFrame({
        "security": names, "price": price, "asset_class": names,
        "half_spread_bps": rng.uniform(0.5, 10, N_SECURITIES),
        "daily_volatility": rng.uniform(0.01, 0.03, N_SECURITIES),
        "daily_traded_value": rng.uniform(5e6, 5e8, N_SECURITIES),
    })
    accounts = pd.DataFrame({"account": ["taxable", "ira", "roth"],
                             "type": [first_account, "tax_deferred", "tax_exempt"],
                             "cash": [2e6, 1e6, 5e5], "flow": [0.0, 3e6, 0.0]})
    acct = rng.integers(0, N_ACCOUNTS, N_LOTS)
    sec = rng.integers(0, N_SECURITIES, N_LOTS)
    value = rng.uniform(5e3, 8e4, N_LOTS)
    lots = pd.DataFrame({
        "lot": [f"L{n}" for n in range(N_LOTS)],
        "account": accounts["account"].to_numpy()[acct], "security": np.array(names)[sec],
        "quantity": value / price[sec], "cost_basis": value * rng.uniform(0.5, 1.5, N_LOTS),
        "acquired": [AS_OF - dt.timedelta(days=int(d)) for d in rng.integers(1, 3000, N_LOTS)],
    })
    loadings = pd.DataFrame(rng.normal(0, 0.3, (N_SECURITIES, N_FACTORS)) + 0.5 *
                            (np.arange(N_FACTORS) == 0), index=names,
                            columns=[f"f{k}" for k in range(N_FACTORS)])
    omega = pd.DataFrame(np.diag(rng.uniform(0.01, 0.04, N_FACTORS)),
                         index=loadings.columns, columns=loadings.columns)
    specific = pd.Series(rng.uniform(0.01, 0.09, N_SECURITIES), index=names)
    risk = orb.RiskModel.from_factors(loadings, omega, specific)
    portfolio = orb.Portfolio.from_frames(
        securities, accounts, lots, as_of=AS_OF, risk=risk,
        derivatives=index_futures(names, n_derivatives) if n_derivatives else None)
    held = portfolio.security_values()
    target = (held * rng.uniform(0.8, 1.2, N_SECURITIES))
    policy = orb.Policy(targets=(target / target.sum()).to_dict(), band=orb.Band.absolute(0.002),
                        risk_aversion=1.0, costs=orb.Costs(impact=IMPACT))
    return portfolio, policy


def bare_clarabel_seconds(portfolio: orb.Portfolio, policy: orb.Policy,
                          repeats: int = 3) -> tuple[float, float, int]:
    """Clarabel alone on the conic data of ``portfolio`` as a call solves it (tax-free lots
    pooled, :mod:`optirebal.program.pooling`; best of ``repeats``, seconds), the build
    (problem data, pooling and assembly, seconds), and Clarabel's iterations."""
    start = time.perf_counter()
    data = build_problem_data(portfolio, policy)
    view = pooled(data)  # the program a call solves: lots it cannot tell apart as one
    program, _ = build_program(data if view is None else view[0])
    build = time.perf_counter() - start
    best, iterations = np.inf, 0
    for _ in range(repeats):
        answer = solve_conic(program, "CLARABEL")
        best, iterations = min(best, answer.seconds), answer.iterations or 0
    assert answer.status == "optimal", answer.status
    return best, build, iterations


def verdict(value: float, goal: float) -> str:
    return f"(goal <= {goal:g}) {'met' if value <= goal else 'NOT met'}"


def main() -> None:
    small, small_policy = build(n_derivatives=1)  # loads and warms numpy, scipy, clarabel
    orb.solve(small, small_policy)
    cold_seconds, warm_seconds, cold, warm = timed_solves(0)
    portfolio, policy = build()
    moved = portfolio.with_prices(portfolio.securities["price"] * 1.01)
    bare, build_seconds, iterations = bare_clarabel_seconds(moved, policy)
    print(f"problem: {N_SECURITIES} securities, {N_LOTS} lots, {N_ACCOUNTS} accounts, "
          f"{N_FACTORS} factors, impact {IMPACT}; {len(cold.orders)} orders, "
          f"turnover {cold.turnover:.2%}")
    print(f"cold solve (new Rebalancer):                   {cold_seconds:8.3f} s "
          f"({cold.diagnostics.solves} solves)")
    print(f"warm re-solve after a price change:            {warm_seconds:8.3f} s "
          f"(compiles {warm.diagnostics.compiles}, solves {warm.diagnostics.solves})")
    print(f"bare Clarabel on the same conic data:          {bare:8.3f} s ({iterations} iterations)")
    print(f"build: problem data and conic assembly:        {build_seconds:8.3f} s")
    solves = warm.diagnostics.solves
    print(f"program solves in the warm re-solve:           {solves:8d}  (goal 1) "
          f"{'met' if solves == 1 else 'NOT met'}")
    ratio = warm_seconds / bare
    print(f"ratio warm / bare solver:                      {ratio:8.2f}  {verdict(ratio, 1.2)}")
    ratio = cold_seconds / (bare + build_seconds)
    print(f"ratio cold / (bare solver + build):            {ratio:8.2f}  {verdict(ratio, 1.5)}")
    sweep(portfolio, policy, bare)
    solves = cold.diagnostics.solves
    ratio = cold_seconds / (solves * bare + build_seconds)
    print(f"ratio cold / ({solves} x bare solver + build):        {ratio:8.2f}  (the cold call's "
          f"same-solve wash-sale conflicts cost {solves - 1} more solve)")
    # the same book without a taxable account: no wash-sale conflict, one solve when cold
    plain, plain_policy = build(first_account="tax_deferred")
    start = time.perf_counter()
    first = orb.Rebalancer(plain_policy).solve(plain)
    plain_cold = time.perf_counter() - start
    plain_bare, plain_build, _ = bare_clarabel_seconds(plain, plain_policy)
    ratio = plain_cold / (plain_bare + plain_build)
    print(f"without a taxable account: cold / (bare + build) {ratio:6.2f}  {verdict(ratio, 1.5)} "
          f"({first.diagnostics.solves} solve)")


def sweep(portfolio: orb.Portfolio, policy: orb.Policy, bare: float) -> None:
    """Eight risk aversions, each point a Rebalancer sharing the first one's workspace."""
    rebalancer = orb.Rebalancer(policy)
    rebalancer.solve(portfolio)
    start = time.perf_counter()
    solves = 0
    for gamma in np.geomspace(0.25, 32.0, 8):
        point = rebalancer.with_policy(dataclasses.replace(policy, risk_aversion=float(gamma)))
        solves += point.solve(portfolio).diagnostics.solves
    per_point = (time.perf_counter() - start) / 8
    print(f"sweep of 8 risk aversions, per point:          {per_point:8.3f} s "
          f"({per_point / bare:.2f} x bare solver; {solves} program solves)")


def timed_solves(n_derivatives: int) -> tuple[float, float, orb.Result, orb.Result]:
    """Cold solve and best-of-3 warm re-solve (after a price change) of one variant: seconds,
    then the two results."""
    portfolio, policy = build(n_derivatives=n_derivatives)
    # the program's numbers of solves (wash-sale fixes, repairs) differ between variants:
    # each variant's time is also reported per solve below
    rebalancer = orb.Rebalancer(policy)
    start = time.perf_counter()
    cold = rebalancer.solve(portfolio)
    cold_seconds = time.perf_counter() - start
    moved = portfolio.with_prices(portfolio.securities["price"] * 1.01)
    warm_times = []
    for _ in range(3):
        start = time.perf_counter()
        warm = rebalancer.solve(moved)
        warm_times.append(time.perf_counter() - start)
    assert warm.diagnostics.compiles == 0
    return cold_seconds, min(warm_times), cold, warm


def compare_overlay(n_derivatives: int) -> None:
    """The core problem without and with ``n_derivatives`` index futures, and the time ratios."""
    small, small_policy = build(n_derivatives=1)  # loads and warms cvxpy, clarabel, pandas
    orb.solve(small, small_policy)
    cold_0, warm_0, base, _ = timed_solves(0)
    cold_d, warm_d, result, _ = timed_solves(n_derivatives)
    traded = int((result.synthetic["contracts"] != 0).sum())
    print(f"problem: {N_SECURITIES} securities, {N_LOTS} lots, {N_ACCOUNTS} accounts, "
          f"{N_FACTORS} factors, impact {IMPACT}; overlay: {n_derivatives} index futures, "
          f"{traded} traded")
    print(f"cold solve without / with derivatives:         {cold_0:8.3f} s / {cold_d:8.3f} s")
    print(f"warm re-solve without / with derivatives:      {warm_0:8.3f} s / {warm_d:8.3f} s")
    print(f"ratio cold with / without:                     {cold_d / cold_0:8.2f}")
    print(f"ratio warm with / without:                     {warm_d / warm_0:8.2f}")
    solves_0, solves_d = base.diagnostics.solves, result.diagnostics.solves
    print(f"program solves without / with (cold):          {solves_0:8d} / {solves_d:8d}")


if __name__ == "__main__":
    IMPACT = next((a for a in sys.argv[1:] if not a.startswith("--")), IMPACT)
    N_DERIVATIVES = next((int(a.split("=", 1)[1]) for a in sys.argv[1:]
                          if a.startswith("--derivatives=")), 0)
    if N_DERIVATIVES:
        compare_overlay(N_DERIVATIVES)
    else:
        main()
