"""Households: taxable, tax-deferred and tax-exempt accounts rebalanced jointly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import optirebal as orb

MODELS = Path(__file__).resolve().parent.parent / "models"
NO_IMPACT = orb.Costs(impact="none")


def household(ira_cash: float = 0.0) -> orb.Portfolio:
    """A taxable account of appreciated stock, an IRA of bonds and stock, a Roth of bonds."""
    sec = pd.DataFrame({"security": ["EQ1", "EQ2", "BND"], "price": [100.0, 50.0, 20.0],
                        "asset_class": ["equity", "equity", "bonds"], "half_spread_bps": 2.0,
                        "lot_size": 1})
    acc = pd.DataFrame({"account": ["joint", "ira", "roth"],
                        "type": ["taxable", "tax_deferred", "tax_exempt"],
                        "cash": [500.0, ira_cash, 200.0], "cash_reserve": [500.0, 0.0, 0.0]})
    lots = pd.DataFrame([
        {"lot": "J1", "account": "joint", "security": "EQ1", "quantity": 700,
         "cost_basis": 20_000.0, "acquired": "2015-06-01"},
        {"lot": "I1", "account": "ira", "security": "EQ2", "quantity": 600,
         "cost_basis": 25_000.0, "acquired": "2018-06-01"},
        {"lot": "I2", "account": "ira", "security": "BND", "quantity": 500,
         "cost_basis": 11_000.0, "acquired": "2019-06-01"},
        {"lot": "R1", "account": "roth", "security": "BND", "quantity": 1000,
         "cost_basis": 21_000.0, "acquired": "2019-06-01"}])
    cov = pd.DataFrame([[0.03, 0.001], [0.001, 0.004]], index=["equity", "bonds"],
                       columns=["equity", "bonds"])
    return orb.Portfolio.from_frames(sec, acc, lots, as_of="2026-11-20", risk=cov)


POLICY = orb.Policy({"equity": 0.6, "bonds": 0.4}, band=orb.Band.absolute(0.03),
                    risk_aversion=5.0, costs=NO_IMPACT, tax=orb.Tax(model="exact"))


def test_rebalancing_inside_the_ira_avoids_a_taxable_gain() -> None:
    portfolio = household()
    weights = portfolio.security_values() / portfolio.nav_value
    assert weights[["EQ1", "EQ2"]].sum() > 0.63  # equity above its band
    result = orb.solve(portfolio, POLICY)
    assert result.lots_sold.index.tolist() in (["I1"], ["I1", "I2"], ["I2", "I1"])
    assert set(result.orders["account"]) <= {"ira", "roth"}
    assert result.orders["reason"].str.startswith("location:").all()
    assert result.tax.loc["realized_long", "value"] == 0.0
    assert result.costs.loc["tax", "value"] == 0.0
    w = result.weights
    assert w.loc["equity", "after"] <= w.loc["equity", "upper"] + 1e-9

    # without the IRA the same rebalance realizes a long-term gain in the taxable account
    locked = dataclasses.replace(POLICY, restrictions=orb.Restrictions(
        no_trade=["ira/EQ1", "ira/EQ2", "ira/BND", "roth/EQ1", "roth/EQ2", "roth/BND"]))
    taxed = orb.solve(portfolio, locked)
    assert "J1" in taxed.lots_sold.index
    assert taxed.tax.loc["realized_long", "value"] > 0
    assert taxed.costs.loc["tax", "value"] > 0
    assert not taxed.orders["reason"].str.startswith("location:").any()


def test_each_account_keeps_its_own_cash_and_reserve() -> None:
    result = orb.solve(household(ira_cash=3000.0), POLICY)
    cash = result.cash
    assert (cash["after"] >= cash["reserve"] - 1e-6).all(), cash
    expected = cash["before"] + cash["flow"] + cash["traded"] - cash["costs"]
    np.testing.assert_allclose(cash["after"], expected, atol=1e-6)


def test_tax_free_lots_with_tax_data_are_accepted_and_said() -> None:
    result = orb.solve(household(), POLICY)
    notes = " ".join(result.diagnostics.notes)
    assert "lots in tax-free accounts (ira, roth)" in notes and "tax ignored" in notes
    # their sales carry a gain in lots_sold but no tax: the realized nets count only taxable lots
    sold = result.lots_sold
    assert (sold["account"] != "joint").all()
    assert result.tax.loc["realized_short", "value"] == 0.0


@pytest.mark.parametrize("model", ["linear", "exact"])
def test_household_model_reports_exact_tax(model: str) -> None:
    portfolio, policy = orb.load(MODELS / "household.toml")
    policy = dataclasses.replace(policy, tax=dataclasses.replace(policy.tax, model=model,
                                                                 realized_short=-2500.0))
    result = orb.solve(portfolio, policy)
    tax = result.tax["value"]
    taxable = result.lots_sold["account"] == "brokerage"
    recognized = result.lots_sold.loc[taxable, "recognized_gain"]
    assert tax["realized_short"] + tax["realized_long"] == pytest.approx(recognized.sum())
    assert tax["net_short"] == pytest.approx(tax["realized_short"] - 2500.0)
    assert tax["tax_exact"] == pytest.approx(tax["tax_after"] - tax["tax_before"])
    reasons = result.orders["reason"].str.split(":").str[0]
    assert set(reasons) <= {"band", "flow", "cash", "harvest", "substitute", "location", "risk",
                            "rebalance"}
