"""The tax model inside the program: exact US netting by regions, budget, penalties, harvest mode.

Known answers come from REFERENCE_CASES ("Tax law") and from the statute (IRC 1211(b), 1212(b),
1222), worked by hand in docs/tax.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, multi_asset

import optirebal as orb
from optirebal.program.prepare import build_problem_data, region_data
from optirebal.program.regions import solve_tax_program
from optirebal.program.solve import Infeasible, solve_program
from optirebal.program.terms import build_program
from optirebal.tax.netting import TaxRates, exact_tax

NO_IMPACT = orb.Costs(impact="none")
LONG_AGO = "2020-01-02"
RECENT = AS_OF - dt.timedelta(days=100)  # short-term, outside every wash-sale window


def one_stock(lots: list[dict], price: float = 100.0, cash: float = 0.0,
              account_type: str = "taxable") -> orb.Portfolio:
    """One security STK (class equity) in one account ``acct``, plus cash."""
    sec = pd.DataFrame([{"security": "STK", "price": price, "asset_class": "equity"}])
    acc = pd.DataFrame([{"account": "acct", "type": account_type, "cash": cash}])
    frame = pd.DataFrame([{"account": "acct", "security": "STK", **lot} for lot in lots])
    cov = pd.DataFrame([[0.04]], index=["equity"], columns=["equity"])
    return orb.Portfolio.from_frames(sec, acc, frame, as_of=AS_OF, risk=cov)


def sell_all(tax: orb.Tax) -> orb.Policy:
    return orb.Policy({"equity": 0.0, "cash": 1.0}, mode="to_target", costs=NO_IMPACT, tax=tax)


def sell_half(tax: orb.Tax) -> orb.Policy:
    return orb.Policy({"equity": 0.5, "cash": 0.5}, mode="to_target", costs=NO_IMPACT, tax=tax)


def item(result: orb.Result, name: str) -> float:
    assert result.tax is not None
    return float(result.tax.loc[name, "value"])


# --- REFERENCE_CASES: netting with a short-term loss (published TaxMin example) ------------------


@pytest.mark.parametrize("model", ["linear", "exact"])
@pytest.mark.parametrize(("short", "long", "expected", "per_lot"), [
    (1159.0, 11476.0, 4022.30, 4022.30),
    (-1227.0, 1690.0, 138.90, -106.50),
])
def test_published_netting_is_reported_whichever_model(model: str, short: float, long: float,
                                                       expected: float, per_lot: float) -> None:
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 20_000 - short, "acquired": RECENT},
            {"lot": "B", "quantity": 100, "cost_basis": 20_000 - long, "acquired": LONG_AGO}]
    tax = orb.Tax(model=model, short_term_rate=0.5, long_term_rate=0.3, ordinary_rate=0.5)
    result = orb.solve(one_stock(lots, price=200.0), sell_all(tax))
    assert result.lots_sold["shares"].to_dict() == pytest.approx({"A": 100.0, "B": 100.0})
    assert item(result, "net_short") == pytest.approx(short)
    assert item(result, "net_long") == pytest.approx(long)
    assert item(result, "tax_exact") == pytest.approx(expected, abs=1e-6)
    assert item(result, "tax_linear") == pytest.approx(per_lot, abs=1e-6)
    # the cost row is the model's own figure: per-lot for linear, netted for exact
    model_tax = per_lot if model == "linear" else expected
    assert result.costs.loc["tax", "value"] == pytest.approx(model_tax, abs=1e-6)


# --- REFERENCE_CASES: lot choice --------------------------------------------------------------


def test_lot_choice_one_rate_exact() -> None:
    lots = [{"lot": f"B{b}", "quantity": 100, "cost_basis": 100 * b, "acquired": LONG_AGO}
            for b in (50, 80, 120)]
    # the realized -1,000 is a net capital loss: at a 20% ordinary rate its value is 200
    tax = orb.Tax(model="exact", short_term_rate=0.2, long_term_rate=0.2, ordinary_rate=0.2)
    result = orb.solve(one_stock(lots), sell_half(tax))
    assert result.lots_sold["shares"].to_dict() == pytest.approx({"B120": 100.0, "B80": 50.0})
    assert result.lots_sold["gain"].sum() == pytest.approx(-1000.0)
    assert result.costs.loc["tax", "value"] == pytest.approx(-200.0)
    assert item(result, "region") == 4
    assert "region R4 chosen" in " ".join(result.diagnostics.notes)


def test_lot_choice_two_rates_exact() -> None:
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 9800, "acquired": RECENT},
            {"lot": "B", "quantity": 100, "cost_basis": 9700, "acquired": LONG_AGO}]
    tax = orb.Tax(model="exact", short_term_rate=0.37, long_term_rate=0.20)
    portfolio = one_stock(lots)
    result = orb.solve(portfolio, sell_half(tax))
    assert list(result.lots_sold.index) == ["B"]
    assert result.costs.loc["tax", "value"] == pytest.approx(60.0)
    # highest basis first would sell A: 200 short-term at 37% = 74
    assert exact_tax(200.0, 0.0, TaxRates(0.37, 0.2, 0.37)).tax == pytest.approx(74.0)


def test_exact_and_linear_choose_different_lots() -> None:
    # A: short-term gain 1,000; B: long-term gain 1,500; a long-term loss of 1,500 carried in.
    # Linear prices A at 40% (400) and B at 20% (300) and sells B, whose true tax is 555 (it
    # uses up the loss that was offsetting ordinary income at 37%); exact netting sells A: 370.
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 9000, "acquired": RECENT},
            {"lot": "B", "quantity": 100, "cost_basis": 8500, "acquired": LONG_AGO}]
    portfolio = one_stock(lots)
    rates = {"short_term_rate": 0.4, "long_term_rate": 0.2, "ordinary_rate": 0.37,
             "realized_long": -1500.0}
    exact = orb.solve(portfolio, sell_half(orb.Tax(model="exact", **rates)))
    linear = orb.solve(portfolio, sell_half(orb.Tax(model="linear", **rates)))
    assert list(exact.lots_sold.index) == ["A"]
    assert list(linear.lots_sold.index) == ["B"]
    assert item(exact, "tax_exact") == pytest.approx(370.0)
    assert item(linear, "tax_exact") == pytest.approx(555.0)
    assert item(linear, "tax_linear") == pytest.approx(300.0)
    assert linear.costs.loc["tax", "value"] == pytest.approx(300.0)


# --- the statute: both nets negative, the offset limit, carryover character --------------------


def _forced_long_loss(loss: float, **tax: float | str) -> orb.Result:
    lots = [{"lot": "X", "quantity": 100, "cost_basis": 10_000 + loss, "acquired": LONG_AGO}]
    policy = sell_all(orb.Tax(model="exact", short_term_rate=0.5, long_term_rate=0.3,
                              ordinary_rate=0.4, loss_carry_value=0.1, **tax))
    return orb.solve(one_stock(lots), policy)


def test_both_nets_negative_short_loss_absorbs_offset_first() -> None:
    # S = -5,000 carried in, L = -2,000 realized: 3,000 offset, 2,000 short and 2,000 long carry
    result = _forced_long_loss(2000.0, realized_short=-5000.0)
    assert item(result, "net_short") == pytest.approx(-5000.0)
    assert item(result, "net_long") == pytest.approx(-2000.0)
    assert item(result, "region") == 5
    assert item(result, "ordinary_offset_used") == pytest.approx(3000.0)
    assert item(result, "carryover_short") == pytest.approx(2000.0)
    assert item(result, "carryover_long") == pytest.approx(2000.0)
    assert item(result, "tax_after") == pytest.approx(-1600.0)
    # before the sale: S = -5,000 alone, -1,200 - 0.1 x 2,000 = -1,400
    assert item(result, "tax_before") == pytest.approx(-1400.0)
    assert item(result, "tax_exact") == pytest.approx(-200.0)


@pytest.mark.parametrize(("status", "offset", "carry_long", "tax_after"), [
    ("single", 2000.0, 0.0, -800.0),
    ("married_joint", 2000.0, 0.0, -800.0),
    ("married_separate", 1500.0, 500.0, -650.0),
])
def test_offset_limit_by_filing_status(status: str, offset: float, carry_long: float,
                                       tax_after: float) -> None:
    # S = -1,000 carried in, L = -1,000 realized: a 2,000 net capital loss. IRC 1211(b)(1)
    # allows 3,000 (1,500 married filing separately); the short-term loss absorbs it first,
    # so a married-separate filer carries 500 long-term, worth kappa = 10%.
    result = _forced_long_loss(1000.0, realized_short=-1000.0, filing_status=status)
    assert item(result, "ordinary_offset_used") == pytest.approx(offset)
    assert item(result, "carryover_short") == pytest.approx(0.0)
    assert item(result, "carryover_long") == pytest.approx(carry_long)
    assert item(result, "tax_after") == pytest.approx(tax_after)


def test_filing_status_offset_and_bad_values() -> None:
    assert orb.Tax(filing_status="married_separate").offset == 1500.0
    assert orb.Tax().offset == 3000.0
    with pytest.raises(orb.InputError, match="filing_status"):
        orb.Tax(filing_status="married")
    with pytest.raises(orb.InputError, match="loss_carry_value"):
        orb.Tax(loss_carry_value=1.5)
    with pytest.raises(orb.InputError, match="realized_short"):
        orb.Tax(realized_short=float("nan"))


# --- the region driver: exact, one compiled program, pruning ----------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_region_driver_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    portfolio = multi_asset(seed=seed, n_securities=9, accounts=("taxable", "ira"),
                            lots_per_position=3)
    tax = orb.Tax(model="exact", short_term_rate=0.35, long_term_rate=0.15, ordinary_rate=0.4,
                  realized_short=float(rng.normal(0, 15_000)),
                  realized_long=float(rng.normal(0, 15_000)),
                  loss_carry_value=float(rng.uniform(0, 0.2)))
    policy = orb.Policy({"equity": 0.5, "bonds": 0.3, "real_estate": 0.2},
                        risk_aversion=float(rng.uniform(1, 20)), tax=tax)
    data = build_problem_data(portfolio, policy)
    log: list[str] = []
    best = solve_tax_program(data, log)
    values = {}
    for region in range(1, 6):
        try:
            values[region] = solve_program(region_data(data, region)).objective
        except Infeasible:
            continue
    assert best.objective == pytest.approx(min(values.values()), abs=1e-9)
    assert "chosen" in log[0]


def test_exact_tax_equals_region_affine_at_the_optimum() -> None:
    portfolio = multi_asset(seed=5, n_securities=6, accounts=("taxable", "roth"))
    tax = orb.Tax(model="exact", realized_long=-4000.0, loss_carry_value=0.05)
    policy = orb.Policy({"equity": 0.5, "bonds": 0.3, "real_estate": 0.2}, tax=tax,
                        costs=NO_IMPACT)
    result = orb.solve(portfolio, policy)
    assert result.costs.loc["tax", "value"] == pytest.approx(item(result, "tax_exact"))
    again = orb.solve(portfolio, policy)  # the same call gives the same trades
    pd.testing.assert_frame_equal(again.orders, result.orders)
    # a Rebalancer re-uses its shape; it starts from the wash-sale directions it settled, which
    # leaves the optimum where it was (the trades may differ where the optimum is not unique)
    rebalancer = orb.Rebalancer(policy)
    first, warm = rebalancer.solve(portfolio), rebalancer.solve(portfolio)
    assert warm.diagnostics.cache_hit and warm.diagnostics.compiles == 0
    assert warm.objective == pytest.approx(first.objective, abs=1e-9)


def test_linear_program_unchanged_by_the_tax_hooks() -> None:
    portfolio = multi_asset(seed=1)
    policy = orb.Policy({"equity": 0.5, "bonds": 0.3, "real_estate": 0.2})
    data = build_problem_data(portfolio, policy)
    assert data.tax is not None and data.tax.structure == (False, False)
    program, _ = build_program(data)
    assert {"tax region", "gain budget"}.isdisjoint(program.blocks)
    exact = build_problem_data(portfolio, dataclasses.replace(
        policy, tax=orb.Tax(model="exact")))
    assert exact.shape_key != data.shape_key


# --- budget, short-term penalty, harvest discount ---------------------------------------------


def _gains_portfolio() -> orb.Portfolio:
    lots = [{"lot": f"G{n}", "quantity": 100, "cost_basis": 100 * b, "acquired": LONG_AGO}
            for n, b in enumerate((40, 50, 60, 70))]
    return one_stock(lots, cash=0.0)


def test_gain_budget_hard_cap() -> None:
    portfolio = _gains_portfolio()
    free = orb.solve(portfolio, orb.Policy({"equity": 0.8, "cash": 0.2}, mode="to_band",
                                           band=orb.Band.absolute(0.02), costs=NO_IMPACT))
    assert free.lots_sold["gain"].sum() > 2000.0
    budget = orb.Tax(gain_budget=1000.0)
    soft_bands = orb.Policy({"equity": 0.8, "cash": 0.2}, mode="to_band", soft_bands=True,
                            band=orb.Band.absolute(0.02), costs=NO_IMPACT, tax=budget)
    capped = orb.solve(portfolio, soft_bands)
    assert 0 < capped.lots_sold["gain"].sum() <= 1000.0 + 1e-6
    assert capped.weights.loc["equity", "after"] > 0.82  # the band gives way, not the budget


def test_gain_budget_penalty_form() -> None:
    portfolio = _gains_portfolio()
    base = orb.Policy({"equity": 0.8, "cash": 0.2}, mode="to_band", soft_bands=True,
                      band=orb.Band.absolute(0.02), costs=NO_IMPACT)
    cheap = orb.solve(portfolio, dataclasses.replace(
        base, tax=orb.Tax(gain_budget=1000.0, gain_budget_penalty=0.0)))
    dear = orb.solve(portfolio, dataclasses.replace(
        base, tax=orb.Tax(gain_budget=1000.0, gain_budget_penalty=5.0)))
    assert cheap.lots_sold["gain"].sum() > 1000.0 + 1.0
    assert dear.lots_sold["gain"].sum() <= 1000.0 + 1e-6


def test_short_term_penalty_on_lots_near_long_term() -> None:
    near = AS_OF - dt.timedelta(days=350)  # 16 days to long-term
    lots = [{"lot": "A", "quantity": 100, "cost_basis": 9500, "acquired": near},
            {"lot": "B", "quantity": 100, "cost_basis": 9000, "acquired": LONG_AGO}]
    portfolio = one_stock(lots)
    plain = orb.solve(portfolio, sell_half(orb.Tax(short_term_rate=0.37, long_term_rate=0.2)))
    assert list(plain.lots_sold.index) == ["A"]  # 185 < 200
    assert plain.lots_sold.loc["A", "days_to_long_term"] == 16
    waited = orb.solve(portfolio, sell_half(orb.Tax(short_term_rate=0.37, long_term_rate=0.2,
                                                    short_term_penalty=0.1)))
    assert list(waited.lots_sold.index) == ["B"]  # 185 + 50 > 200
    far = orb.solve(portfolio, sell_half(orb.Tax(short_term_rate=0.37, long_term_rate=0.2,
                                                 short_term_penalty=0.1,
                                                 near_long_term_days=10)))
    assert list(far.lots_sold.index) == ["A"]


def _harvest_household(loss_basis: float = 13_000.0) -> orb.Portfolio:
    sec = pd.DataFrame({
        "security": ["VOO", "IVV", "VTI", "BND"], "price": [100.0, 100.0, 100.0, 100.0],
        "asset_class": ["us_equity", "us_equity", "us_equity", "bonds"],
        "group": ["sp500", "sp500", "total", "bnd"], "half_spread_bps": [1.0, 1.0, 1.0, 1.0],
        "lot_size": [1, 1, 1, 1]})
    acc = pd.DataFrame({"account": ["brokerage", "ira"], "type": ["taxable", "tax_deferred"],
                        "cash": [1000.0, 1000.0]})
    lots = pd.DataFrame([
        {"lot": "V1", "account": "brokerage", "security": "VOO", "quantity": 100,
         "cost_basis": loss_basis, "acquired": "2024-03-01"},
        {"lot": "V2", "account": "brokerage", "security": "VOO", "quantity": 200,
         "cost_basis": 10_000, "acquired": LONG_AGO},
        {"lot": "B1", "account": "ira", "security": "BND", "quantity": 300, "cost_basis": 30_000,
         "acquired": LONG_AGO}])
    cov = pd.DataFrame([[0.03, 0.0], [0.0, 0.004]], index=["us_equity", "bonds"],
                       columns=["us_equity", "bonds"])
    return orb.Portfolio.from_frames(sec, acc, lots, as_of=AS_OF, risk=cov)


def _harvest_policy(**tax: object) -> orb.Policy:
    return orb.Policy({"us_equity": 0.5, "bonds": 0.5}, mode="harvest_only",
                      band=orb.Band.absolute(0.02), costs=NO_IMPACT,
                      tax=orb.Tax(model="exact", substitutes={"us_equity": ["VTI"]}, **tax))


def test_harvest_only_swaps_into_the_substitute() -> None:
    portfolio = _harvest_household()
    result = orb.solve(portfolio, _harvest_policy())
    orders = result.orders.set_index("security")
    assert list(result.lots_sold.index) == ["V1"]  # only the loss lot, in the taxable account
    assert orders.loc["VOO", "side"] == "sell"
    assert orders.loc["VOO", "reason"].startswith("harvest")
    assert orders.loc["VTI", "side"] == "buy"
    assert orders.loc["VTI", "reason"].startswith("substitute")
    assert "IVV" not in orders.index and "BND" not in orders.index
    assert not result.lots_sold["wash_sale"].any()
    assert item(result, "realized_long") == pytest.approx(-3000.0)
    assert result.costs.loc["tax", "value"] < 0
    w = result.weights
    assert ((w["after"] >= w["lower"] - 1e-9) & (w["after"] <= w["upper"] + 1e-9)).all()


def test_harvest_only_trades_only_when_the_tax_value_beats_the_costs() -> None:
    # a loss of 1 on 10,000 is worth 0.37 bp a unit, less than the 1 bp half-spread
    tiny = orb.solve(_harvest_household(loss_basis=10_001.0), _harvest_policy())
    assert not tiny.traded
    # a loss worth nothing (all of it given back later) is not worth the spread either
    discounted = orb.solve(_harvest_household(), _harvest_policy(harvest_discount=1.0))
    assert not discounted.traded
    # the tracking-error cost of holding the substitute shrinks the swap
    plain = orb.solve(_harvest_household(), _harvest_policy())
    costly = orb.solve(_harvest_household(), _harvest_policy(swap_tracking_cost_bps=500.0))
    bought = plain.orders.query("security == 'VTI'")["value"].sum()
    assert bought > 0
    assert costly.orders.query("security == 'VTI'")["value"].sum() < bought


def test_substitute_policy_errors() -> None:
    portfolio = _harvest_household()
    same_group = orb.Policy({"us_equity": 0.5, "bonds": 0.5},
                            tax=orb.Tax(substitutes={"us_equity": ["IVV"]}))
    with pytest.raises(orb.InputError, match="group 'sp500'") as info:
        orb.solve(portfolio, same_group)
    assert info.value.field == "tax.substitutes"
    for subs, message in (({"us_equity": ["XYZ"]}, "unknown security"),
                          ({"gold": ["VTI"]}, "no security loads"),
                          ({"bonds": ["VTI"]}, "does not load")):
        policy = orb.Policy({"us_equity": 0.5, "bonds": 0.5}, tax=orb.Tax(substitutes=subs))
        with pytest.raises(orb.InputError, match=message):
            orb.solve(portfolio, policy)


def test_tax_policy_round_trips_through_toml(tmp_path) -> None:
    policy = _harvest_policy(gain_budget=5000.0, realized_short=-300.0,
                             filing_status="married_separate")
    path = tmp_path / "policy.toml"
    path.write_text(policy.to_toml())
    again = orb.Policy.from_toml(path)
    assert again == policy
    assert again.tax.substitutes["us_equity"] == ("VTI",)
    assert np.isinf(again.tax.gain_budget_penalty)
