"""Derivative overlay: futures sizing, implementations, margin, migration, rounding, bad input."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pandas as pd
import pytest

import optirebal as orb
from optirebal.overlay import contracts_for
from optirebal.program.prepare import build_problem_data
from optirebal.program.solvers import solve_conic
from optirebal.program.terms import Point, build_program, constraint_residual, objective_value
from optirebal.program.terms.overlay import overlay_cash, overlay_costs, overlay_margin

AS_OF = "2026-11-20"
COV = pd.DataFrame([[0.0256, 0.001], [0.001, 0.0036]], index=["equity", "bonds"],
                   columns=["equity", "bonds"])


def fund(equity: float, bonds: float, cash: float, *, derivatives: pd.DataFrame | None = None,
         account_type: str = "tax_exempt", basis_fraction: float = 1.0,
         half_spread_bps: float = 2.0, daily_traded_value: float = 5e9) -> orb.Portfolio:
    """One account holding an equity and a bond fund (price 100) and cash (currency)."""
    sec = pd.DataFrame({"security": ["EQ", "BD"], "price": [100.0, 100.0],
                        "asset_class": ["equity", "bonds"],
                        "half_spread_bps": [half_spread_bps, half_spread_bps],
                        "daily_volatility": [0.012, 0.004],
                        "daily_traded_value": [daily_traded_value, daily_traded_value]})
    acc = pd.DataFrame({"account": ["fund"], "type": [account_type], "cash": [cash]})
    lots = pd.DataFrame({"lot": ["EQ-1", "BD-1"], "account": ["fund", "fund"],
                         "security": ["EQ", "BD"], "quantity": [equity / 100, bonds / 100],
                         "cost_basis": [equity * basis_fraction, bonds],
                         "acquired": ["2015-03-02", "2015-03-02"]})
    return orb.Portfolio.from_frames(sec, acc, lots, as_of=AS_OF, risk=COV,
                                     derivatives=derivatives)


def future(name: str = "ES", *, price: float = 5000.0, multiplier: float = 250.0,
           contracts: float = 0.0, **columns: object) -> pd.DataFrame:
    row = {"instrument": name, "price": price, "multiplier": multiplier,
           "asset_class": "equity", "half_spread_bps": 0.5, "margin_rate": 0.05,
           "contracts": contracts}
    row.update(columns)
    return pd.DataFrame([row])


def policy(implementation: str = "hybrid", **kwargs: object) -> orb.Policy:
    overlay = kwargs.pop("overlay", {})
    base = {"targets": {"equity": 0.6, "bonds": 0.3, "cash": 0.1}, "band": orb.Band.absolute(0.02),
            "class_bands": {"cash": orb.Band.range(0.0, 1.0)}, "risk_aversion": 5.0}
    base.update(kwargs)
    return orb.Policy(**base, overlay=orb.Overlay(implementation=implementation, **overlay))


# --- REFERENCE_CASES: futures sizing -------------------------------------------------------------


def test_contracts_for_reference_cases() -> None:
    assert contracts_for(25e6, 5000.0, 250.0) == 20
    assert contracts_for(-50e6, 5000.0, 50.0) == -200


def test_equitize_25m_of_cash_is_20_contracts_long() -> None:
    pf = fund(50e6, 25e6, 25e6, derivatives=future())
    pol = orb.Policy(targets={"equity": 0.75, "bonds": 0.25, "cash": 0.0}, mode="to_target",
                     overlay=orb.Overlay(implementation="synthetic"))
    result = orb.solve(pf, pol)
    row = result.synthetic.loc["ES"]
    assert row["contracts"] == 20
    assert row["notional"] == pytest.approx(25e6)
    assert row["exposure_equity"] == pytest.approx(25e6)
    assert row["exposure_cash"] == pytest.approx(-25e6)  # the financing leg
    assert row["margin"] == pytest.approx(0.05 * 25e6)
    assert row["reason"] == "band: equity below lower edge (synthetic)"
    assert not result.traded
    assert result.weights.loc["equity", "after"] == pytest.approx(0.75, abs=1e-4)
    assert result.costs.loc["derivative_spread", "value"] == pytest.approx(25e6 * 0.5e-4)


def test_trim_50m_of_equity_is_200_contracts_short() -> None:
    pf = fund(350e6, 100e6, 50e6, derivatives=future(multiplier=50.0))
    pol = orb.Policy(targets={"equity": 0.6, "bonds": 0.2, "cash": 0.2}, mode="to_target",
                     overlay=orb.Overlay(implementation="synthetic"))
    result = orb.solve(pf, pol)
    row = result.synthetic.loc["ES"]
    assert row["contracts"] == -200
    assert row["notional"] == pytest.approx(-50e6)
    assert row["reason"] == "band: equity above upper edge (synthetic)"
    assert result.weights.loc["equity", "after"] == pytest.approx(0.6, abs=1e-4)
    assert result.weights.loc["cash", "after"] == pytest.approx(0.2, abs=1e-4)


# --- implementations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("equity", "bonds", "cash", "held"), [
    (70e6, 25e6, 5e6, 0.0), (55e6, 40e6, 5e6, 0.0), (68e6, 22e6, 10e6, -8.0),
    (52e6, 30e6, 18e6, 12.0)])
def test_hybrid_objective_never_above_physical(equity: float, bonds: float, cash: float,
                                               held: float) -> None:
    pf = fund(equity, bonds, cash, derivatives=future(contracts=held, carry_per_year=0.004,
                                                      basis_volatility=0.01),
              account_type="taxable", basis_fraction=0.5, daily_traded_value=5e8)
    physical = orb.solve(pf, policy("physical"))
    hybrid = orb.solve(pf, policy("hybrid"))
    assert hybrid.objective <= physical.objective + 1e-9
    assert (physical.synthetic["contracts"] == 0).all()


def test_synthetic_only_makes_no_physical_trade() -> None:
    pf = fund(72e6, 20e6, 8e6, derivatives=pd.concat([
        future("ES"), future("TY", price=110.0, multiplier=1000.0, asset_class="bonds")]))
    hybrid = orb.solve(pf, policy("physical"))
    assert hybrid.traded
    result = orb.solve(pf, policy("synthetic"))
    assert not result.traded
    assert len(result.lots_sold) == 0
    assert result.costs.loc[["spread", "impact"], "value"].sum() == 0
    assert result.synthetic.loc["ES", "contracts"] < 0
    assert result.synthetic.loc["TY", "contracts"] > 0
    w = result.weights
    assert (w["after"] <= w["upper"] + 1e-4).all() and (w["after"] >= w["lower"] - 1e-4).all()


def test_physical_holds_existing_contracts() -> None:
    pf = fund(70e6, 25e6, 5e6, derivatives=future(contracts=-4.0))
    result = orb.solve(pf, policy("physical"))
    assert result.traded
    assert result.synthetic.loc["ES", "contracts_after"] == -4
    assert result.synthetic.loc["ES", "reason"] == "hold"


# --- margin ---------------------------------------------------------------------------------------


def shortfall_portfolio() -> orb.Portfolio:
    # 40 contracts of 1.25M = 50M notional at 10% margin: 5M, against 2M of cash
    return fund(30e6, 40e6, 2e6, derivatives=future(contracts=40.0, margin_rate=0.1))


def test_margin_shortfall_raises_naming_the_instrument() -> None:
    with pytest.raises(orb.InputError, match=r"row 'ES'.*margin of the current contracts "
                                             r"\(5,000,000.00\) is above the available cash"):
        orb.solve(shortfall_portfolio(), policy("hybrid"))


def test_margin_shortfall_reduces_exposure() -> None:
    pf = shortfall_portfolio()
    pol = policy("hybrid", soft_bands=True, overlay={"on_margin_shortfall": "reduce"})
    result = orb.solve(pf, pol)
    row = result.synthetic.loc["ES"]
    # at most the 40% of the position the 2M of cash carries
    assert 0 <= row["contracts_after"] <= 16
    assert row["contracts"] < 0
    assert row["reason"] == "margin: cut to fit the cash of account 'fund'"
    cash = result.cash.loc["fund"]
    assert cash["after"] - cash["margin"] >= cash["reserve"] - 1e-6 * result.nav


def test_margin_is_reserved_cash() -> None:
    # 8M of cash, no reserve: margin 5% caps the overlay at 160M / ... the cash holds
    pf = fund(40e6, 52e6, 8e6, derivatives=future(margin_rate=0.5))
    result = orb.solve(pf, policy("synthetic", soft_bands=True))
    cash = result.cash.loc["fund"]
    assert cash["margin"] == pytest.approx(result.synthetic["margin"].sum())
    assert cash["after"] - cash["margin"] >= -1e-6 * result.nav
    assert result.synthetic.loc["ES", "contracts_after"] <= 8e6 / (0.5 * 1.25e6)


# --- migration, caps, rounding ------------------------------------------------------------------


def test_migration_shrinks_the_overlay_by_the_fraction() -> None:
    # 12 contracts (15M) carry equity to its 60% target; a quarter must go this review
    pf = fund(45e6, 30e6, 25e6, derivatives=future(contracts=12.0))
    result = orb.solve(pf, policy("hybrid", overlay={"migrate_fraction": 0.25}))
    row = result.synthetic.loc["ES"]
    assert 0 <= row["contracts_after"] <= 9  # (1 - 0.25) x 12
    assert row["reason"] == "migrate: shrink overlay by at least 25%"
    buys = result.orders[result.orders["side"] == "buy"]
    assert "EQ" in set(buys["security"])  # physical equity replaces the exposure
    assert result.weights.loc["equity", "after"] >= 0.58 - 1e-6
    held = orb.solve(pf, policy("hybrid"))
    assert held.synthetic.loc["ES", "contracts"] == 0  # without migration nothing moves


def test_instrument_and_gross_caps() -> None:
    pf = fund(40e6, 20e6, 40e6, derivatives=pd.concat([
        future("ES"), future("NQ", price=20000.0, multiplier=20.0)]))
    capped = orb.solve(pf, policy("synthetic", soft_bands=True,
                                  overlay={"instrument_caps": {"ES": 0.05},
                                           "max_gross_notional": 0.08}))
    notional = capped.synthetic["notional_after"].abs()
    assert notional.get("ES", 0.0) <= 0.05 * capped.nav + 1e-6
    assert notional.sum() <= 0.08 * capped.nav + 1e-6


def test_rounding_that_breaks_a_band_is_repaired() -> None:
    # 10.4 contracts reach the lower edge of equity; rounding to 10 would leave it below
    pf = fund(42e6, 40e6, 18e6, derivatives=future(margin_rate=0.0))
    pol = policy("synthetic", mode="to_band",
                 targets={"equity": 0.6, "bonds": 0.3, "cash": 0.1},
                 class_bands={"equity": orb.Band.absolute(0.05),
                              "bonds": orb.Band.range(0.0, 1.0),
                              "cash": orb.Band.range(-1.0, 1.0)})
    data = build_problem_data(pf, pol)
    assert data.overlay is not None
    result = orb.solve(pf, pol)
    row = result.synthetic.loc["ES"]
    assert row["contracts_after"] == 11
    assert row["residual_notional"] == pytest.approx(10.4 * 1.25e6 - 11 * 1.25e6, rel=1e-4)
    assert result.weights.loc["equity", "after"] >= 0.55 - 1e-9
    assert any("rounding into whole contracts" in n for n in result.diagnostics.notes)


def test_option_enters_by_its_delta_and_premium_is_value() -> None:
    option = future("SPX-C", price=5000.0, multiplier=100.0, kind="option", delta=0.5,
                    premium=150.0, contracts=20.0, margin_rate=0.0)
    pf = fund(50e6, 40e6, 10e6, derivatives=option)
    assert pf.nav_value == pytest.approx(100e6 + 20 * 150.0 * 100.0)
    data = build_problem_data(pf, policy())
    assert data.overlay.exposure[0, 0] == 0.5
    w_before = data.exposure_before / data.scale
    assert w_before.sum() == pytest.approx(1.0)
    # 20 contracts x 5000 x 100 x delta 0.5 = 5M of equity exposure
    assert w_before[0] == pytest.approx((50e6 + 5e6) / pf.nav_value)
    result = orb.solve(pf, policy("hybrid"))
    assert result.weights["after"].sum() == pytest.approx(1.0, abs=1e-6)
    cash = result.cash
    np.testing.assert_allclose(cash["after"], cash["before"] + cash["flow"] + cash["traded"]
                               - cash["costs"], atol=1e-6)


# --- the institutional case -----------------------------------------------------------------------


def test_institutional_overlay_wins_cheaper_and_no_gains() -> None:
    # a $5bn taxable fund whose equity (bought at 40% of today's price) drifted to 68%
    pf = fund(3.4e9, 1.35e9, 0.25e9, account_type="taxable", basis_fraction=0.4,
              half_spread_bps=3.0, daily_traded_value=2e9,
              derivatives=future(carry_per_year=0.002, basis_volatility=0.005))
    pol = policy("physical", targets={"equity": 0.6, "bonds": 0.3, "cash": 0.1},
                 tax=orb.Tax(model="linear", short_term_rate=0.21, long_term_rate=0.21))
    physical = orb.solve(pf, pol)
    hybrid = orb.solve(pf, dataclasses.replace(pol, overlay=orb.Overlay("hybrid")))
    assert physical.costs.loc["tax", "value"] > 1e7  # selling equity realizes large gains
    assert (physical.orders["side"] == "sell").any()
    assert len(hybrid.lots_sold) == 0
    assert hybrid.costs.loc["tax", "value"] == 0
    assert hybrid.synthetic.loc["ES", "contracts"] < 0
    assert hybrid.costs.loc["total", "value"] < 0.05 * physical.costs.loc["total", "value"]
    assert hybrid.objective < physical.objective
    w = hybrid.weights
    assert (w["after"] <= w["upper"] + 1e-4).all() and (w["after"] >= w["lower"] - 1e-4).all()


# --- verification: numpy twins --------------------------------------------------------------------


def test_numpy_terms_match_the_program_at_its_solution() -> None:
    pf = fund(66e6, 26e6, 8e6, derivatives=future(contracts=-3.0, carry_per_year=0.01))
    data = build_problem_data(pf, policy("hybrid"))
    program, ctx = build_program(data)
    answer = solve_conic(program, "CLARABEL")
    x = answer.x
    u = x[program.variables["derivatives"]]
    buys = ctx.buys.padded(program.n) @ x + ctx.buys.constant
    sells = ctx.sells.padded(program.n) @ x + ctx.sells.constant
    point = Point(buys, sells, u)
    assert constraint_residual(data, point) <= 1e-7
    # every term's numpy value adds up to the solver's objective
    solver_objective = 0.5 * x @ (program.P @ x) + program.q @ x + program.constant
    assert objective_value(data, point) == pytest.approx(solver_objective, abs=1e-9)
    spread = overlay_costs(data, u)["derivative_spread"].sum()
    assert spread == pytest.approx(float(data.overlay.spread @ np.abs(u)), abs=1e-12)
    margin = overlay_margin(data, u).sum()
    assert margin == pytest.approx(0.05 * abs(data.overlay.position[0] + u[0]), abs=1e-12)
    assert overlay_cash(data, u)[0] == pytest.approx(spread + margin)


def test_without_derivatives_the_program_is_unchanged() -> None:
    plain = fund(66e6, 26e6, 8e6)
    data = build_problem_data(plain, policy())
    assert data.overlay is None
    assert data.shape_key[6] is None
    program, _ = build_program(data)
    assert "derivatives" not in program.variables
    assert not any(name.startswith(("overlay", "derivative")) for name in program.blocks)
    with_one = build_problem_data(fund(66e6, 26e6, 8e6, derivatives=future()), policy())
    with_two = build_problem_data(fund(66e6, 26e6, 8e6, derivatives=pd.concat(
        [future("ES"), future("NQ", price=20000.0, multiplier=20.0)])), policy())
    assert with_one.overlay.size == 1 and with_two.overlay.size == 2
    assert len({data.shape_key, with_one.shape_key, with_two.shape_key}) == 3


def test_apply_trades_moves_the_contracts() -> None:
    pf = fund(66e6, 29e6, 5e6, derivatives=future())
    result = orb.solve(pf, policy("synthetic"))
    moved = orb.apply_trades(pf, result)
    assert moved.derivatives.loc["ES", "contracts"] == result.synthetic.loc["ES",
                                                                             "contracts_after"]
    again = orb.solve(moved, policy("synthetic"))
    assert (again.synthetic["contracts"] == 0).all()


def test_summary_shows_synthetic_trades() -> None:
    result = orb.solve(fund(66e6, 29e6, 5e6, derivatives=future()), policy("synthetic"))
    text = result.summary()
    assert "Synthetic trades" in text and "ES" in text
    assert "Synthetic trades" in result._repr_html_()
    plain = orb.solve(fund(70e6, 25e6, 5e6), policy("physical"))
    assert plain.synthetic is None and "Synthetic trades" not in plain.summary()


# --- policy -----------------------------------------------------------------------------------


def test_overlay_policy_toml_round_trip() -> None:
    pol = policy("hybrid", overlay={"instrument_caps": {"ES": 0.1}, "max_gross_notional": 0.3,
                                    "margin_account": "fund", "variation_buffer": 0.02,
                                    "migrate_fraction": 0.25, "on_margin_shortfall": "reduce"})
    text = pol.to_toml()
    assert "[policy.overlay]" in text
    back = orb.Policy.from_dict(tomllib.loads(text)["policy"])
    assert back == pol and hash(back) == hash(pol)
    assert eval(repr(pol.overlay), {"Overlay": orb.Overlay}) == pol.overlay


def test_overlay_policy_rejects_unknown_keys_and_values() -> None:
    with pytest.raises(orb.PolicyFileError, match=r"policy\.overlay\.migrate_fractoin.*"
                                                  r"did you mean 'migrate_fraction'"):
        orb.Policy.from_dict({"targets": {"equity": 1.0},
                              "overlay": {"migrate_fractoin": 0.5}})
    with pytest.raises(orb.InputError, match=r"overlay\.implementation"):
        orb.Overlay(implementation="synthetc")
    with pytest.raises(orb.InputError, match="migrate_fraction"):
        orb.Overlay(migrate_fraction=1.5)
    with pytest.raises(orb.InputError, match="on_margin_shortfall"):
        orb.Overlay(on_margin_shortfall="ignore")


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("columns", "pattern"), [
    ({"price": 0.0}, r"field 'price', row 'ES'.*> 0"),
    ({"price": -5.0}, r"field 'price', row 'ES'.*> 0"),
    ({"multiplier": 0.0}, r"field 'multiplier', row 'ES'.*> 0"),
    ({"multiplier": -50.0}, r"field 'multiplier', row 'ES'"),
    ({"asset_class": "commodities"}, r"field 'asset_class', row 'ES'.*unknown class "
                                     r"'commodities'"),
    ({"contracts": 2.5}, r"field 'contracts', row 'ES'.*whole"),
    ({"kind": "forward"}, r"field 'kind', row 'ES'"),
    ({"kind": "option"}, r"field 'delta', row 'ES'.*non-zero delta"),
    ({"kind": "option", "delta": 1.5}, r"field 'delta', row 'ES'.*\[-1, 1\]"),
    ({"delta": 0.5}, r"field 'delta', row 'ES'.*options only"),
    ({"margin_rate": -0.1}, r"field 'margin_rate', row 'ES'"),
    ({"carry_per_year": -0.01}, r"field 'carry_per_year', row 'ES'"),
    ({"premium": 10.0}, r"field 'premium', row 'ES'.*options only"),
])
def test_bad_derivative_input_names_the_instrument(columns: dict, pattern: str) -> None:
    with pytest.raises(orb.InputError, match=pattern):
        fund(60e6, 30e6, 10e6, derivatives=future(**columns))


def test_exposure_to_an_unknown_class_names_the_instrument() -> None:
    der = future().drop(columns="asset_class").assign(exposure_equity=1.0, exposure_gold=0.2)
    with pytest.raises(orb.InputError, match=r"field 'exposure_gold', row 'ES'.*unknown class "
                                             r"'gold'"):
        fund(60e6, 30e6, 10e6, derivatives=der)


def test_margin_above_available_cash_names_the_instrument() -> None:
    pf = fund(60e6, 30e6, 1e6, derivatives=future(contracts=-30.0, margin_rate=0.08))
    with pytest.raises(orb.InputError, match=r"field 'contracts', row 'ES'.*margin"):
        orb.solve(pf, policy())


def test_contracts_on_an_instrument_not_in_the_portfolio() -> None:
    pf = fund(60e6, 30e6, 10e6, derivatives=future())
    with pytest.raises(orb.InputError, match=r"field 'contracts', row 'NQ'.*not in the "
                                             r"portfolio"):
        pf.with_contracts({"NQ": 3})
    with pytest.raises(orb.InputError, match=r"row 'NQ'.*instrument not in the portfolio"):
        orb.solve(pf, policy(overlay={"instrument_caps": {"NQ": 0.1}}))
    with pytest.raises(orb.InputError, match=r"overlay.margin_account.*unknown account"):
        orb.solve(pf, policy(overlay={"margin_account": "custody"}))
    assert pf.with_contracts({"ES": -3}).derivatives.loc["ES", "contracts"] == -3


def test_infeasible_overlay_names_the_conflicting_limits() -> None:
    pf = fund(66e6, 29e6, 5e6, derivatives=future())
    with pytest.raises(orb.InfeasibleError) as caught:
        orb.solve(pf, policy("synthetic", overlay={"instrument_caps": {"ES": 0.01}}))
    conflicts = caught.value.conflicts
    assert "overlay bounds of 'ES' (notional cap)" in conflicts
    assert "band upper 'equity' (0.62)" in conflicts
    # the bonds cannot move without physical trades: the synthetic implementation is named
    with pytest.raises(orb.InfeasibleError, match="overlay implementation synthetic"):
        orb.solve(fund(70e6, 25e6, 5e6, derivatives=future()), policy("synthetic"))
