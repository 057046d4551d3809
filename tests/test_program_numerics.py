"""The program's numerics: the 3/2-power cone, zero caps, and the cash class."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, multi_asset

import optirebal as orb
from optirebal.program.conic import SOC
from optirebal.program.prepare import build_problem_data
from optirebal.program.terms import build_program

TARGETS = {"equity": 0.5, "bonds": 0.3, "real_estate": 0.18, "cash": 0.02}


def power_policy(**changes: object) -> orb.Policy:
    policy = orb.Policy(targets=TARGETS, band=orb.Band.absolute(0.01), risk_aversion=2.0,
                        costs=orb.Costs(impact="power"))
    return dataclasses.replace(policy, **changes)


def test_power_impact_is_two_small_cones_per_pair_and_solves_to_full_accuracy():
    portfolio = multi_asset(seed=3, n_securities=30, accounts=("taxable", "ira", "roth"),
                            flows=(0.0, 5e4, 0.0))
    data = build_problem_data(portfolio, power_policy())
    program, _ = build_program(data)
    cones = [size for kind, size in program.cones if kind == SOC]
    impact = program.variables["impact"]
    assert cones == [3] * (2 * (impact.stop - impact.start))
    assert impact.stop - impact.start == (data.buy_cap > 0).sum()  # every pair that can trade
    result = orb.solve(portfolio, power_policy())
    assert result.diagnostics.solver == "CLARABEL"
    assert result.diagnostics.status == "optimal"


def test_zero_caps_keep_an_interior_and_decode_to_exact_zero():
    """Restricted pairs have no variable in the program and exactly zero in the trades."""
    portfolio = multi_asset(seed=3, n_securities=30, accounts=("taxable", "ira", "roth"),
                            flows=(0.0, 5e4, 0.0))
    blocked = [f"S{n}" for n in range(0, 30, 4)]  # every class keeps tradable members
    policy = power_policy(restrictions=orb.Restrictions(no_trade=tuple(blocked)))
    data = build_problem_data(portfolio, policy)
    program, _ = build_program(data)
    sizes = {name: rows.stop - rows.start for name, rows in program.variables.items()}
    assert sizes["buys"] == (data.buy_cap > 0).sum() == data.n_pairs - len(blocked) * 3
    assert (data.buy_cap == 0).sum() == len(blocked) * 3  # the data keeps the exact zero
    result = orb.solve(portfolio, policy)
    assert result.diagnostics.status == "optimal"
    assert not result.orders["security"].isin(blocked).any()
    assert not result.lots_sold["security"].isin(blocked).any()


def test_power_and_quadratic_impact_agree_at_the_reference_participation():
    """The quadratic variant equals the 3/2 power at |x| = rho ADV / V (DESIGN section 4)."""
    portfolio = multi_asset(seed=1)
    power = build_problem_data(portfolio, power_policy())
    quadratic = build_problem_data(portfolio, power_policy(costs=orb.Costs(impact="quadratic")))
    sec = portfolio.securities
    x = power.policy.costs.reference_participation * sec["daily_traded_value"].to_numpy() \
        / power.nav
    np.testing.assert_allclose(power.impact_cost * x**1.5, quadratic.impact_cost * x**2,
                               rtol=1e-12)


def test_a_security_in_the_cash_class_is_refused_by_name():
    sec = pd.DataFrame({"security": ["EQ", "MMF"], "price": [10.0, 1.0],
                        "asset_class": ["equity", "cash"]})
    acc = pd.DataFrame({"account": ["fund"], "type": ["tax_exempt"], "cash": [100.0]})
    lots = pd.DataFrame({"lot": ["L1", "L2"], "account": ["fund", "fund"],
                         "security": ["EQ", "MMF"], "quantity": [50.0, 400.0],
                         "cost_basis": [500.0, 400.0], "acquired": ["2020-01-02"] * 2})
    cov = pd.DataFrame(np.diag([0.04, 0.0]), index=["equity", "cash"],
                       columns=["equity", "cash"])
    portfolio = orb.Portfolio.from_frames(sec, acc, lots, as_of=AS_OF, risk=cov)
    with pytest.raises(orb.InputError) as err:
        orb.solve(portfolio, orb.Policy(targets={"equity": 0.6, "cash": 0.4}))
    assert err.value.field == "asset_class" and err.value.row == "MMF"
    assert "cash_class" in str(err.value)


def household_at_security_level(seed: int, n: int = 24) -> tuple[orb.Portfolio, orb.Policy]:
    """Each security its own class and group; taxable loss lots; an IRA receiving cash."""
    rng = np.random.default_rng(seed)
    names = [f"S{k:02d}" for k in range(n)]
    price = rng.uniform(20, 200, n)
    sec = pd.DataFrame({"security": names, "price": price, "asset_class": names,
                        "half_spread_bps": rng.uniform(1, 5, n)})
    acc = pd.DataFrame({"account": ["taxable", "ira"], "type": ["taxable", "tax_deferred"],
                        "cash": [1e4, 1e4], "flow": [0.0, 1e5]})
    rows = []
    for a in ("taxable", "ira"):
        for k in range(n):
            value = rng.uniform(2e4, 6e4)
            rows.append({"lot": f"{a}-{k}", "account": a, "security": names[k],
                         "quantity": value / price[k],
                         "cost_basis": value * rng.uniform(0.7, 1.4),
                         "acquired": AS_OF - pd.Timedelta(days=int(rng.integers(30, 900)))})
    loadings = pd.DataFrame(rng.normal(0, 0.2, (n, 3)) + np.array([0.6, 0.0, 0.0]), index=names)
    risk = orb.RiskModel.from_factors(loadings, pd.DataFrame(np.eye(3) * 0.02),
                                      pd.Series(rng.uniform(0.01, 0.05, n), index=names))
    portfolio = orb.Portfolio.from_frames(sec, acc, pd.DataFrame(rows), as_of=AS_OF, risk=risk)
    held = portfolio.security_values()
    target = held * rng.uniform(0.7, 1.3, n)
    policy = orb.Policy(targets=(target / target.sum()).to_dict(), band=orb.Band.absolute(0.004),
                        risk_aversion=5.0, tax=orb.Tax(model="linear"))
    return portfolio, policy


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wash_conflicts_are_settled_in_one_round(seed):
    """Groups the first solve trades keep their direction, so one re-solve ends every conflict."""
    from optirebal.decode import wash_conflicts

    portfolio, policy = household_at_security_level(seed)
    result = orb.solve(portfolio, policy)
    data = build_problem_data(portfolio, policy)
    assert result.diagnostics.solves <= 2
    buys = np.zeros(data.n_pairs)
    for row in result.orders[result.orders["shares"] > 0].itertuples():
        p = data.accounts.index(row.account) * len(data.securities) \
            + data.securities.index(row.security)
        buys[p] = row.value / data.nav
    sells = np.zeros(len(data.lot_ids))
    for lot, row in result.lots_sold.iterrows():
        sells[data.lot_ids.index(lot)] = row["proceeds"] / data.nav
    assert wash_conflicts(data, buys, sells, 0.0) == []


def test_groups_outside_their_bands_get_their_direction_before_the_solve():
    portfolio, policy = household_at_security_level(0)
    policy = dataclasses.replace(policy, band=orb.Band.absolute(0.0005))
    result = orb.solve(portfolio, policy)
    assert any("prevented before the solve" in fix for fix in result.diagnostics.fixes)
