"""Benchmark of optirebal.execution: 500 orders over 13 intervals jointly, 10-factor covariance.

Prints the wall time of :func:`optirebal.execution.schedule` (validation, assembly, solve,
polish, checks, rounding, reports), the bare Clarabel time on the same conic data (the program
that :mod:`optirebal.program.conic` assembles, solved by calling clarabel directly) and their
ratio; then the same for the other impact models, and a 13-point frontier sweep (assembled
afresh at each risk aversion). Random but seeded data.

Run: ``python benchmarks/bench_execution.py [--repeat 3]``. Goal: under 2 s for the schedule.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import clarabel
import numpy as np
import pandas as pd
import scipy.sparse as sp

from optirebal.execution import (
    AlmgrenThumImpact,
    ImpactModel,
    LinearImpact,
    PowerImpact,
    _program,
    frontier,
    schedule,
)
from optirebal.execution._inputs import prepare
from optirebal.program.conic import NONNEG, POW, ZERO
from optirebal.risk import RiskModel

SECURITIES, INTERVALS, FACTORS = 500, 13, 10
RISK_AVERSION = 1e-6  # per currency unit
PARTICIPATION_CAP = 0.25
DAYS = 252.0


def make_data(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, RiskModel]:
    """Orders of 0.5% to 15% of daily volume, mixed buys and sells, and a 10-factor model."""
    rng = np.random.default_rng(seed)
    names = [f"S{i:03d}" for i in range(SECURITIES)]
    price = np.exp(rng.uniform(np.log(10.0), np.log(300.0), SECURITIES))
    vol = rng.uniform(0.01, 0.035, SECURITIES)
    volume = np.round(np.exp(rng.uniform(np.log(2e5), np.log(2e7), SECURITIES)))
    market = pd.DataFrame(
        {
            "price": price,
            "daily_volatility": vol,
            "daily_volume": volume,
            "shares_outstanding": volume * rng.uniform(100, 400, SECURITIES),
        },
        index=names,
    )
    shares = np.round(
        rng.choice([-1.0, 1.0], SECURITIES) * volume * rng.uniform(0.005, 0.15, SECURITIES)
    )
    orders = pd.DataFrame({"security": names, "shares": shares})
    factors = [f"f{j}" for j in range(FACTORS)]
    a = rng.normal(size=(FACTORS, FACTORS))
    factor_cov = a @ a.T / FACTORS + 0.5 * np.eye(FACTORS)
    loadings = rng.normal(size=(SECURITIES, FACTORS))
    systematic = np.einsum("ij,jk,ik->i", loadings, factor_cov, loadings)
    annual = vol**2 * DAYS
    share = rng.uniform(0.3, 0.7, SECURITIES)  # systematic share of each security's variance
    loadings *= np.sqrt(share * annual / systematic)[:, None]
    risk = RiskModel.from_factors(
        pd.DataFrame(loadings, index=names, columns=factors),
        pd.DataFrame(factor_cov, index=factors, columns=factors),
        pd.Series(annual * (1 - share), index=names),
    )
    return orders, market, risk


def bare_clarabel(
    orders: pd.DataFrame, market: pd.DataFrame, risk: RiskModel, impact: ImpactModel
) -> tuple[float, str, int]:
    """Seconds Clarabel alone takes on the conic data of the same schedule."""
    plan = prepare(
        orders,
        market,
        horizon_days=1.0,
        intervals=INTERVALS,
        impact=impact,
        participation_cap=PARTICIPATION_CAP,
        volume_profile=None,
        covariance=risk,
        trading_days_per_year=DAYS,
    )
    _, program = _program.Programs(plan).forms("CLARABEL")[0]  # the form schedule() tries first
    data = program.conic(RISK_AVERSION)
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    for key, value in _program.SOLVER_OPTIONS["CLARABEL"].items():
        setattr(settings, key, value)
    alphas = iter(data.powers)
    cones = [
        clarabel.ZeroConeT(size)
        if kind == ZERO
        else clarabel.NonnegativeConeT(size)
        if kind == NONNEG
        else clarabel.PowerConeT(next(alphas))
        if kind == POW
        else clarabel.SecondOrderConeT(size)
        for kind, size in data.cones
    ]
    start = time.perf_counter()
    solver = clarabel.DefaultSolver(
        sp.triu(data.P, format="csc"), data.q, data.A, data.b, cones, settings
    )
    solution = solver.solve()
    return time.perf_counter() - start, str(solution.status), int(solution.iterations)


def run(
    name: str, impact: ImpactModel, data: tuple[pd.DataFrame, pd.DataFrame, RiskModel], repeat: int
) -> None:
    orders, market, risk = data
    ours, bare = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = schedule(
            orders,
            market,
            risk_aversion=RISK_AVERSION,
            intervals=INTERVALS,
            impact=impact,
            participation_cap=PARTICIPATION_CAP,
            covariance=risk,
        )
        ours.append(time.perf_counter() - start)
        seconds, status, iterations = bare_clarabel(orders, market, risk, impact)
        bare.append(seconds)
    mine, theirs = statistics.median(ours), statistics.median(bare)
    print(
        f"{name:<22} schedule {mine:6.3f} s (solver chain {result.solve_seconds:.3f} s, "
        f"{result.attempts[-1][0]}: {result.status})  bare Clarabel {theirs:6.3f} s ({status}, "
        f"{iterations} it)  ratio {mine / theirs:5.2f}  expected cost "
        f"{result.expected_cost:,.0f}, std {result.std:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median shown)")
    args = parser.parse_args()
    data = make_data()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{SECURITIES} orders x {INTERVALS} intervals, {FACTORS}-factor covariance, "
        f"participation cap {PARTICIPATION_CAP:g}, risk aversion {RISK_AVERSION:g}; "
        f"{os.cpu_count()} cores, load average {load:.2f}; median of {args.repeat}"
    )
    schedule(*data[:2], risk_aversion=RISK_AVERSION, intervals=3)  # import and first-call costs
    run("3/5 power (Almgren)", AlmgrenThumImpact(), data, args.repeat)
    run("3/2 power (DESIGN 4)", PowerImpact(), data, args.repeat)
    run("linear (Almgren-C.)", LinearImpact(eta=0.3, gamma_permanent=0.1), data, args.repeat)

    orders, market, risk = data
    start = time.perf_counter()
    frame = frontier(
        orders,
        market,
        intervals=INTERVALS,
        impact=AlmgrenThumImpact(),
        participation_cap=PARTICIPATION_CAP,
        covariance=risk,
    )
    seconds = time.perf_counter() - start
    print(
        f"frontier, {len(frame)} risk aversions, assembled per point: {seconds:.2f} s "
        f"({seconds / len(frame):.3f} s a point)"
    )


if __name__ == "__main__":
    main()
