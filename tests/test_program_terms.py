"""The program's foundation: terms and their numpy twins, a build linear in size, re-use by shape,
one solve per warm call, and events.

The twins are checked against the assembled program at its optimum (where every epigraph is
tight): the sum of the terms' numpy objectives equals the solver's objective, and the terms'
residuals are within tolerance. Linearity is checked on the data, not on timings: the number of
variables, rows and nonzeros per lot stays the same as the book grows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import multi_asset

import optirebal as orb
from optirebal.program.prepare import build_problem_data
from optirebal.program.solvers import solve_conic
from optirebal.program.terms import (
    TERMS,
    Point,
    build_program,
    constraint_residual,
    cost_values,
    objective_value,
)

TARGETS = {"equity": 0.5, "bonds": 0.3, "real_estate": 0.2}


def solved_point(data):
    program, ctx = build_program(data)
    answer = solve_conic(program, "CLARABEL")
    assert answer.status == "optimal"
    x = answer.x
    point = Point(ctx.buys.padded(program.n) @ x + ctx.buys.constant,
                  ctx.sells.padded(program.n) @ x + ctx.sells.constant,
                  x[program.variables["derivatives"]] if "derivatives" in program.variables
                  else np.zeros(0))
    return program, x, point


@pytest.mark.parametrize("impact", ["power", "quadratic", "none"])
@pytest.mark.parametrize("tax", ["linear", "none"])
def test_numpy_terms_add_up_to_the_solver_objective(impact: str, tax: str) -> None:
    portfolio = multi_asset(seed=4, n_securities=9, accounts=("taxable", "ira"),
                            flows=(2e4, -1e4))
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.02), risk_aversion=3.0,
                        costs=orb.Costs(impact=impact), tax=orb.Tax(model=tax),
                        turnover_cap=0.5)
    data = build_problem_data(portfolio, policy)
    program, x, point = solved_point(data)
    solver_objective = 0.5 * x @ (program.P @ x) + program.q @ x + program.constant
    assert objective_value(data, point) == pytest.approx(solver_objective, abs=1e-9)
    assert constraint_residual(data, point) <= 1e-7
    costs = cost_values(data, point)
    assert set(costs) == {"spread", "commission", "impact"}
    assert all(value >= 0 for value in costs.values())


def test_every_term_names_itself_once() -> None:
    names = [term.name for term in TERMS]
    assert len(names) == len(set(names)) and all(names)


def test_build_grows_linearly_in_lots() -> None:
    """Variables, rows and nonzeros per lot are the same at 4x the lots (same securities)."""
    sizes = {}
    for lots_per_position in (2, 8):
        portfolio = multi_asset(seed=2, n_securities=30, accounts=("taxable", "ira", "roth"),
                                lots_per_position=lots_per_position)
        data = build_problem_data(portfolio, orb.Policy(TARGETS, costs=orb.Costs("power")))
        program, _ = build_program(data)
        sizes[len(data.lot_ids)] = (program.n, program.A.shape[0], program.A.nnz)
    (small, s), (large, big) = sorted(sizes.items())
    per_lot = [(b - a) / (large - small) for a, b in zip(s, big, strict=True)]
    # each extra lot adds one variable, its two bound rows, and at most a few nonzeros (bounds,
    # cash, exposure, tax, impact, and one in each of the rows of the linear costs and of the
    # positions after the trades)
    assert per_lot[0] == pytest.approx(1.0)
    assert per_lot[1] == pytest.approx(2.0)
    assert per_lot[2] <= 10.0


def test_a_lot_bought_or_sold_keeps_the_shape_and_twelve_steps_compile_once() -> None:
    portfolio = multi_asset(seed=1, n_securities=9, accounts=("taxable", "ira"),
                            flows=(0.0, 3e4))
    # soft bands: apply_trades carries each step's loss sales into the history, and a group sold
    # at a loss may not be bought back for 30 days, which a 1-point hard band could not allow
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.01), risk_aversion=5.0,
                        soft_bands=True)
    rebalancer = orb.Rebalancer(policy)
    compiles, lots = [], []
    for step in range(12):
        result = rebalancer.solve(portfolio)
        compiles.append(result.diagnostics.compiles)
        lots.append(len(portfolio.lots))
        portfolio = orb.apply_trades(portfolio, result)
        moved = portfolio.securities["price"] * (1.0 + 0.02 * np.sin(np.arange(9) + step))
        portfolio = dataclasses.replace(  # a week later (the backtester's job, done by hand)
            portfolio.with_prices(moved).with_accounts(flow={"ira": 1e4 if step % 3 == 0
                                                             else 0.0}),
            as_of=portfolio.as_of + dt.timedelta(days=7))
    assert sum(compiles) <= 2 and compiles[0] == 1
    assert len(set(lots)) > 1  # lots were added and removed along the way


def test_a_warm_call_with_the_same_conflicts_solves_once() -> None:
    """The wash-sale directions a call settles are kept for the next call of the same shape."""
    securities = pd.DataFrame({
        "security": ["A", "B"], "price": [10.0, 10.0], "asset_class": ["equity", "bonds"],
        "half_spread_bps": [1.0, 1.0], "daily_volatility": [0.01, 0.005],
        "daily_traded_value": [1e9, 1e9]})
    accounts = pd.DataFrame({"account": ["taxable", "ira"],
                             "type": ["taxable", "tax_deferred"],
                             "cash": [0.0, 0.0], "flow": [0.0, 20_000.0]})
    lots = pd.DataFrame({
        "lot": ["A-loss", "B-t", "A-ira", "B-ira"],
        "account": ["taxable", "taxable", "ira", "ira"], "security": ["A", "B", "A", "B"],
        "quantity": [3000.0, 3000.0, 2000.0, 2000.0],
        "cost_basis": [45_000.0, 28_000.0, 20_000.0, 20_000.0],
        "acquired": ["2022-01-03"] * 4})
    portfolio = orb.Portfolio.from_frames(securities, accounts, lots, as_of="2026-11-20",
                                          risk=pd.DataFrame([[0.03, 0.002], [0.002, 0.004]],
                                                            index=["equity", "bonds"],
                                                            columns=["equity", "bonds"]))
    policy = orb.Policy({"equity": 0.6, "bonds": 0.4}, band=orb.Band.absolute(0.2),
                        risk_aversion=20.0, tax=orb.Tax(short_term_rate=0.4,
                                                        long_term_rate=0.25))
    rebalancer = orb.Rebalancer(policy)
    first = rebalancer.solve(portfolio)
    kinds = list(first.events["kind"])
    assert "wash_conflict" in kinds and first.diagnostics.solves == 2
    again = rebalancer.solve(portfolio.with_prices({"A": 10.05, "B": 9.98}))
    assert again.diagnostics.compiles == 0
    assert again.diagnostics.solves == 1
    assert "wash_known_direction" in set(again.events["kind"])


def test_events_carry_kinds_and_values() -> None:
    portfolio = multi_asset(seed=3, n_securities=9, accounts=("taxable", "ira"))
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.01), risk_aversion=5.0,
                        restrictions=orb.Restrictions(no_trade=("S0",)))
    result = orb.solve(portfolio, policy)
    events = result.events
    assert list(events.columns) == ["kind", "account", "security", "asset_class", "value",
                                    "limit", "message"]
    restriction = events[events["kind"] == "restriction"]
    # no_trade closes the buys of S0 in both accounts and every lot of S0
    n_lots = int((portfolio.lots["security"] == "S0").sum())
    assert sorted(restriction["value"]) == sorted([2.0, float(n_lots)])
    quiet = orb.solve(portfolio, dataclasses.replace(policy, trigger=orb.Band.absolute(0.9)))
    assert quiet.events["kind"].iloc[0] == "not_triggered"
    assert not quiet.events["kind"].isin(["band_breach", "restriction"]).any()
    assert quiet.diagnostics.notes == tuple(quiet.events["message"])


def test_a_borrow_fee_is_one_term() -> None:
    """The walk-through of docs/architecture.md, run as written."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    portfolio = multi_asset(seed=6, n_securities=6, accounts=("ira",))
    targets = {"equity": 0.34, "bonds": 0.33, "real_estate": 0.33}
    namespace = {"optirebal": orb, "targets": targets}
    exec(code, namespace)
    fee = namespace["BorrowFee"]({"S0": 0.05})
    plain = orb.solve(portfolio, dataclasses.replace(namespace["policy"], extra_terms=()))
    charged = orb.solve(portfolio, dataclasses.replace(namespace["policy"], extra_terms=(fee,)))
    held = portfolio.security_values()

    def after(result: orb.Result) -> float:
        return float(held["S0"] + result.orders.loc[result.orders["security"] == "S0",
                                                    "value"].sum())

    assert after(charged) < after(plain)  # the fee makes S0 less attractive to hold
    years = charged.nav * 0.05 * orb.Policy(targets).horizon_years
    assert charged.costs.loc["borrow_fee", "value"] == pytest.approx(
        after(charged) / charged.nav * years, rel=1e-6)
    data = build_problem_data(portfolio, dataclasses.replace(namespace["policy"],
                                                             extra_terms=(fee,)))
    program, x, point = solved_point(data)
    solver_objective = 0.5 * x @ (program.P @ x) + program.q @ x + program.constant
    assert objective_value(data, point) == pytest.approx(solver_objective, abs=1e-9)


def test_extra_terms_are_checked_and_stay_out_of_toml() -> None:
    with pytest.raises(orb.InputError, match="extra_terms"):
        orb.Policy(TARGETS, extra_terms=("not a term",))
    with pytest.raises(orb.InputError, match="extra_terms"):
        orb.Policy(TARGETS, extra_terms=(TERMS[0],)).to_toml()


def test_a_sweep_shares_the_workspace_of_its_first_point() -> None:
    portfolio = multi_asset(seed=1, n_securities=9, accounts=("taxable", "ira"),
                            flows=(0.0, 3e4))
    first = orb.Rebalancer(orb.Policy(TARGETS, risk_aversion=1.0))
    first.solve(portfolio)
    results = [first.with_policy(orb.Policy(TARGETS, risk_aversion=g)).solve(portfolio)
               for g in (2.0, 8.0, 32.0)]
    assert [r.diagnostics.compiles for r in results] == [0, 0, 0]
    # more risk aversion, closer to target
    tracking = [r.tracking_error["after"] for r in results]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(tracking))


def test_an_answer_labelled_optimal_must_prove_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A solver that returns no trade (or any garbage) as "optimal" is refused by the numpy
    certificate, and the chain moves on."""
    from optirebal.program import solve as chain
    from optirebal.program.solvers import Answer

    real = chain.solve_conic

    def lazy(program, solver, options=None, settings=None):
        answer = real(program, solver, options, settings)
        if solver == "CLARABEL":  # the same duals, but a primal of zeros
            return Answer(np.zeros_like(answer.x), answer.duals, "optimal", 3, 0.0)
        return answer

    monkeypatch.setattr(chain, "solve_conic", lazy)
    portfolio = multi_asset(seed=2, n_securities=6, accounts=("ira",))
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.3), risk_aversion=50.0,
                        costs=orb.Costs(impact="none"))
    result = orb.solve(portfolio, policy)
    clarabel = result.diagnostics.attempts[0]
    assert clarabel[0] == "CLARABEL"
    assert "certificate fails" in clarabel[1] or "worse than no trade" in clarabel[1]
    assert result.diagnostics.solver == "ECOS" and result.traded
    assert "solver_fallback" in set(result.events["kind"])


def test_soft_bands_count_in_the_numpy_objective() -> None:
    portfolio = multi_asset(seed=4, n_securities=9, accounts=("taxable", "ira"))
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.001), soft_bands=True,
                        band_penalty=0.01, risk_aversion=0.5, turnover_cap=0.02)
    data = build_problem_data(portfolio, policy)
    program, x, point = solved_point(data)
    solver_objective = 0.5 * x @ (program.P @ x) + program.q @ x + program.constant
    assert objective_value(data, point) == pytest.approx(solver_objective, abs=1e-9)
