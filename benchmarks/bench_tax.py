"""Benchmark of the exact US-netting tax model against the linear one on a large household.

A household of 3 accounts (taxable, traditional IRA, Roth), 300 securities in 6 classes and
6,000 tax lots (two thirds in the taxable account, with gains and losses, short and long term),
a year-to-date short-term loss and a long-term gain carried in, 3/2-power impact replaced by its
quadratic variant (a QP). Prints, for each model, the cold solve (compile included) and the warm
re-solve after a price change (cached program), and the ratios exact / linear (goal: within 2x
warm). The exact model solves one region at a time with the same compiled program and skips
regions out of reach or bounded away from the best (optirebal.tax.exact); the regions it solved
are printed.

Run: ``python benchmarks/bench_tax.py`` (about a minute on 2 cores; nothing is asserted).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import numpy as np
import pandas as pd

import optirebal as orb

N_SECURITIES, N_LOTS, N_CLASSES = 300, 6000, 6
AS_OF = dt.date(2026, 11, 20)
ACCOUNTS = {"brokerage": "taxable", "ira": "tax_deferred", "roth": "tax_exempt"}
SHARE = {"brokerage": 4000, "ira": 1200, "roth": 800}


def household(seed: int = 7) -> orb.Portfolio:
    rng = np.random.default_rng(seed)
    classes = [f"class_{k}" for k in range(N_CLASSES)]
    securities = [f"S{n:03d}" for n in range(N_SECURITIES)]
    price = rng.uniform(20, 300, N_SECURITIES)
    sec = pd.DataFrame({
        "security": securities, "price": price,
        "asset_class": [classes[n % N_CLASSES] for n in range(N_SECURITIES)],
        "group": [f"G{n // 2}" for n in range(N_SECURITIES)],  # pairs of identical funds
        "half_spread_bps": rng.uniform(0.5, 4, N_SECURITIES),
        "daily_volatility": rng.uniform(0.005, 0.02, N_SECURITIES),
        "daily_traded_value": rng.uniform(5e7, 5e8, N_SECURITIES)})
    nav = 5e7
    acc = pd.DataFrame({"account": list(ACCOUNTS), "type": list(ACCOUNTS.values()),
                        "cash": [0.01 * nav, 0.005 * nav, 0.002 * nav],
                        "flow": [0.0, 0.01 * nav, 0.0]})
    rows = []
    for account, count in SHARE.items():
        held = rng.choice(N_SECURITIES, size=count)
        for n, i in enumerate(held):
            value = rng.lognormal(0, 0.6) * nav / N_LOTS
            qty = value / price[i]
            rows.append({"lot": f"{account}-{n}", "account": account, "security": securities[i],
                         "quantity": qty, "cost_basis": value * rng.uniform(0.5, 1.35),
                         "acquired": AS_OF - dt.timedelta(days=int(rng.integers(35, 3000)))})
    vol = rng.uniform(0.04, 0.22, N_CLASSES)
    corr = 0.3 + 0.7 * np.eye(N_CLASSES)
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=classes, columns=classes)
    return orb.Portfolio.from_frames(sec, acc, pd.DataFrame(rows), as_of=AS_OF, risk=cov)


def timed(portfolio: orb.Portfolio, policy: orb.Policy) -> tuple[float, orb.Result]:
    start = time.perf_counter()
    result = orb.solve(portfolio, policy)
    return time.perf_counter() - start, result


def main() -> None:
    portfolio = household()
    weights = portfolio.security_values() / portfolio.nav_value
    exposure = portfolio.exposures @ weights
    targets = {k: float(v) for k, v in (0.7 * exposure + 0.3 / N_CLASSES).items()}
    total = sum(targets.values())
    targets = {k: v / total for k, v in targets.items()}
    # skew the targets so that the rebalance must trade
    names = list(targets)
    targets[names[0]] += 0.04
    targets[names[1]] -= 0.04
    base = orb.Policy(targets, band=orb.Band.absolute(0.01), risk_aversion=5.0,
                      costs=orb.Costs(impact="quadratic"),
                      tax=orb.Tax(short_term_rate=0.408, long_term_rate=0.238,
                                  ordinary_rate=0.408, realized_short=-40_000.0,
                                  realized_long=15_000.0, loss_carry_value=0.05))
    moved = portfolio.with_prices(portfolio.securities["price"] * np.random.default_rng(1)
                                  .uniform(0.98, 1.02, N_SECURITIES))
    times: dict[str, tuple[float, float]] = {}
    print(f"household: {len(portfolio.accounts)} accounts, {len(portfolio.securities)} "
          f"securities, {len(portfolio.lots)} lots, NAV {portfolio.nav_value:,.0f}")
    for model in ("linear", "exact"):
        policy = dataclasses.replace(base, tax=dataclasses.replace(base.tax, model=model))
        cold, _ = timed(portfolio, policy)
        warm, result = timed(moved, policy)
        times[model] = (cold, warm)
        notes = [n for n in result.diagnostics.notes if n.startswith("exact tax")]
        print(f"{model:>6}: cold {cold:7.2f} s, warm {warm:6.2f} s, {len(result.orders)} orders, "
              f"solves {result.diagnostics.solves}, exact tax of the trades "
              f"{result.tax.loc['tax_exact', 'value']:,.0f}, model figure "
              f"{result.costs.loc['tax', 'value']:,.0f}")
        if notes:
            print(f"        {notes[0]}")
    cold = times["exact"][0] / times["linear"][0]
    warm = times["exact"][1] / times["linear"][1]
    print(f"exact / linear: cold {cold:.2f}x, warm {warm:.2f}x (goal: within 2x)")


if __name__ == "__main__":
    main()
