"""Properties over random small portfolios (hypothesis).

2-4 classes, 2-6 securities, 1-3 accounts of every tax type, lots with gains and losses, random
flows, cash and reserves, lot sizes 0 / 1 / 100, every mode. Whatever the solve returns:

- cash is conserved per account (before + flow + net proceeds - costs = after) and holds its
  reserve, or the solve raised an :class:`InfeasibleError` that names the conflict;
- holdings are conserved: the portfolio after :func:`optirebal.apply_trades` holds the pre-trade
  shares plus the orders, never a negative position, and its value is the pre-trade NAV plus the
  flows minus the costs;
- lot sells stay within their lots and add up to the sell orders;
- zero trades are not orders (and, in the second test, orders respect the lot size);
- the reported post-trade weights are the weights of the portfolio after the trades, and hard bands
  hold within one rounding unit per order, otherwise the breach is in ``weights["outside"]``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF
from hypothesis import HealthCheck, Phase, event, given, seed, settings
from hypothesis import strategies as st

import optirebal as orb

ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
MODES = ("full", "to_band", "to_target", "buy_only", "sell_only", "cash_only")
SOFT_MODES = ("buy_only", "sell_only", "cash_only")
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)  # no shrinking: a failure prints as found
MONEY = 1e-6  # fraction of NAV: tolerance on money identities (rounding of floats, not solvers)


@st.composite
def cases(draw: st.DrawFn) -> tuple[orb.Portfolio, orb.Policy]:
    n_classes = draw(st.integers(2, 4))
    n_securities = draw(st.integers(max(2, n_classes), 6))
    n_accounts = draw(st.integers(1, 3))
    classes = [f"c{k}" for k in range(n_classes)]
    # every class has a security
    asset_class = classes + [draw(st.sampled_from(classes))
                             for _ in range(n_securities - n_classes)]
    securities = [f"S{i}" for i in range(n_securities)]
    price = [draw(st.floats(1.0, 500.0)) for _ in securities]
    sec = pd.DataFrame({
        "security": securities, "price": price, "asset_class": asset_class,
        "half_spread_bps": [draw(st.sampled_from([0.0, 1.0, 5.0, 20.0])) for _ in securities],
        "daily_volatility": [draw(st.floats(0.0, 0.03)) for _ in securities],
        "daily_traded_value": [draw(st.sampled_from([1e6, 1e8, 1e10])) for _ in securities],
        "lot_size": [draw(st.sampled_from([0, 1, 100])) for _ in securities],
    })
    accounts = [f"A{a}" for a in range(n_accounts)]
    rows = []
    held = {}
    for a in accounts:
        for i, s in enumerate(securities):
            if not draw(st.booleans()):
                continue
            for n in range(draw(st.integers(1, 2))):
                quantity = float(draw(st.integers(1, 3000)))
                value = quantity * price[i]
                rows.append({"lot": f"{a}-{s}-{n}", "account": a, "security": s,
                             "quantity": quantity,
                             "cost_basis": value * draw(st.floats(0.5, 1.5)),
                             "acquired": AS_OF - dt.timedelta(days=draw(st.integers(0, 2000)))})
                held[a] = held.get(a, 0.0) + value
    if not rows:  # at least one lot
        rows.append({"lot": "A0-S0-0", "account": accounts[0], "security": securities[0],
                     "quantity": 100.0, "cost_basis": 80.0 * price[0], "acquired": "2020-01-02"})
        held[accounts[0]] = 100.0 * price[0]
    cash, flow, reserve = [], [], []
    for a in accounts:
        size = held.get(a, 0.0) + 1000.0
        cash.append(size * draw(st.sampled_from([0.0, 0.01, 0.05, 0.2])))
        flow.append(size * draw(st.sampled_from([0.0, 0.0, 0.05, -0.02, -0.1])))
        reserve.append(cash[-1] * draw(st.sampled_from([0.0, 0.0, 0.5])))
    acc = pd.DataFrame({"account": accounts,
                        "type": [draw(st.sampled_from(ACCOUNT_TYPES)) for _ in accounts],
                        "cash": cash, "flow": flow, "cash_reserve": reserve})
    vol = np.array([draw(st.floats(0.02, 0.25)) for _ in classes])
    rho = draw(st.floats(0.0, 0.8))
    corr = np.full((n_classes, n_classes), rho) + (1 - rho) * np.eye(n_classes)
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=classes, columns=classes)
    portfolio = orb.Portfolio.from_frames(sec, acc, pd.DataFrame(rows), as_of=AS_OF, risk=cov)

    mode = draw(st.sampled_from(MODES))
    # to_target collapses every band: without a cash target the cash would have to end at
    # exactly zero after paying the costs, which is infeasible whenever a trade costs anything
    with_cash = mode == "to_target" or draw(st.booleans())
    names = classes + (["cash"] if with_cash else [])
    raw = np.array([draw(st.integers(1, 10)) for _ in names], dtype=float)
    targets = dict(zip(names, raw / raw.sum(), strict=True))
    policy = orb.Policy(
        targets, band=orb.Band.absolute(draw(st.sampled_from([0.02, 0.05, 0.1]))), mode=mode,
        risk_aversion=draw(st.sampled_from([0.0, 1.0, 20.0])),
        target_tolerance=draw(st.sampled_from([0.0, 0.01])),
        soft_bands=draw(st.booleans()),
        costs=orb.Costs(impact=draw(st.sampled_from(["power", "none"]))),
        decode=orb.DecodeOptions(min_trade_value=draw(st.sampled_from([0.0, 0.0, 500.0]))),
    )
    return portfolio, policy


def check_result(portfolio: orb.Portfolio, policy: orb.Policy, result: orb.Result) -> None:
    nav = portfolio.nav_value
    assert result.nav == pytest.approx(nav)
    orders, lots_sold, cash = result.orders, result.lots_sold, result.cash
    sec = portfolio.securities

    # orders: signs, no zero orders, lot sizes
    assert (orders["shares"] != 0).all()
    assert (np.sign(orders["shares"]) == np.where(orders["side"] == "buy", 1, -1)).all()
    assert orders.duplicated(["account", "security"]).sum() == 0
    holdings = portfolio.holdings["shares"]
    for row in orders.itertuples():
        assert row.value == pytest.approx(row.shares * sec.loc[row.security, "price"])

    # lots sold: within their lots, and they make up the sell orders
    if len(lots_sold):
        quantity = portfolio.lots.loc[lots_sold.index, "quantity"]
        assert (lots_sold["shares"] > 0).all()
        assert (lots_sold["shares"] <= quantity * (1 + 1e-12)).all()
        assert (lots_sold["account"] == portfolio.lots.loc[lots_sold.index, "account"]).all()
        sold = lots_sold.groupby(["account", "security"])["shares"].sum()
    else:
        sold = pd.Series(dtype=float)
    sells = orders[orders["shares"] < 0].set_index(["account", "security"])["shares"]
    assert set(sold.index) == set(sells.index)
    for key, shares in sold.items():
        assert shares == pytest.approx(-sells[key], rel=1e-12, abs=1e-9)

    # cash conserved per account and above its reserve
    assert list(cash.index) == list(portfolio.accounts.index)
    np.testing.assert_allclose(cash["before"], portfolio.accounts["cash"], rtol=0, atol=0)
    np.testing.assert_allclose(cash["flow"], portfolio.accounts["flow"], rtol=0, atol=0)
    net = -orders.groupby("account")["value"].sum().reindex(cash.index, fill_value=0.0)
    np.testing.assert_allclose(cash["traded"], net, rtol=0, atol=MONEY * nav)
    np.testing.assert_allclose(cash["after"], cash["before"] + cash["flow"] + cash["traded"]
                               - cash["costs"], rtol=0, atol=MONEY * nav)
    assert (cash["costs"] >= -MONEY * nav).all()
    assert (cash["after"] >= cash["reserve"] - 1e-7 * nav).all(), cash
    assert cash["costs"].sum() == pytest.approx(
        result.costs.loc[["spread", "commission", "impact"], "value"].sum(), abs=MONEY * nav)

    # holdings conserved, never negative, and the value adds up
    after = orb.apply_trades(portfolio, result)
    new = after.holdings["shares"]
    keys = set(new.index) | set(holdings.index) | set(map(tuple, orders[["account", "security"]]
                                                          .to_numpy()))
    traded = orders.set_index(["account", "security"])["shares"]
    for key in keys:
        expected = holdings.get(key, 0.0) + traded.get(key, 0.0)
        assert new.get(key, 0.0) == pytest.approx(expected, rel=1e-12, abs=1e-9), key
        assert expected >= -1e-9, key
    assert (after.lots["quantity"] > 0).all()
    np.testing.assert_allclose(after.accounts["cash"], cash["after"].clip(lower=0.0), rtol=0,
                               atol=0)
    assert after.nav_value == pytest.approx(
        nav + cash["flow"].sum() - cash["costs"].sum(), abs=MONEY * nav)

    # the reported weights are those of the portfolio after the trades
    w = result.weights
    values = after.security_values()
    exposure = after.exposures.reindex(columns=values.index).fillna(0.0)
    for name in w.index:
        if name == policy.cash_class and name not in portfolio.classes:
            weight = after.cash_value / after.nav_value
        else:
            weight = float(exposure.loc[name] @ values) / after.nav_value
        assert w.loc[name, "after"] == pytest.approx(weight, abs=1e-9), name
    outside = np.maximum(np.maximum(w["after"] - w["upper"], w["lower"] - w["after"]), 0.0)
    np.testing.assert_allclose(w["outside"], outside, rtol=0, atol=1e-12)

    # hard bands hold within one rounding unit of every order on the class; to_target holds its
    # collapsed band before costs, so there the costs paid may move a weight by their share of NAV
    if policy.soft_bands or policy.mode in SOFT_MODES:
        return
    unit_value = (sec["lot_size"] * sec["price"]).reindex(orders["security"]).to_numpy()
    paid = cash["costs"].sum() / after.nav_value if policy.mode == "to_target" else 0.0
    for name in w.index:
        if name == policy.cash_class and name not in portfolio.classes:
            loads = np.ones(len(orders), dtype=bool)
        else:
            loads = (portfolio.exposures.loc[name].reindex(orders["security"]) != 0).to_numpy()
        tolerance = unit_value[loads].sum() / after.nav_value + paid + 1e-6
        # an order rounded away to nothing is not in the orders; the result then reports the
        # breach as an event carrying the same amount
        events = result.events
        reported = events[(events["kind"] == "band_breach") & (events["asset_class"] == name)]
        if w.loc[name, "outside"] > tolerance:
            assert len(reported) == 1, (name, w, events)
            assert reported["value"].iloc[0] == pytest.approx(w.loc[name, "outside"]), events


def check_lot_sizes(portfolio: orb.Portfolio, result: orb.Result) -> None:
    """Every order is a multiple of its lot size, unless it sells the whole position."""
    holdings = portfolio.holdings["shares"]
    for row in result.orders.itertuples():
        unit = float(portfolio.securities.loc[row.security, "lot_size"])
        position = float(holdings.get((row.account, row.security), 0.0))
        if unit > 0 and not (row.shares < 0 and abs(-row.shares - position) <= 1e-9 * position):
            assert abs(row.shares / unit - round(row.shares / unit)) <= 1e-9, row


# the same fixed seed for both tests: they see the same 30 portfolios, on every run
SEED = 7  # its 30 portfolios once held DecodeErrors of rounding and cash repair
SETTINGS = settings(max_examples=30, deadline=None, database=None, print_blob=True,
                    phases=PHASES, suppress_health_check=[
                        HealthCheck.too_slow, HealthCheck.data_too_large,
                        HealthCheck.function_scoped_fixture])


@seed(SEED)
@SETTINGS
@given(cases())
def test_trades_conserve_cash_and_holdings(case: tuple[orb.Portfolio, orb.Policy]) -> None:
    portfolio, policy = case
    try:
        result = orb.solve(portfolio, policy)
    except orb.InfeasibleError as exc:
        # only hard constraints can conflict, and the error says which
        event("infeasible")
        assert exc.conflicts, exc
        assert str(exc)
        return
    event(f"traded {policy.mode}" if result.traded else "no trade")
    check_result(portfolio, policy, result)


@seed(SEED)
@SETTINGS
@given(cases())
def test_solve_answers_or_names_the_conflict(case: tuple[orb.Portfolio, orb.Policy]) -> None:
    # the whole contract: a verified result whose orders respect the lot sizes, or an
    # InfeasibleError; never a DecodeError or SolverError on a small, well-posed portfolio
    portfolio, policy = case
    try:
        result = orb.solve(portfolio, policy)
    except orb.InfeasibleError:
        return
    check_lot_sizes(portfolio, result)
    check_result(portfolio, policy, result)
