"""Wash sales in the rebalance: exclusions before the solve, conflicts in it, flags after it.

Known answers: the wash-sale cases of REFERENCE_CASES ("Tax law") run through ``solve``; the
invariant: decoded trades never hold a wash sale the result does not flag (checked against the
ledger run over the whole trade history).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optirebal as orb
from optirebal.program.prepare import build_problem_data
from optirebal.tax.ledger import wash_sale_ledger

NO_IMPACT = orb.Costs(impact="none")


def world(lots: list[dict], as_of: str, prices: dict[str, float] | None = None,
          history: list[dict] | None = None, scheduled: list[dict] | None = None,
          cash: tuple[float, float] = (0.0, 0.0)) -> orb.Portfolio:
    """XYZ and XYZ2 (group g1), ALT (group g2), all class equity; accounts joint and ira."""
    prices = prices or {}
    sec = pd.DataFrame({"security": ["XYZ", "XYZ2", "ALT"],
                        "price": [prices.get(s, 50.0) for s in ("XYZ", "XYZ2", "ALT")],
                        "asset_class": "equity", "group": ["g1", "g1", "g2"],
                        "half_spread_bps": 1.0})
    acc = pd.DataFrame({"account": ["joint", "ira"], "type": ["taxable", "tax_deferred"],
                        "cash": list(cash)})
    frame = pd.DataFrame([{"account": "joint", "security": "XYZ", **lot} for lot in lots])
    cov = pd.DataFrame([[0.04]], index=["equity"], columns=["equity"])
    return orb.Portfolio.from_frames(
        sec, acc, frame, as_of=as_of, risk=cov,
        history=None if history is None else pd.DataFrame(history),
        scheduled=None if scheduled is None else pd.DataFrame(scheduled))


def policy(equity: float, rule: str = "no_benefit", **kwargs: object) -> orb.Policy:
    tax = orb.Tax(model="exact", wash_sale_lots=rule, **kwargs.pop("tax", {}))  # type: ignore[arg-type]
    kwargs.setdefault("mode", "to_target")
    return orb.Policy({"equity": equity, "cash": 1.0 - equity}, costs=NO_IMPACT, tax=tax,
                      **kwargs)  # type: ignore[arg-type]


# --- REFERENCE_CASES through solve ------------------------------------------------------------


def test_pub_550_example_1_replacement_after_the_sale() -> None:
    # bought 100 for 1,000 on 2014-05-01, sold for 750 on 2014-07-01, 100 rebought 2014-07-05
    portfolio = world([{"lot": "L1", "quantity": 100, "cost_basis": 1000.0,
                        "acquired": "2014-05-01"}], "2014-07-01", {"XYZ": 7.5},
                      scheduled=[{"date": "2014-07-05", "account": "joint", "security": "XYZ",
                                  "shares": 100}])
    result = orb.solve(portfolio, policy(0.0))
    row = result.lots_sold.loc["L1"]
    assert row["gain"] == pytest.approx(-250.0)
    assert bool(row["wash_sale"]) and not bool(row["wash_permanent"])
    assert row["disallowed_loss"] == pytest.approx(250.0)
    assert row["recognized_gain"] == pytest.approx(0.0, abs=1e-6)
    assert result.tax.loc["disallowed_loss", "value"] == pytest.approx(250.0)
    assert result.costs.loc["tax", "value"] == pytest.approx(0.0, abs=1e-6)
    assert any("wash sale flagged: lot 'L1'" in n for n in result.diagnostics.notes)


REG_EXAMPLE_1 = [{"lot": "F", "quantity": 100, "cost_basis": 10_000.0, "acquired": "1954-12-01"},
                 {"lot": "S", "quantity": 100, "cost_basis": 9_000.0, "acquired": "1954-12-15"}]


def test_reg_example_1_replacement_before_the_sale() -> None:
    portfolio = world(REG_EXAMPLE_1, "1955-01-03", {"XYZ": 90.0})
    result = orb.solve(portfolio, policy(0.5, restrictions=orb.Restrictions(locked_lots=["S"])))
    assert list(result.lots_sold.index) == ["F"]
    assert result.lots_sold.loc["F", "disallowed_loss"] == pytest.approx(1000.0)
    assert bool(result.lots_sold.loc["F", "wash_sale"])


def test_reg_example_1_no_sell_policy_keeps_the_loss_lot() -> None:
    portfolio = world(REG_EXAMPLE_1, "1955-01-03", {"XYZ": 90.0})
    result = orb.solve(portfolio, policy(0.5, rule="no_sell"))
    assert list(result.lots_sold.index) == ["S"]
    assert not result.lots_sold["wash_sale"].any()
    data = build_problem_data(portfolio, policy(0.5, rule="no_sell"))
    assert data.sell_cap[0] == 0.0
    assert "replacement shares" in data.cap_reasons[("sell", 0)]
    # S is sold in full, so F is no longer washed once it is gone (replacement shares count
    # while held): F stays unsold in this call, an event says so, and the next call may sell it
    stale = result.events[result.events["kind"] == "wash_exclusion_stale"]
    assert len(stale) == 1 and "'F'" in stale["message"].iloc[0]
    again = orb.solve(orb.apply_trades(portfolio, result), policy(0.0, rule="no_sell"))
    assert "F" in again.lots_sold.index


def test_reg_example_2_partial_wash_sale() -> None:
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 5000.0, "acquired": "1954-09-21"},
            {"lot": "B", "quantity": 50, "cost_basis": 2750.0, "acquired": "1954-12-21"},
            {"lot": "C", "quantity": 25, "cost_basis": 1125.0, "acquired": "1954-12-27"}]
    portfolio = world(lots, "1955-01-03", {"XYZ": 40.0})
    result = orb.solve(portfolio, policy(3 / 7, restrictions=orb.Restrictions(
        locked_lots=["B", "C"])))
    row = result.lots_sold.loc["A"]
    assert row["shares"] == pytest.approx(100.0)
    assert row["disallowed_loss"] == pytest.approx(750.0)
    assert row["recognized_gain"] == pytest.approx(-250.0)


def test_reg_example_3_more_bought_than_sold() -> None:
    scheduled = [{"date": f"1956-02-{d}", "account": "joint", "security": "XYZ", "shares": 50}
                 for d in (15, 16, 17, 18)]
    portfolio = world([{"lot": "L", "quantity": 100, "cost_basis": 5000.0,
                        "acquired": "1954-09-15"}], "1956-02-01", {"XYZ": 40.0},
                      scheduled=scheduled)
    result = orb.solve(portfolio, policy(0.0))
    assert result.lots_sold.loc["L", "disallowed_loss"] == pytest.approx(1000.0)
    assert result.tax.loc["realized_long", "value"] == pytest.approx(0.0, abs=1e-6)


def test_rev_rul_70_231_gains_not_reduced() -> None:
    lots = [{"lot": f"B{n}", "quantity": 100, "cost_basis": 100.0 * p, "acquired": "2020-01-02"}
            for n, p in enumerate((158, 100, 95))]
    scheduled = [{"date": "2026-12-01", "account": "joint", "security": "XYZ", "shares": 250}]
    portfolio = world(lots, "2026-11-20", {"XYZ": 125.0}, scheduled=scheduled)
    result = orb.solve(portfolio, policy(0.0))
    sold = result.lots_sold
    assert sold.loc["B0", "disallowed_loss"] == pytest.approx(3300.0)
    assert sold.loc["B1", "recognized_gain"] == pytest.approx(2500.0)
    assert sold.loc["B2", "recognized_gain"] == pytest.approx(3000.0)
    assert not sold.loc[["B1", "B2"], "wash_sale"].any()
    assert result.tax.loc["realized_long", "value"] == pytest.approx(5500.0)


# --- rule 2: a recent loss sale blocks the group household-wide --------------------------------

LOSS_SALE = {"date": "2026-11-10", "account": "joint", "security": "XYZ", "shares": -100,
             "price": 50.0, "cost_basis": 6000.0}
ALT_LOT = [{"lot": "K", "quantity": 100, "cost_basis": 4000.0, "acquired": "2020-01-02",
            "security": "ALT"}]


def parts() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Securities, accounts and covariance of :func:`world`."""
    base = world([{"lot": "L", "quantity": 1, "cost_basis": 1.0, "acquired": "2020-01-02"}],
                 "2026-11-20")
    return (base.securities.reset_index(), base.accounts.reset_index(),
            base.risk)


def _blocked_world(history: list[dict], cash: tuple[float, float] = (20_000.0, 20_000.0)):
    sec, acc, risk = parts()
    frame = pd.DataFrame([{"account": "joint", **lot} for lot in ALT_LOT])
    return orb.Portfolio.from_frames(sec, acc.assign(cash=list(cash)), frame,
                                     as_of="2026-11-20", risk=risk,
                                     history=pd.DataFrame(history))


def test_blocked_group_is_bought_through_its_substitute() -> None:
    portfolio = _blocked_world([LOSS_SALE])
    pol = policy(0.9, tax={"substitutes": {"equity": ["ALT"]}})
    result = orb.solve(portfolio, pol)
    buys = result.orders[result.orders["side"] == "buy"]
    assert set(buys["security"]) == {"ALT"}  # neither XYZ nor XYZ2, in any account
    assert set(buys["account"]) == {"joint", "ira"}
    assert buys["reason"].str.startswith("substitute").all()
    assert any("no buys until 2026-12-11" in n for n in result.diagnostics.notes)
    data = build_problem_data(portfolio, pol)
    assert "g1" in data.tax.exclusions.blocked
    blocked = [data.cap_reasons[("buy", p)] for p in range(data.n_pairs)
               if data.securities[data.pair_security[p]] in ("XYZ", "XYZ2")]
    assert len(blocked) == 4 and all("sold at a loss on 2026-11-10" in r for r in blocked)


def test_loss_already_washed_in_the_history_does_not_block() -> None:
    rebuy = {"date": "2026-11-12", "account": "joint", "security": "XYZ2", "shares": 100,
             "price": 50.0}
    lots = pd.DataFrame([{"lot": "R", "account": "joint", "security": "XYZ2", "quantity": 100,
                          "cost_basis": 6000.0, "acquired": "2026-11-12"}])
    sec, acc, risk = parts()
    portfolio = orb.Portfolio.from_frames(
        sec, acc, lots, as_of="2026-11-20", risk=risk, history=pd.DataFrame([LOSS_SALE, rebuy]))
    data = build_problem_data(portfolio, policy(0.9))
    assert data.tax.exclusions.blocked == {}


def test_ira_replacement_in_the_history_is_a_permanent_loss() -> None:
    ira_buy = {"date": "2026-11-12", "account": "ira", "security": "XYZ", "shares": 100,
               "price": 50.0}
    lots = pd.DataFrame([{"lot": "I", "account": "ira", "security": "XYZ", "quantity": 100,
                          "cost_basis": 5000.0, "acquired": "2026-11-12"}])
    sec, acc, risk = parts()
    portfolio = orb.Portfolio.from_frames(
        sec, acc, lots, as_of="2026-11-20", risk=risk, history=pd.DataFrame([LOSS_SALE, ira_buy]))
    result = orb.solve(portfolio, policy(0.5, mode="full"))
    assert any("lost for good" in n and "1,000.00" in n for n in result.diagnostics.notes)


# --- rule 3: a buy and a loss sale of one group in the same solve -----------------------------


def test_same_solve_conflict_is_resolved_and_reported() -> None:
    # the taxable account holds a big XYZ loss; the IRA must deploy cash into equity, and the
    # only equity there is group g1: harvesting XYZ while the IRA buys XYZ2 is a wash sale
    sec = pd.DataFrame({"security": ["XYZ", "XYZ2"], "price": [50.0, 50.0],
                        "asset_class": "equity", "group": ["g1", "g1"], "half_spread_bps": 1.0})
    acc = pd.DataFrame({"account": ["joint", "ira"], "type": ["taxable", "tax_deferred"],
                        "cash": [0.0, 40_000.0]})
    lots = pd.DataFrame([{"lot": "J", "account": "joint", "security": "XYZ", "quantity": 1000,
                          "cost_basis": 80_000.0, "acquired": "2020-01-02"}])
    cov = pd.DataFrame([[0.04]], index=["equity"], columns=["equity"])
    portfolio = orb.Portfolio.from_frames(sec, acc, lots, as_of="2026-11-20", risk=cov)
    pol = orb.Policy({"equity": 0.9, "cash": 0.1}, band=orb.Band.absolute(0.5),
                     risk_aversion=50.0, costs=NO_IMPACT,
                     tax=orb.Tax(model="exact", loss_carry_value=0.2))
    result = orb.solve(portfolio, pol)
    assert any("group 'g1'" in f for f in result.diagnostics.fixes), result.diagnostics.fixes
    bought = result.orders[result.orders["side"] == "buy"]
    sold_at_loss = result.lots_sold[result.lots_sold["gain"] < 0]
    assert bought.empty or sold_at_loss.empty
    assert not result.lots_sold["wash_sale"].any() if len(result.lots_sold) else True


# --- the invariant, against the ledger over the whole history -----------------------------------

SECURITIES = ("A1", "A2", "B1", "C1")
GROUPS = {"A1": "ga", "A2": "ga", "B1": "gb", "C1": "gc"}
CLASSES = {"A1": "equity", "A2": "equity", "B1": "equity", "C1": "bonds"}
ACCOUNTS = {"joint": "taxable", "ira": "tax_deferred", "roth": "tax_exempt"}
AS_OF = dt.date(2026, 11, 20)


def _random_household(seed: int):
    """A household built from a random trade history, lots as the ledger leaves them."""
    rng = np.random.default_rng(seed)
    price = {s: float(rng.uniform(20, 80)) for s in SECURITIES}
    rows: list[dict] = []
    held: dict[str, tuple[str, str, float]] = {}
    for n in range(int(rng.integers(4, 14))):
        day = AS_OF - dt.timedelta(days=int(rng.integers(0, 90)))
        rows.append({"date": day, "kind": "buy", "n": n})
    rows.sort(key=lambda r: r["date"])
    trades = []
    for k, row in enumerate(rows):
        if held and rng.uniform() < 0.35:
            lot = sorted(held)[int(rng.integers(len(held)))]
            account, security, shares = held.pop(lot)
            trades.append({"date": row["date"], "account": account, "security": security,
                           "shares": -shares, "price": price[security] * rng.uniform(0.7, 1.3),
                           "lot_id": lot})
            continue
        security = SECURITIES[int(rng.integers(4))]
        account = list(ACCOUNTS)[int(rng.integers(3))]
        shares = float(rng.integers(10, 200))
        lot = f"P{k}"
        held[lot] = (account, security, shares)
        trades.append({"date": row["date"], "account": account, "security": security,
                       "shares": shares, "price": price[security] * rng.uniform(0.6, 1.4),
                       "lot_id": lot})
    if not held:  # keep at least one position
        trades.append({"date": AS_OF, "account": "joint", "security": "C1", "shares": 100.0,
                       "price": price["C1"], "lot_id": "P_last"})
    history = pd.DataFrame(trades)
    history["group"] = history["security"].map(GROUPS)
    history["account_type"] = history["account"].map(ACCOUNTS)
    ledger = wash_sale_ledger(history)
    pieces = ledger.lots
    lots = pieces.groupby("lot").agg(account=("account", "first"),
                                     security=("security", "first"),
                                     quantity=("shares", "sum"), cost_basis=("basis", "sum"),
                                     acquired=("acquired", "min")).reset_index()
    realized = ledger.realized.groupby(["date", "lot"])["basis"].sum()
    sells = history["shares"] < 0
    history.loc[sells, "cost_basis"] = [
        realized[(pd.Timestamp(d), lot)] for d, lot in
        zip(history.loc[sells, "date"], history.loc[sells, "lot_id"], strict=True)]
    scheduled = pd.DataFrame([
        {"date": AS_OF + dt.timedelta(days=int(rng.integers(0, 40))),
         "account": list(ACCOUNTS)[int(rng.integers(3))],
         "security": SECURITIES[int(rng.integers(4))], "shares": float(rng.integers(1, 50))}
        for _ in range(int(rng.integers(0, 3)))], columns=["date", "account", "security",
                                                           "shares"])
    sec = pd.DataFrame({"security": list(SECURITIES), "price": [price[s] for s in SECURITIES],
                        "asset_class": [CLASSES[s] for s in SECURITIES],
                        "group": [GROUPS[s] for s in SECURITIES], "half_spread_bps": 2.0})
    acc = pd.DataFrame({"account": list(ACCOUNTS), "type": list(ACCOUNTS.values()),
                        "cash": rng.uniform(0, 5000, 3)})
    cov = pd.DataFrame([[0.04, 0.002], [0.002, 0.004]], index=["equity", "bonds"],
                       columns=["equity", "bonds"])
    portfolio = orb.Portfolio.from_frames(
        sec, acc, lots, as_of=AS_OF, risk=cov,
        history=history.drop(columns=["group", "account_type"]),
        scheduled=scheduled if len(scheduled) else None)
    return portfolio, history, scheduled, rng


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_decoded_trades_never_hold_an_unflagged_wash_sale(seed: int) -> None:
    portfolio, history, scheduled, rng = _random_household(seed)
    equity = float(rng.uniform(0.3, 0.8))
    pol = orb.Policy({"equity": equity, "bonds": 1.0 - equity}, band=orb.Band.absolute(0.02),
                     risk_aversion=float(rng.uniform(1, 30)), soft_bands=True,
                     tax=orb.Tax(model=["linear", "exact"][int(rng.integers(2))],
                                 wash_sale_lots=["no_benefit", "no_sell"][int(rng.integers(2))],
                                 loss_carry_value=float(rng.uniform(0, 0.3))))
    result = orb.solve(portfolio, pol)
    today = pd.Timestamp(AS_OF)
    sold = result.lots_sold
    lots = portfolio.lots
    extra = [{"date": today, "account": sold.loc[lot, "account"],
              "security": sold.loc[lot, "security"], "shares": -sold.loc[lot, "shares"],
              "price": float(portfolio.securities.loc[sold.loc[lot, "security"], "price"]),
              "lot_id": lot} for lot in lots.index if lot in sold.index]
    buys = result.orders[result.orders["side"] == "buy"]
    extra += [{"date": today, "account": r.account, "security": r.security, "shares": r.shares,
               "price": r.price, "lot_id": f"T{k}"} for k, r in enumerate(buys.itertuples())]
    extra += [{"date": pd.Timestamp(r.date), "account": r.account, "security": r.security,
               "shares": r.shares, "price": 1.0, "lot_id": f"S{k}"}
              for k, r in enumerate(scheduled.sort_values("date").itertuples())]
    full = pd.concat([history.drop(columns=["cost_basis"]), pd.DataFrame(extra)],
                     ignore_index=True)
    full["date"] = pd.to_datetime(full["date"])
    full = full.sort_values("date", kind="stable")
    full["group"] = full["security"].map(GROUPS)
    full["account_type"] = full["account"].map(ACCOUNTS)
    ledger = wash_sale_ledger(full)
    # today's loss sales by the rebalance (a history may also hold a sale dated today)
    washed_today = ledger.realized[(ledger.realized["date"] == today)
                                   & (ledger.realized["disallowed_loss"] > 1e-6)
                                   & ledger.realized["lot"].isin(sold.index)]
    for lot in set(washed_today["lot"]):
        assert bool(sold.loc[lot, "wash_sale"]), (lot, sold)
        assert sold.loc[lot, "disallowed_loss"] > 0
    # rule 2: no buy today replaces a loss sold before today
    adj = ledger.adjustments
    ours = adj["replacement_lot"].str.startswith("T")  # the buys of this rebalance
    assert not ((adj["sale_date"] < today) & ours).any(), adj
    # rule 3 and "no_sell": a loss lot whose group has replacement shares is flagged or unsold
    if pol.tax.wash_sale_lots == "no_sell":
        assert not sold["wash_sale"].any()


# --- bad input ---------------------------------------------------------------------------------


def _base():
    return world([{"lot": "L", "quantity": 100, "cost_basis": 4000.0,
                   "acquired": "2020-01-02"}], "2026-11-20")


def _with(history=None, scheduled=None):
    base = _base()
    return orb.Portfolio.from_frames(
        base.securities.reset_index(), base.accounts.reset_index(), base.lots.reset_index(),
        as_of="2026-11-20", risk=base.risk,
        history=None if history is None else pd.DataFrame(history),
        scheduled=None if scheduled is None else pd.DataFrame(scheduled))


BUY = {"date": "2026-11-01", "account": "joint", "security": "XYZ", "shares": 10, "price": 50.0}


@pytest.mark.parametrize(("rows", "field", "message"), [
    ([{**BUY, "security": "QQQ"}], "history.security", "unknown security 'QQQ'"),
    ([{**BUY, "account": "401k"}], "history.account", "unknown account '401k'"),
    ([{**BUY, "date": "2026-11-05"}, BUY], "history.date", "dates out of order"),
    ([{**BUY, "date": "2026-11-21"}], "history.date", "after as_of"),
    ([{**BUY, "date": "not a date"}], "history.date", "not a date"),
    ([{**BUY, "shares": 0}], "history.shares", "non-zero"),
    ([{**BUY, "security": "ALT", "shares": -50, "cost_basis": 100.0},
      {**BUY, "security": "ALT", "date": "2026-11-02", "shares": 50}], "history.shares",
     "sells 50 shares of 'ALT'"),
    ([{**BUY, "shares": -10}], "history.cost_basis", "cost basis"),
    ([{**BUY, "shares": 500}], "history.shares", "than are held now"),
])
def test_bad_history(rows: list[dict], field: str, message: str) -> None:
    with pytest.raises(orb.InputError, match=message) as info:
        _with(history=rows)
    assert info.value.field == field


def test_history_sells_more_than_was_held_names_the_row() -> None:
    # no ALT held now; the history sold 20, bought 50 and sold 30: the first sale had nothing
    rows = [{**BUY, "security": "ALT", "date": "2026-11-01", "shares": -20, "cost_basis": 900.0},
            {**BUY, "security": "ALT", "date": "2026-11-02", "shares": 50},
            {**BUY, "security": "ALT", "date": "2026-11-03", "shares": -30, "cost_basis": 9.0}]
    with pytest.raises(orb.InputError, match=r"sells 20 shares of 'ALT'.*only 0") as info:
        _with(history=rows)
    assert info.value.row == 0


@pytest.mark.parametrize(("row", "field", "message"), [
    ({"date": "2026-11-19", "account": "joint", "security": "XYZ", "shares": 5},
     "scheduled.date", "before as_of"),
    ({"date": "2026-12-01", "account": "joint", "security": "NOPE", "shares": 5},
     "scheduled.security", "unknown security"),
    ({"date": "2026-12-01", "account": "joint", "security": "XYZ", "shares": -5},
     "scheduled.shares", "> 0"),
    ({"date": "2026-12-01", "account": "joint", "security": "XYZ"},
     "scheduled.shares", "shares or value"),
])
def test_bad_scheduled(row: dict, field: str, message: str) -> None:
    with pytest.raises(orb.InputError, match=message) as info:
        _with(scheduled=[row])
    assert info.value.field == field


def test_scheduled_value_converts_at_todays_price() -> None:
    portfolio = _with(scheduled=[{"date": "2026-12-01", "account": "ira", "security": "XYZ",
                                  "value": 500.0}])
    assert portfolio.scheduled["shares"].tolist() == [10.0]
