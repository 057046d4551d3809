"""Known answers: REFERENCE_CASES band mechanics, impact, lot choice; no-trade region; limits."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, no_trade_edge, stock_and_cash

import optirebal as orb
from optirebal.program.terms.trades import TIE_BREAK, TIE_SQUARE

NO_IMPACT = orb.Costs(impact="none")
TARGETS = {"equity": 0.6, "cash": 0.4}

BAND_POLICIES = {
    "to_target": orb.Policy(TARGETS, mode="to_target", trigger=orb.Band.absolute(0.05),
                            costs=NO_IMPACT),
    "to_edge": orb.Policy(TARGETS, mode="to_band", band=orb.Band.absolute(0.05),
                          trigger=orb.Band.absolute(0.05), costs=NO_IMPACT),
    "relative": orb.Policy(TARGETS, mode="to_band", band=orb.Band.relative(0.1),
                           trigger=orb.Band.relative(0.2), costs=NO_IMPACT),
    "inner": orb.Policy(TARGETS, mode="to_band", band=orb.Band.absolute(0.0175),
                        trigger=orb.Band.absolute(0.02), costs=NO_IMPACT),
}


@pytest.mark.parametrize(("r", "policy", "value"), [
    (0.25, "to_target", -6.00), (0.25, "to_edge", -0.25), (0.25, "relative", 0.0),
    (0.25, "inner", -3.9875),
    (0.75, "to_target", -18.00), (0.75, "to_edge", -10.75), (0.75, "relative", -9.30),
    (0.75, "inner", -15.4625),
    (-0.40, "to_target", 9.60), (-0.40, "to_edge", 5.80), (-0.40, "relative", 5.04),
    (-0.40, "inner", 8.27),
])
def test_band_mechanics(r: float, policy: str, value: float) -> None:
    result = orb.solve(stock_and_cash(price=1 + r), BAND_POLICIES[policy])
    traded = result.orders["value"].sum() if result.traded else 0.0
    assert traded == pytest.approx(value, abs=1e-5)
    if value == 0.0:
        assert not result.traded and result.diagnostics.status == "not triggered"


@pytest.mark.parametrize(("w0", "expected"), [(0.65, 0.62), (0.61, 0.61), (0.55, 0.58)])
def test_trade_to_edge_of_no_trade_region(w0: float, expected: float) -> None:
    # (lambda/2) s^2 (w - 0.6)^2 + c |w - w0|, lambda = 2.5, s^2 = 0.04, c = 0.002: half-width
    # 0.02, measured after the costs (to their order, 1e-5 here, the textbook edges above)
    portfolio = stock_and_cash(shares=100 * w0, cash=100 * (1 - w0), half_spread_bps=20.0)
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.3), risk_aversion=2.5,
                        horizon_years=1.0, costs=NO_IMPACT)
    result = orb.solve(portfolio, policy)
    assert result.weights.loc["equity", "after"] == pytest.approx(expected, abs=5e-5)
    trade, after = no_trade_edge(w0, 0.6, 0.002, 2.5 * 0.04, TIE_BREAK,
                                 tie_square=TIE_SQUARE)
    assert result.weights.loc["equity", "after"] == pytest.approx(after, abs=1e-8)
    traded = result.orders["value"].sum() / 100 if result.traded else 0.0
    assert traded == pytest.approx(trade, abs=1e-8)
    assert result.traded == (w0 != 0.61)


@pytest.mark.parametrize("flow", [0.0, 50.0, 200.0])
def test_the_no_trade_edge_in_weights_does_not_move_with_a_contribution(flow: float) -> None:
    # 55 of stock, 45 of cash, and a contribution: the tracking error is the certainty
    # equivalent of the post-trade portfolio (its value times the variance of its weights), so
    # the edge is 0.6 - 0.02 (to the costs' order) whatever the flow; with the weights' variance
    # alone a contribution of 200 would have put it three times as far
    portfolio = stock_and_cash(shares=55.0, cash=45.0, half_spread_bps=20.0)
    portfolio = portfolio.with_accounts(flow={"fund": flow})
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.3), risk_aversion=2.5,
                        horizon_years=1.0, costs=NO_IMPACT)
    result = orb.solve(portfolio, policy)
    trade, after = no_trade_edge(0.55, 0.6, 0.002, 2.5 * 0.04, TIE_BREAK, flow / 100,
                                 TIE_SQUARE)
    assert result.weights.loc["equity", "after"] == pytest.approx(after, abs=1e-8)
    assert after == pytest.approx(0.58, abs=5e-5)
    assert result.orders["value"].sum() / 100 == pytest.approx(trade, abs=1e-8)


def test_zero_risk_aversion_trades_to_nearest_band_edge() -> None:
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.05), risk_aversion=0.0,
                        costs=NO_IMPACT)
    result = orb.solve(stock_and_cash(price=1.75, half_spread_bps=5.0), policy)
    # the upper edge holds exactly after the costs are paid
    assert result.weights.loc["equity", "after"] == pytest.approx(0.65, abs=1e-7)


def test_large_risk_aversion_trades_to_target() -> None:
    policy = orb.Policy(TARGETS, band=orb.Band.absolute(0.05), risk_aversion=1e5,
                        costs=NO_IMPACT)
    result = orb.solve(stock_and_cash(price=1.75, half_spread_bps=5.0), policy)
    weight = result.weights.loc["equity", "before"] + result.orders["value"].sum() / result.nav
    assert weight == pytest.approx(0.60, abs=1e-4)


def _one_security(nav_cash: float, price: float, lots: list[dict], account_type: str = "taxable",
                  **security: float) -> orb.Portfolio:
    sec = pd.DataFrame([{"security": "STK", "price": price, "asset_class": "equity", **security}])
    acc = pd.DataFrame([{"account": "acct", "type": account_type, "cash": nav_cash}])
    frame = pd.DataFrame([{"account": "acct", "security": "STK", **lot} for lot in lots])
    cov = pd.DataFrame([[0.04]], index=["equity"], columns=["equity"])
    return orb.Portfolio.from_frames(sec, acc, frame, as_of=AS_OF, risk=cov)


def test_impact_cost_matches_boyd_formula() -> None:
    # buy $1,000,000 exactly: 2.5 bp half-spread, k = 1, sigma 2%, ADV $50M -> $3,078.43
    for trade, expected in ((1e6, 3078.43), (2e6, 8500.00)):
        nav = 1e8
        portfolio = _one_security(
            nav - 5e7 + trade * 0 + 0.0, 100.0,
            [{"lot": "L", "quantity": 5e5, "cost_basis": 5e7, "acquired": "2020-01-02"}],
            account_type="tax_exempt", half_spread_bps=2.5, daily_volatility=0.02,
            daily_traded_value=5e7)
        target = (5e7 + trade) / nav
        policy = orb.Policy({"equity": target, "cash": 1 - target}, mode="to_target")
        result = orb.solve(portfolio, policy)
        assert result.orders["value"].sum() == pytest.approx(trade, rel=1e-7)
        assert result.costs.loc["spread", "value"] + result.costs.loc["impact", "value"] == \
            pytest.approx(expected, abs=0.01)


def test_lot_choice_one_rate() -> None:
    lots = [{"lot": f"B{b}", "quantity": 100, "cost_basis": 100 * b, "acquired": "2020-01-02"}
            for b in (50, 80, 120)]
    portfolio = _one_security(0.0, 100.0, lots)
    policy = orb.Policy({"equity": 0.5, "cash": 0.5}, mode="to_target", costs=NO_IMPACT,
                        tax=orb.Tax(short_term_rate=0.2, long_term_rate=0.2))
    result = orb.solve(portfolio, policy)
    sold = result.lots_sold["shares"]
    assert sold.to_dict() == pytest.approx({"B120": 100.0, "B80": 50.0})
    assert result.lots_sold["gain"].sum() == pytest.approx(-1000.0)
    assert result.costs.loc["tax", "value"] == pytest.approx(-200.0)


def test_lot_choice_two_rates_is_not_highest_basis_first() -> None:
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 9800,
             "acquired": AS_OF - dt.timedelta(days=100)},
            {"lot": "B", "quantity": 100, "cost_basis": 9700, "acquired": "2020-01-02"}]
    portfolio = _one_security(0.0, 100.0, lots)
    policy = orb.Policy({"equity": 0.5, "cash": 0.5}, mode="to_target", costs=NO_IMPACT,
                        tax=orb.Tax(short_term_rate=0.37, long_term_rate=0.20))
    result = orb.solve(portfolio, policy)
    assert list(result.lots_sold.index) == ["B"]
    assert result.lots_sold.loc["B", "term"] == "long"
    assert result.costs.loc["tax", "value"] == pytest.approx(60.0)


@pytest.mark.parametrize("nav", [1e4, 1e7, 1e9, 1e11])
def test_same_weights_at_any_nav(nav: float) -> None:
    # $10 thousand to $100 billion: the stock-and-cash case scaled (NAV 145 at scale 1)
    scale = nav / 145.0
    portfolio = stock_and_cash(price=1.75, shares=60 * scale, cash=40 * scale,
                               half_spread_bps=5.0)
    assert portfolio.nav_value == pytest.approx(nav)
    policy = orb.Policy(TARGETS, risk_aversion=2.0, costs=NO_IMPACT)
    result = orb.solve(portfolio, policy)
    reference = orb.solve(stock_and_cash(price=1.75, half_spread_bps=5.0), policy)
    assert result.traded
    assert result.weights["after"].to_numpy() == pytest.approx(
        reference.weights["after"].to_numpy(), abs=1e-7)
    assert result.costs.loc["total", "bps"] == pytest.approx(
        reference.costs.loc["total", "bps"], rel=1e-5)


def test_solving_again_from_the_result_trades_nothing() -> None:
    from conftest import multi_asset

    portfolio = multi_asset(seed=3)
    # Linear costs give a no-trade region; tracking error is measured before costs, so the costs
    # paid shift the optimum by a few dollars, which the minimum trade value absorbs.
    policy = orb.Policy({"equity": 0.5, "bonds": 0.4, "real_estate": 0.1},
                        band=orb.Band.absolute(0.03), risk_aversion=5.0, tax=orb.Tax(model="none"),
                        costs=NO_IMPACT, decode=orb.DecodeOptions(min_trade_value=100.0))
    first = orb.solve(portfolio, policy)
    assert first.traded
    again = orb.solve(orb.apply_trades(portfolio, first), policy)
    assert not again.traded
    assert dataclasses.asdict(again.diagnostics)["status"] == "optimal"
    assert np.allclose(again.weights["after"], first.weights["after"], atol=1e-6)


# --- cash as the residual, and a portfolio without cash (issue 13, policy semantics) ---------


def test_cash_is_the_residual_of_the_band_mechanics() -> None:
    # 60/40 stock/cash after +50%: stock 90 of 130 = 69.23%, inside its relative 20% trigger
    # [48%, 72%]. Cash (30.77%) is the residual: no trigger of its own, so no trade.
    relative = orb.Policy({"equity": 0.6, "cash": 0.4}, mode="to_band",
                          band=orb.Band.relative(0.1), trigger=orb.Band.relative(0.2),
                          costs=NO_IMPACT)
    moved = stock_and_cash(price=1.5)
    assert not orb.solve(moved, relative).traded
    # a trigger named on cash brings its destination band with it: cash 30.77% is below 32%, so
    # trade to cash's lower destination edge 36%: sell 130 x 0.36 - 40 = 6.80 of stock
    on_cash = dataclasses.replace(relative, class_triggers={"cash": orb.Band.relative(0.2)})
    result = orb.solve(moved, on_cash)
    assert result.orders["value"].sum() == pytest.approx(-6.8, abs=1e-4)
    assert result.weights.loc["cash", "after"] == pytest.approx(0.36, abs=1e-6)


def test_a_portfolio_without_cash_invests_a_contribution() -> None:
    # stock/bond targets with no cash class mean fully invested: a $100,000 contribution is
    # invested (less than one share of each left), underweight bonds bought first
    securities = pd.DataFrame({
        "security": ["VTI", "BND"], "price": [250.0, 72.0], "asset_class": ["equity", "bonds"],
        "half_spread_bps": [0.5, 1.0], "daily_volatility": [0.012, 0.004],
        "daily_traded_value": [8e8, 5e8], "lot_size": [1, 1]})
    accounts = pd.DataFrame({"account": ["ira"], "type": ["tax_deferred"], "cash": [0.0],
                             "flow": [100_000.0]})
    lots = pd.DataFrame({"lot": ["a", "b"], "account": ["ira", "ira"],
                         "security": ["VTI", "BND"], "quantity": [2400, 5555],
                         "cost_basis": [60_000.0, 30_000.0],
                         "acquired": ["2021-03-01", "2022-06-15"]})
    cov = pd.DataFrame([[0.0256, 0.001], [0.001, 0.0036]], index=["equity", "bonds"],
                       columns=["equity", "bonds"])
    portfolio = orb.Portfolio.from_frames(securities, accounts, lots, as_of=AS_OF, risk=cov)
    result = orb.solve(portfolio, orb.Policy({"equity": 0.6, "bonds": 0.4}))
    assert result.cash.loc["ira", "after"] < 250.0 + 72.0
    assert result.orders["value"].sum() == pytest.approx(100_000.0, abs=322.0 + 50.0)
    bought = result.orders.set_index("security")["value"]
    # both classes were below target (bonds 36.4% against 40%, equity 54.5% against 60%): both
    # are bought, and each ends within the trading-cost no-trade region of its target (1 pp)
    assert bought["BND"] > 0 and bought["VTI"] > 0
    after = result.weights["after"]
    assert after["bonds"] == pytest.approx(0.4, abs=0.01)
    assert after["equity"] == pytest.approx(0.6, abs=0.01)
