r"""Benchmark of optirebal against a peer library, cvxportfolio, on the same no-tax problem.

500 securities (each its own class: a security-level model) held in one tax-exempt account, one
lot each, some cash, a 10-factor risk model, spread and 3/2-power impact costs. Both libraries
solve the same single-period program with Clarabel,

.. math::

    \min_w\; \frac{\gamma H}{2} (w - t)^\top \Sigma (w - t)
        + \sum_i a_i |x_i| + \sum_i b_i |x_i|^{3/2}
    \quad \text{s.t. } w = w_0 + x,\; w \ge 0,\; \text{cash pays the trades,}

in weights of the pre-trade NAV ``V``: ``t`` the target (cash included, riskless), ``a`` the half
spread, ``b = k sigma sqrt(V / ADV)`` the impact coefficient. The bands are wide enough never to
bind. cvxportfolio poses it as a ``SinglePeriodOptimization`` with ``FactorModelCovariance``
tracking error to a fixed benchmark (the target), ``StocksTransactionCost`` and ``LongOnly``,
executed on user-provided data (``market_data=None``): nothing is downloaded. (cvxportfolio's
budget is ``sum(z) = 0``, costs outside the cash; optirebal's cash also pays the costs. Cash never
binds here, so the two programs have the same solution.)

Printed: post-trade weights of both (they must agree to 1e-4), Clarabel's iterations on each side,
and the times and their ratios the project tracks:

- warm: best of 5 re-solves after a small price change, on an object that has already solved the
  problem once (goal: optirebal at most 1.0x cvxportfolio). cvxportfolio's ``execute`` builds its
  cvxpy problem afresh on every call; its backtest path (parameters updated, the compiled problem
  re-solved) is timed and printed too;
- cold: the first solve in a fresh Python process, imports excluded (goal: at most 0.5x);
- iterations: Clarabel's count on each side (goal for optirebal: 25 or fewer).

Run: ``python benchmarks/bench_peer.py`` (needs the ``bench`` extra: ``pip install -e ".[bench]"``;
2 cores, about 15 seconds). No timing is asserted; the weights are.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

import optirebal as orb

N_SECURITIES, N_FACTORS = 500, 10
SEED = 0
AS_OF = dt.date(2026, 11, 20)
T_EXECUTE = pd.Timestamp("2026-11-20")
NAV = 1e8
CASH_WEIGHT = 0.02
RISK_AVERSION, HORIZON_YEARS = 100.0, 0.25
TIE_BREAK = 1e-6
"""optirebal's cost per unit of gross turnover (``optirebal.program.data.TIE_BREAK``), added to
cvxportfolio's spread so that both objectives are the same function."""
CASH = "cash"
WARM_REPEATS = 5
PRICE_MOVE = 0.01  # daily-size price moves between the re-solves

WARM_GOAL, COLD_GOAL, ITERATION_GOAL, WEIGHT_GOAL = 1.0, 0.5, 25, 1e-4


@dataclass(frozen=True)
class Market:
    """The problem's data, in the units both libraries take.

    Attributes
    ----------
    securities : DataFrame
        Index ``security``: ``price``, ``half_spread_bps``, ``daily_volatility``,
        ``daily_traded_value``.
    shares : Series
        Shares held per security (one lot each).
    cash : float
        Cash held (currency).
    loadings, omega, specific : DataFrame, DataFrame, Series
        Factor loadings (securities x factors), factor covariance and specific variances, all
        annualized.
    target : Series
        Target weight per security and ``cash`` (sums to one).
    """

    securities: pd.DataFrame
    shares: pd.Series
    cash: float
    loadings: pd.DataFrame
    omega: pd.DataFrame
    specific: pd.Series
    target: pd.Series

    def prices(self, move: int) -> pd.Series:
        """Prices after re-solve ``move`` (0: the base prices, then small seeded moves)."""
        price = self.securities["price"]
        if move == 0:
            return price
        rng = np.random.default_rng(1000 + move)
        return price * (1.0 + rng.normal(0.0, PRICE_MOVE, len(price)))


def market(seed: int = SEED) -> Market:
    """The synthetic 500-security problem (seeded; no network)."""
    rng = np.random.default_rng(seed)
    names = pd.Index([f"S{n:03d}" for n in range(N_SECURITIES)], name="security")
    securities = pd.DataFrame({
        "price": rng.uniform(10, 500, N_SECURITIES),
        "half_spread_bps": rng.uniform(0.5, 10, N_SECURITIES),
        "daily_volatility": rng.uniform(0.01, 0.03, N_SECURITIES),
        "daily_traded_value": rng.uniform(5e6, 5e8, N_SECURITIES),
    }, index=names)
    held = rng.uniform(0.5, 1.5, N_SECURITIES)
    held *= (1 - CASH_WEIGHT) * NAV / held.sum()
    shares = pd.Series(held / securities["price"].to_numpy(), index=names)
    factors = [f"f{k}" for k in range(N_FACTORS)]
    loadings = pd.DataFrame(rng.normal(0, 0.3, (N_SECURITIES, N_FACTORS))
                            + 0.5 * (np.arange(N_FACTORS) == 0), index=names, columns=factors)
    omega = pd.DataFrame(np.diag(rng.uniform(0.01, 0.04, N_FACTORS)), index=factors,
                         columns=factors)
    specific = pd.Series(rng.uniform(0.01, 0.09, N_SECURITIES), index=names)
    risky = held * rng.uniform(0.7, 1.3, N_SECURITIES)
    target = pd.Series(np.append(risky / risky.sum() * (1 - CASH_WEIGHT), CASH_WEIGHT),
                       index=[*names, CASH])
    return Market(securities, shares, CASH_WEIGHT * NAV, loadings, omega, specific, target)


# --- optirebal --------------------------------------------------------------------------------

def optirebal_problem(m: Market) -> tuple[orb.Portfolio, orb.Policy]:
    """The portfolio (at the base prices) and policy of ``m`` in optirebal's terms."""
    names = m.securities.index
    securities = m.securities.reset_index().assign(asset_class=list(names))
    accounts = pd.DataFrame({"account": ["roth"], "type": ["tax_exempt"], "cash": [m.cash]})
    lots = pd.DataFrame({
        "lot": [f"L{n}" for n in range(len(names))], "account": "roth", "security": names,
        "quantity": m.shares.to_numpy(),
        "cost_basis": (m.shares * m.securities["price"]).to_numpy(),
        "acquired": AS_OF - dt.timedelta(days=400),
    })
    risk = orb.RiskModel.from_factors(m.loadings, m.omega, m.specific)
    portfolio = orb.Portfolio.from_frames(securities, accounts, lots, as_of=AS_OF, risk=risk)
    policy = orb.Policy(targets=m.target.to_dict(), band=orb.Band.absolute(1.0),
                        risk_aversion=RISK_AVERSION, horizon_years=HORIZON_YEARS,
                        costs=orb.Costs(impact="power"))
    return portfolio, policy


def optirebal_solver(policy: orb.Policy) -> Callable[[orb.Portfolio], orb.Result]:
    """``portfolio -> result``: an ``orb.Rebalancer`` when the package has one, else ``solve``."""
    if hasattr(orb, "Rebalancer"):
        return orb.Rebalancer(policy).solve
    return lambda portfolio: orb.solve(portfolio, policy)


def optirebal_weights(portfolio: orb.Portfolio, result: orb.Result) -> pd.Series:
    """Post-trade weights (of pre-trade NAV, before costs) per security and cash."""
    traded = result.orders.groupby("security")["value"].sum()
    after = portfolio.security_values().add(traded, fill_value=0.0)
    cash = portfolio.cash_value - float(traded.sum())
    return pd.concat([after, pd.Series({CASH: cash})]) / result.nav


# --- cvxportfolio ---------------------------------------------------------------------------

def cvxportfolio_policy(m: Market) -> object:
    """A cvxportfolio ``SinglePeriodOptimization`` of the same problem, solved by Clarabel.

    Its objective (maximized) is ``-(gamma H / 2) (w - t)' Sigma (w - t) - tcost(z)``, with
    ``tcost = a |z| + b sigma |z|^{3/2} / (volume / V)^{1/2}`` per security (cvxportfolio's
    ``TransactionCost``): with ``b = k`` and ``volume`` the daily traded value, optirebal's
    impact. The policy records Clarabel's iteration count in ``iterations`` after each solve
    (``execute`` discards its cvxpy problem before returning).
    """
    import cvxportfolio as cvx

    class RecordingSPO(cvx.SinglePeriodOptimization):
        iterations: int | None = None

        def values_in_time_recursive(self, **kwargs):
            out = super().values_in_time_recursive(**kwargs)
            self.iterations = self._problem.solver_stats.num_iters
            return out

    sec = m.securities
    risk = cvx.FactorModelCovariance(F=m.loadings.T, d=m.specific, Sigma_F=m.omega)
    cost = cvx.StocksTransactionCost(
        a=sec["half_spread_bps"] / 1e4 + TIE_BREAK, pershare_cost=None,
        b=orb.Costs().impact_coefficient, sigma=sec["daily_volatility"],
        volume_hat=sec["daily_traded_value"])
    objective = -(RISK_AVERSION * HORIZON_YEARS / 2) * risk - cost
    return RecordingSPO(objective, [cvx.LongOnly(applies_to_cash=True)],
                        include_cash_return=False, benchmark=m.target, solver="CLARABEL")


def cvxportfolio_holdings(m: Market, price: pd.Series) -> pd.Series:
    """Holdings in currency, cash last (cvxportfolio's convention)."""
    return pd.concat([m.shares * price, pd.Series({CASH: m.cash})])


def cvxportfolio_execute(policy: object, h: pd.Series) -> pd.Series:
    """Post-trade weights (of pre-trade NAV, before costs) from one ``execute``."""
    u, _, _ = policy.execute(h=h, market_data=None, t=T_EXECUTE)
    return (h + u) / h.sum()


def cvxportfolio_resolve(policy: object, h: pd.Series) -> pd.Series:
    """Post-trade weights from cvxportfolio's backtest path: the compiled problem re-solved.

    ``policy`` must have been initialized (``initialize_estimator_recursive``); this is what its
    simulator calls at each step.
    """
    v = h.sum()
    return policy.values_in_time_recursive(
        t=T_EXECUTE, current_weights=h / v, current_portfolio_value=v, past_returns=None,
        past_volumes=None, current_prices=None)


# --- timing -----------------------------------------------------------------------------------

def cold(library: str) -> tuple[float, int]:
    """Seconds and Clarabel iterations of the first solve of ``library`` in this process."""
    m = market()
    if library == "optirebal":
        portfolio, policy = optirebal_problem(m)
        start = time.perf_counter()
        result = optirebal_solver(policy)(portfolio)
        return time.perf_counter() - start, result.diagnostics.iterations
    h = cvxportfolio_holdings(m, m.prices(0))
    start = time.perf_counter()
    spo = cvxportfolio_policy(m)
    cvxportfolio_execute(spo, h)
    return time.perf_counter() - start, spo.iterations


def cold_in_subprocess(library: str) -> tuple[float, int]:
    """:func:`cold` in a fresh Python process."""
    done = subprocess.run([sys.executable, __file__, "--cold", library], check=True,
                          capture_output=True, text=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["seconds"], out["iterations"]


def best_of(run: Callable[[int], pd.Series]) -> tuple[float, list[pd.Series]]:
    """Best seconds of ``run(move)`` over the warm moves, and the weights of each."""
    seconds, weights = np.inf, []
    for move in range(1, WARM_REPEATS + 1):
        start = time.perf_counter()
        weights.append(run(move))
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, weights


def verdict(value: float, goal: float, text: str) -> str:
    """``(goal <= text) met`` or ``... NOT met``."""
    return f"(goal <= {text}) {'met' if value <= goal else 'NOT met'}"


def warm_runs(m: Market) -> dict[str, tuple[float, list[pd.Series]]]:
    """Per way of re-solving, best seconds over the warm moves and the weights of the base prices
    and of each move. Every solver object has solved the problem once before it is timed."""
    portfolio, policy = optirebal_problem(m)
    solve = optirebal_solver(policy)
    spo = cvxportfolio_policy(m)

    def optirebal_run(move: int) -> pd.Series:
        moved = portfolio.with_prices(m.prices(move))
        return optirebal_weights(moved, solve(moved))

    def execute_run(move: int) -> pd.Series:
        return cvxportfolio_execute(spo, cvxportfolio_holdings(m, m.prices(move)))

    def resolve_run(move: int) -> pd.Series:
        return cvxportfolio_resolve(spo, cvxportfolio_holdings(m, m.prices(move)))

    runs = {}
    for name, run in (("optirebal", optirebal_run), ("execute", execute_run)):
        first = run(0)
        seconds, weights = best_of(run)
        runs[name] = seconds, [first, *weights]
    universe = cvxportfolio_holdings(m, m.prices(0)).index
    spo.initialize_estimator_recursive(universe=universe,
                                       trading_calendar=pd.DatetimeIndex([T_EXECUTE]))
    first = resolve_run(0)
    seconds, weights = best_of(resolve_run)
    runs["resolve"] = seconds, [first, *weights]
    spo.finalize_estimator_recursive()
    return runs


def main() -> None:
    try:
        import cvxportfolio  # noqa: F401
    except ImportError:
        print('cvxportfolio is not installed; install the bench extra: pip install -e ".[bench]"')
        return
    cold_orb, iterations_orb = cold_in_subprocess("optirebal")
    cold_cvx, iterations_cvx = cold_in_subprocess("cvxportfolio")
    m = market()
    runs = warm_runs(m)
    (warm_orb, ours), (warm_cvx, peer), (resolve_cvx, resolved) = (
        runs["optirebal"], runs["execute"], runs["resolve"])
    gap = max(float((a - b.reindex(a.index)).abs().max())
              for a, b in zip([*ours, *ours], [*peer, *resolved], strict=True))
    h = cvxportfolio_holdings(m, m.prices(0))
    traded = (ours[0] - h / h.sum()).drop(CASH).abs()
    ratio_warm, ratio_cold = warm_orb / warm_cvx, cold_orb / cold_cvx

    print(f"problem: {N_SECURITIES} securities (one class each), 1 tax-exempt account, "
          f"{N_FACTORS} factors, 3/2-power impact, non-binding bands; "
          f"{int((traded > 1e-7).sum())} securities traded, turnover {traded.sum():.2%}")
    print(f"cold, first solve in a fresh process:  optirebal {cold_orb:7.3f} s, "
          f"cvxportfolio {cold_cvx:7.3f} s")
    print(f"warm re-solve (best of {WARM_REPEATS}):            optirebal {warm_orb:7.3f} s, "
          f"cvxportfolio {warm_cvx:7.3f} s (execute)")
    print(f"cvxportfolio re-solve of its compiled problem (its backtest path): "
          f"{resolve_cvx:7.3f} s")
    print(f"ratio warm optirebal / cvxportfolio: {ratio_warm:.2f} "
          f"{verdict(ratio_warm, WARM_GOAL, '1.0')}")
    print(f"ratio warm optirebal / cvxportfolio backtest re-solve: "
          f"{warm_orb / resolve_cvx:.2f}")
    print(f"ratio cold optirebal / cvxportfolio: {ratio_cold:.2f} "
          f"{verdict(ratio_cold, COLD_GOAL, '0.5')}")
    print(f"Clarabel iterations optirebal / cvxportfolio: {iterations_orb} / {iterations_cvx} "
          f"{verdict(iterations_orb, ITERATION_GOAL, '25')}")
    print(f"max |weight difference|: {gap:.1e} {verdict(gap, WEIGHT_GOAL, '1e-4')}")
    assert gap <= WEIGHT_GOAL, f"post-trade weights differ by {gap:.2e}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cold"]:
        seconds, iterations = cold(sys.argv[2])
        print(json.dumps({"seconds": seconds, "iterations": iterations}))
    else:
        main()
