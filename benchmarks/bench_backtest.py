"""Backtest speed on the shipped data (issue: time axis).

(a) the thirteen policies of the classic stock/bond study (60/40, July 1926 to December 2009,
    monthly data, no costs or taxes; :func:`optirebal.backtest.studies.stock_bond_study`),
    swept on 2 processes. Goal: under 10 s in total.
(b) the taxable household study (20 stocks, 2021 and 2022 daily, monthly looks with a threshold,
    lots, exact tax and wash sales; :func:`optirebal.backtest.studies.taxable_study`) with the
    program's lot choice, HIFO and FIFO, one after another. Goal: each under 30 s.
(c) the four signal policies (threshold, momentum filter, volatility velocity, opportunistic;
    :func:`optirebal.backtest.studies.signal_study`) on the 1926 to 2009 monthly data with a
    5 bp spread. Goal: each under 2 s.
(d) peer: cvxportfolio's ``MarketSimulator`` with ``FixedWeights`` (60/40 every month, no costs)
    on the same returns, against the monthly 0% policy: both times, their ratio, and the
    largest relative gap of the two NAV paths (cvxportfolio labels a value with the start of its
    period). Needs ``pip install -e ".[bench]"``; skipped with a line when cvxportfolio is absent.
Every backtest: compiles at most 2. Each line prints the figure, its goal and whether it is met,
and the share of the time the solver itself took (the rest is building, decoding and booking).

Run: ``python benchmarks/bench_backtest.py`` (about two minutes on 2 cores). No timing is
asserted in the tests.
"""

from __future__ import annotations

import dataclasses
import time

import optirebal as orb
from optirebal.backtest.studies import signal_study, stock_bond_study, taxable_study


def main() -> None:
    portfolio, policies, market = stock_bond_study()
    start = time.perf_counter()
    table = orb.sweep(policies, portfolio, market, processes=2, progress=False)
    swept = time.perf_counter() - start
    serial = {}
    for name in ("monthly 0%", "annual 0%"):
        t = time.perf_counter()
        result = orb.backtest(portfolio, policies[name], market)
        serial[name] = (time.perf_counter() - t, result.solves, result.compiles,
                        result.solver_seconds)
    print("(a) classic stock/bond study, 13 policies, 1002 months")
    print(table.loc[["looks", "trades", "avg_weight_stocks", "annual_return", "volatility",
                     "turnover_per_year"]].round(4).to_string())
    print(f"  total on 2 processes: {swept:.1f} s (goal < 10 s: "
          f"{'met' if swept < 10 else 'NOT met'})")
    for name, (seconds, solves, compiles, bare) in serial.items():
        per = 1e3 * seconds / max(solves, 1)
        print(f"  {name}: {seconds:.2f} s for {solves} solves = {per:.1f} ms per trade date, "
              f"{seconds / bare:.0f}x the bare solver ({bare:.2f} s); "
              f"compiles {compiles} (goal <= 2: {'met' if compiles <= 2 else 'NOT met'})")
    portfolio, policy, market = taxable_study()
    policy = dataclasses.replace(policy, trigger=orb.Band.relative(0.15))
    print("(b) taxable household, 20 stocks, 2021-2022 daily, monthly looks, trigger 15% relative")
    for relief in ("optimal", "hifo", "fifo"):
        variant = dataclasses.replace(policy, tax=dataclasses.replace(policy.tax,
                                                                      lot_relief=relief))
        t = time.perf_counter()
        result = orb.backtest(portfolio, variant, market, name=relief)
        seconds = time.perf_counter() - t
        s = result.summary()
        print(f"  {relief:8s}: {seconds:5.1f} s = {seconds / result.solver_seconds:.0f}x the "
              f"bare solver (goal < 30 s: "
              f"{'met' if seconds < 30 else 'NOT met'}), {result.solves} solves, compiles "
              f"{result.compiles} (goal <= 2: {'met' if result.compiles <= 2 else 'NOT met'}); "
              f"taxes {s['taxes_bp_per_year']:.1f} bp/yr, after-tax wealth "
              f"{s['after_tax_terminal_wealth']:,.0f}")
    portfolio, policies, market = signal_study()
    print("(c) signal policies, 1926-2009 monthly, 5 bp half spread")
    for name, policy in policies.items():
        t = time.perf_counter()
        result = orb.backtest(portfolio, policy, market, name=name)
        seconds = time.perf_counter() - t
        print(f"  {name:13s}: {seconds:5.2f} s (goal < 2 s: {'met' if seconds < 2 else 'NOT met'})"
              f", {result.solves} solves ({result.summary()['trades']:.0f} trade dates), "
              f"{seconds / max(result.solver_seconds, 1e-9):.0f}x the bare solver")


def peer() -> None:
    """(d): the same calendar rebalancing in cvxportfolio's backtester."""
    try:
        import cvxportfolio as cvx
    except ImportError:
        print("(d) peer: cvxportfolio not installed (pip install -e \".[bench]\"): skipped")
        return
    import pandas as pd

    from optirebal.datasets import stocks_bonds_monthly

    portfolio, policies, market = stock_bond_study()
    returns = stocks_bonds_monthly().loc["1926-07-31":"2009-12-31", ["stocks", "bonds"]]
    returns = returns.assign(USDOLLAR=0.0)
    data = cvx.UserProvidedMarketData(returns=returns, min_history=pd.Timedelta(0),
                                      cash_key="USDOLLAR")
    simulator = cvx.MarketSimulator(market_data=data, costs=[])
    mix = cvx.FixedWeights(pd.Series({"stocks": 0.6, "bonds": 0.4, "USDOLLAR": 0.0}))
    t = time.perf_counter()
    theirs = simulator.backtest(mix, start_time=returns.index[0], end_time=returns.index[-1],
                                initial_value=1e6)
    peer_seconds = time.perf_counter() - t
    t = time.perf_counter()
    ours = orb.backtest(portfolio, policies["monthly 0%"], market)
    seconds = time.perf_counter() - t
    # cvxportfolio's value at the start of month m is ours at the end of month m - 1
    theirs_v = theirs.v.to_numpy()[1:]
    ours_v = ours.nav["nav"].to_numpy()[1:len(theirs_v) + 1]
    gap = float(abs(theirs_v / ours_v - 1).max())
    print("(d) peer: calendar 60/40, 1926-2009, no costs")
    print(f"  cvxportfolio FixedWeights {peer_seconds:.2f} s (no optimization); optirebal "
          f"monthly 0% {seconds:.2f} s (one optimization a month): {seconds / peer_seconds:.1f}x "
          f"the peer; NAV paths agree to {gap:.1e} (goal <= 1e-6: "
          f"{'met' if gap <= 1e-6 else 'NOT met'})")


if __name__ == "__main__":
    main()
    peer()
