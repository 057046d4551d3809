"""Lot relief (``Tax.lot_relief``): fixed orders HIFO, FIFO, LIFO in the program and the decode.

The known answers are worked by hand on one taxable position of four lots of STK at 100:

====  ======  ==============  ========  ===================  ====================
lot   shares  basis / share   acquired  term, gain per share  tax per unit value
====  ======  ==============  ========  ===================  ====================
A     100     60              2020      long, +40             0.20 x 0.4 = 0.080
B     100     90              2023      long, +10             0.20 x 0.1 = 0.020
C     100     120             200 d     short, -20            0.37 x -0.2 = -0.074
D     100     80              100 d     short, +20            0.37 x 0.2 = 0.074
====  ======  ==============  ========  ===================  ====================

Selling 250 of the 400 shares (target equity 37.5%, NAV 40,000):

- HIFO (C 120, B 90, D 80, A 60): C 100, B 100, D 50; S = -2,000 + 1,000 = -1,000, L = 1,000;
  linear tax -740 + 200 + 370 = -170; exact netting S + L = 0: 0.
- FIFO (A, B, C, D): A 100, B 100, C 50; S = -1,000, L = 5,000; linear 1,000 - 370 = 630;
  exact (R2) 0.20 x 4,000 = 800.
- LIFO (D, C, B, A): D 100, C 100, B 50; S = 0, L = 500; linear and exact 100.

The FIFO tax along the order (after 0, 100, 200, 300, 400 shares: 0, 800, 1,000, 260, 1,000
under the linear model) is not convex: its lower envelope at 250 shares is the chord from 0 to
300, 5/6 of 260 = 216.67, which is what the program sees (A, B, C each 5/6 sold); the order
realizes 630, a gap of 413.33. Under exact netting the chord point is S = -1,666.67,
L = 4,166.67, tax 0.20 x 2,500 = 500, a gap of 300. HIFO's tax is convex here and LIFO's
envelope touches its tax at 200 and 300 shares, so both are priced exactly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, multi_asset

import optirebal as orb
from optirebal.decode.relief import in_order, order_breach
from optirebal.decode.rounding import sellable_shares
from optirebal.program.prepare import build_problem_data
from optirebal.program.terms import build_program
from optirebal.program.terms.base import Point
from optirebal.program.terms.relief import LotRelief, relief_chain
from optirebal.tax.relief import fill_in_order, relief_order

NO_IMPACT = orb.Costs(impact="none")
LOTS = [
    {"lot": "A", "quantity": 100, "cost_basis": 6000.0, "acquired": "2020-01-02"},
    {"lot": "B", "quantity": 100, "cost_basis": 9000.0, "acquired": "2023-06-01"},
    {"lot": "C", "quantity": 100, "cost_basis": 12000.0,
     "acquired": AS_OF - dt.timedelta(days=200)},
    {"lot": "D", "quantity": 100, "cost_basis": 8000.0,
     "acquired": AS_OF - dt.timedelta(days=100)},
]


def four_lots(scheduled: list[dict] | None = None) -> orb.Portfolio:
    """The table of the module docstring: STK at 100 in taxable account ``acct``, no cash."""
    sec = pd.DataFrame([{"security": "STK", "price": 100.0, "asset_class": "equity"}])
    acc = pd.DataFrame([{"account": "acct", "type": "taxable", "cash": 0.0}])
    frame = pd.DataFrame([{"account": "acct", "security": "STK", **lot} for lot in LOTS])
    cov = pd.DataFrame([[0.04]], index=["equity"], columns=["equity"])
    return orb.Portfolio.from_frames(sec, acc, frame, as_of=AS_OF, risk=cov,
                                     scheduled=None if scheduled is None
                                     else pd.DataFrame(scheduled))


def sell_to(equity: float, model: str, relief: str, **kwargs: object) -> orb.Policy:
    tax = orb.Tax(model=model, lot_relief=relief, **kwargs.pop("tax", {}))  # type: ignore[arg-type]
    return orb.Policy({"equity": equity, "cash": 1.0 - equity}, mode="to_target",
                      costs=NO_IMPACT, tax=tax, **kwargs)  # type: ignore[arg-type]


def item(result: orb.Result, name: str) -> float:
    assert result.tax is not None
    return float(result.tax.loc[name, "value"])


def gap_events(result: orb.Result) -> pd.DataFrame:
    return result.events[result.events["kind"] == "lot_relief"]


# --- known answers ------------------------------------------------------------------------------

KNOWN = {  # lots sold, realized short, realized long, linear tax, exact tax, gap linear, exact
    "hifo": ({"C": 100.0, "B": 100.0, "D": 50.0}, -1000.0, 1000.0, -170.0, 0.0, None, None),
    "fifo": ({"A": 100.0, "B": 100.0, "C": 50.0}, -1000.0, 5000.0, 630.0, 800.0,
             413.0 + 1 / 3, 300.0),
    "lifo": ({"D": 100.0, "C": 100.0, "B": 50.0}, 0.0, 500.0, 100.0, 100.0, None, None),
}


@pytest.mark.parametrize("model", ["linear", "exact"])
@pytest.mark.parametrize("relief", ["hifo", "fifo", "lifo"])
def test_known_answers(relief: str, model: str) -> None:
    sold, short, long, linear, exact, gap_linear, gap_exact = KNOWN[relief]
    result = orb.solve(four_lots(), sell_to(0.375, model, relief))
    assert result.lots_sold["shares"].to_dict() == pytest.approx(sold, abs=1e-6)
    assert item(result, "realized_short") == pytest.approx(short, abs=1e-6)
    assert item(result, "realized_long") == pytest.approx(long, abs=1e-6)
    assert item(result, "tax_linear") == pytest.approx(linear, abs=1e-6)
    assert item(result, "tax_exact") == pytest.approx(exact, abs=1e-6)
    # the cost row is the order's tax, exactly, whatever the program estimated
    assert result.costs.loc["tax", "value"] == pytest.approx(
        linear if model == "linear" else exact, abs=1e-6)
    gap = gap_linear if model == "linear" else gap_exact
    events = gap_events(result)
    if gap is None:
        assert events.empty
    else:
        assert events["value"].tolist() == pytest.approx([gap], abs=1e-5)
        assert events["limit"].tolist() == pytest.approx(
            [(linear if model == "linear" else exact) - gap], abs=1e-5)


@pytest.mark.parametrize("model", ["linear", "exact"])
@pytest.mark.parametrize("equity", [0.875, 0.625, 0.375, 0.125])
def test_optimal_realizes_no_more_tax_than_any_fixed_order(model: str, equity: float) -> None:
    portfolio = four_lots()
    measure = "tax_linear" if model == "linear" else "tax_exact"
    optimal = item(orb.solve(portfolio, sell_to(equity, model, "optimal")), measure)
    fixed = {relief: item(orb.solve(portfolio, sell_to(equity, model, relief)), measure)
             for relief in ("hifo", "fifo", "lifo")}
    assert optimal <= min(fixed.values()) + 1e-6
    # and the orders differ on this case: the comparison is not between equal answers
    assert max(fixed.values()) > optimal + 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_fixed_order_restricts_the_program(seed: int) -> None:
    # every fixed-order sale is a specific identification: the optimal program's objective is
    # never worse, and each order's answer is verified (decode checks the order)
    portfolio = multi_asset(seed, lots_per_position=4)
    policy = orb.Policy({"equity": 0.5, "bonds": 0.3, "real_estate": 0.2},
                        band=orb.Band.absolute(0.01), tax=orb.Tax(model="exact"))
    optimal = orb.solve(portfolio, policy)
    for relief in ("hifo", "fifo", "lifo"):
        fixed = orb.solve(portfolio, orb.Policy(
            policy.targets, band=policy.band, tax=orb.Tax(model="exact", lot_relief=relief)))
        assert optimal.objective <= fixed.objective + 1e-9


# --- the order in the decode --------------------------------------------------------------------


def round_lots_household(seed: int) -> orb.Portfolio:
    """Two securities (round lots of 100; whole shares), a taxable account paying a withdrawal
    and an IRA, five lots per position with random bases and dates (some on the same date).

    The taxable lots are all at a gain: a taxable loss lot may be closed by the wash-sale rules
    before the solve, and the order then skips it (tested on its own below)."""
    rng = np.random.default_rng(seed)
    sec = pd.DataFrame({"security": ["X", "Y"], "price": [37.0, 113.0],
                        "asset_class": ["equity", "bonds"], "half_spread_bps": [2.0, 1.0],
                        "lot_size": [100.0, 1.0]})
    acc = pd.DataFrame({"account": ["tax", "ira"], "type": ["taxable", "tax_deferred"],
                        "cash": [1000.0, 500.0], "flow": [-15000.0, 0.0]})
    rows = []
    for a in ("tax", "ira"):
        for s, p in (("X", 37.0), ("Y", 113.0)):
            for n in range(5):
                qty = float(rng.integers(50, 400))
                low, high = (0.5, 0.95) if a == "tax" else (0.6, 1.4)
                rows.append({"lot": f"{a}-{s}-{n}", "account": a, "security": s,
                             "quantity": qty, "cost_basis": qty * p * rng.uniform(low, high),
                             "acquired": AS_OF - dt.timedelta(days=int(rng.choice([40, 400, 900,
                                                                                   2000])))})
    cov = pd.DataFrame([[0.03, 0.002], [0.002, 0.004]], index=["equity", "bonds"],
                       columns=["equity", "bonds"])
    return orb.Portfolio.from_frames(sec, acc, pd.DataFrame(rows), as_of=AS_OF, risk=cov)


def oracle_order(lots: pd.DataFrame, relief: str) -> list[str]:
    """The relief order of one position's lots, by pandas sorting (independent of the code)."""
    frame = lots.assign(per_share=lots["cost_basis"] / lots["quantity"],
                        when=pd.to_datetime(lots["acquired"]), lot_id=lots.index)
    if relief == "hifo":
        frame = frame.sort_values(["per_share", "when", "lot_id"], ascending=[False, True, True])
    elif relief == "fifo":
        frame = frame.sort_values(["when", "lot_id"])
    else:
        frame = frame.sort_values(["when", "lot_id"], ascending=[False, True])
    return list(frame.index)


@pytest.mark.parametrize("relief", ["hifo", "fifo", "lifo"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_decode_follows_the_order_after_rounding(relief: str, seed: int) -> None:
    portfolio = round_lots_household(seed)
    policy = orb.Policy({"equity": 0.3, "bonds": 0.7}, band=orb.Band.absolute(0.02),
                        tax=orb.Tax(model="linear", lot_relief=relief))
    result = orb.solve(portfolio, policy)
    assert not result.lots_sold.empty
    lots = portfolio.lots
    sold = result.lots_sold["shares"].reindex(lots.index, fill_value=0.0)
    partial = 0
    for (_, security), position in lots.groupby(["account", "security"]):
        order = oracle_order(position, relief)
        shares = sold[order].to_numpy()
        total = shares.sum()
        if total == 0:
            continue
        # the lots sold in full, then at most one in part, then none
        full = np.isclose(shares, position.loc[order, "quantity"].to_numpy(), rtol=1e-12)
        k = int(np.argmin(full)) if not full.all() else len(order)
        assert (shares[k + 1:] == 0).all(), (security, order, shares)
        partial += bool(k < len(order) and shares[k] > 0)
        if security == "X" and total < position["quantity"].sum():
            assert total % 100 == pytest.approx(0.0, abs=1e-9)  # round lots
        if security == "Y":
            assert total == pytest.approx(round(total), abs=1e-9)  # whole shares
    assert partial >= 1  # some position was cut inside a lot: the order decided which


def test_verification_refuses_sales_out_of_order() -> None:
    data = build_problem_data(four_lots(), sell_to(0.375, "linear", "fifo"))
    caps = sellable_shares(data)
    assert order_breach(data, np.array([100.0, 100.0, 50.0, 0.0]), caps) is None
    breach = order_breach(data, np.array([100.0, 50.0, 50.0, 0.0]), caps)
    assert breach is not None and "'C' is sold before lot 'B'" in breach
    optimal = build_problem_data(four_lots(), sell_to(0.375, "linear", "optimal"))
    assert order_breach(optimal, np.array([0.0, 0.0, 100.0, 0.0]), caps) is None


# --- lots held at zero are skipped --------------------------------------------------------------


def test_a_locked_lot_in_the_middle_of_the_order_is_skipped() -> None:
    # FIFO with B locked: A 100 (+4,000 long), C 100 (-2,000 short), D 50 (+1,000 short)
    policy = sell_to(0.375, "linear", "fifo", restrictions=orb.Restrictions(locked_lots=["B"]))
    result = orb.solve(four_lots(), policy)
    assert result.lots_sold["shares"].to_dict() == pytest.approx(
        {"A": 100.0, "C": 100.0, "D": 50.0}, abs=1e-6)
    assert item(result, "realized_short") == pytest.approx(-1000.0, abs=1e-6)
    assert item(result, "realized_long") == pytest.approx(4000.0, abs=1e-6)
    assert item(result, "tax_linear") == pytest.approx(800.0 - 370.0, abs=1e-6)


def test_a_no_sell_wash_sale_lot_is_skipped() -> None:
    # a buy of STK scheduled in 10 days makes C (a loss lot) a wash-sale lot; with "no_sell" the
    # FIFO order passes over it: A 100, B 100, D 50, all gains (L 5,000, S 1,000)
    scheduled = [{"date": AS_OF + dt.timedelta(days=10), "account": "acct", "security": "STK",
                  "shares": 10}]
    policy = sell_to(0.375, "exact", "fifo", tax={"wash_sale_lots": "no_sell"})
    result = orb.solve(four_lots(scheduled), policy)
    assert result.lots_sold["shares"].to_dict() == pytest.approx(
        {"A": 100.0, "B": 100.0, "D": 50.0}, abs=1e-6)
    assert not result.lots_sold["wash_sale"].any()
    assert item(result, "realized_short") == pytest.approx(1000.0, abs=1e-6)
    assert item(result, "realized_long") == pytest.approx(5000.0, abs=1e-6)
    assert item(result, "tax_exact") == pytest.approx(0.37 * 1000 + 0.2 * 5000, abs=1e-6)


def test_a_no_benefit_wash_sale_lot_in_the_order_is_sold_and_flagged() -> None:
    # the default "no_benefit": C stays in the FIFO order, its sold half is a wash sale
    scheduled = [{"date": AS_OF + dt.timedelta(days=10), "account": "acct", "security": "STK",
                  "shares": 100}]
    result = orb.solve(four_lots(scheduled), sell_to(0.375, "exact", "fifo"))
    assert result.lots_sold["shares"].to_dict() == pytest.approx(
        {"A": 100.0, "B": 100.0, "C": 50.0}, abs=1e-6)
    assert bool(result.lots_sold.loc["C", "wash_sale"])
    assert result.lots_sold.loc["C", "disallowed_loss"] == pytest.approx(1000.0, abs=1e-6)
    assert item(result, "tax_exact") == pytest.approx(0.2 * 5000, abs=1e-6)


def test_a_fixed_order_can_make_a_hard_gain_budget_infeasible() -> None:
    # 250 shares at no net gain: C, B and half of D by specific identification (-2,000 + 1,000
    # + 1,000); FIFO sales of 250 realize at least the chord 5/6 x 3,000 = 2,500 in the
    # program, 4,000 in order. The diagnosis names the budget and the band edges the sale is for
    # (equity down to 37.5%, cash up to 62.5%), never the order.
    policy = sell_to(0.375, "linear", "optimal", tax={"gain_budget": 0.0})
    result = orb.solve(four_lots(), policy)
    net = item(result, "realized_short") + item(result, "realized_long")
    assert net == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(four_lots(), sell_to(0.375, "linear", "fifo", tax={"gain_budget": 0.0}))
    assert info.value.conflicts[0] == "gain budget (0.00)"
    assert set(info.value.conflicts[1:]) == {"band upper 'equity' (0.375)",
                                             "band lower 'cash' (0.625)"}


# --- the program and the pure rule --------------------------------------------------------------


def test_optimal_adds_no_row_and_a_fixed_order_one_per_consecutive_open_pair() -> None:
    optimal = build_problem_data(four_lots(), sell_to(0.375, "linear", "optimal"))
    assert "lot relief order" not in build_program(optimal)[0].blocks
    locked = sell_to(0.375, "linear", "fifo", restrictions=orb.Restrictions(locked_lots=["B"]))
    data = build_problem_data(four_lots(), locked)
    rows = build_program(data)[0].blocks["lot relief order"]
    assert rows.stop - rows.start == 2  # A then C, C then D: B is skipped
    chain = relief_chain(data).toarray()
    # A (0) before C (2), C before D (3); every lot is 10,000 of 40,000
    assert chain.tolist() == [[-1.0, 0.0, 1.0, 0.0], [0.0, 0.0, -1.0, 1.0]]
    w = data.lot_weight
    strict = Point.of(np.zeros(data.n_pairs), np.array([w[0], 0.0, w[2] / 2, 0.0]))
    backwards = Point.of(np.zeros(data.n_pairs), np.array([0.0, 0.0, w[2] / 2, w[3]]))
    term = LotRelief()
    assert term.residual(data, strict) == pytest.approx(0.0, abs=1e-12)
    assert term.residual(data, backwards) == pytest.approx(w[3] - w[2] / 2, rel=1e-12)
    # the decode's re-assignment of the backwards sale: the same total, strictly in order
    assert in_order(data, backwards.sells) == pytest.approx([w[0], 0.0, w[2] / 2, 0.0])


def test_relief_order_ties_and_fill() -> None:
    position = np.array([1, 0, 0, 0, 0])
    basis = np.array([5.0, 10.0, 12.0, 10.0, 10.0])
    acquired = np.array(["2020-01-01", "2021-05-01", "2022-01-01", "2021-05-01", "2019-01-01"],
                        dtype="datetime64[D]")
    ids = np.array(["z", "b", "c", "a", "d"])
    # position 0 first; HIFO: c (12), then the 10s by date (d 2019) then id (a before b)
    assert relief_order("hifo", position, basis, acquired, ids).tolist() == [2, 4, 3, 1, 0]
    assert relief_order("fifo", position, basis, acquired, ids).tolist() == [4, 3, 1, 2, 0]
    assert relief_order("lifo", position, basis, acquired, ids).tolist() == [2, 3, 1, 4, 0]
    with pytest.raises(ValueError, match="optimal"):
        relief_order("optimal", position, basis, acquired, ids)
    order = relief_order("fifo", position, basis, acquired, ids)
    capacity = np.array([7.0, 3.0, 4.0, 0.0, 2.0])  # lot a (3) may not be sold: passed over
    out = fill_in_order(order, position, capacity, np.array([6.0, 5.0]))
    assert out.tolist() == [5.0, 3.0, 1.0, 0.0, 2.0]  # d 2, b 3, c 1 | z 5


def test_lot_relief_round_trips_through_toml(tmp_path: Path) -> None:
    for relief in ("optimal", "hifo", "fifo", "lifo"):
        policy = orb.Policy({"equity": 0.6, "bonds": 0.4},
                            tax=orb.Tax(model="exact", lot_relief=relief,
                                        holding_period="replacement_date"))
        text = policy.to_toml()
        assert f'lot_relief = "{relief}"' in text
        path = tmp_path / f"{relief}.toml"
        path.write_text(text)
        again = orb.Policy.from_toml(path)
        assert again == policy
        assert again.tax.lot_relief == relief


def test_an_unknown_relief_method_names_the_nearest() -> None:
    with pytest.raises(orb.InputError, match=r"tax\.lot_relief") as info:
        orb.Tax(lot_relief="fif0")
    assert "fifo" in str(info.value)
