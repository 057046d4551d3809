"""Every shipped model file loads, solves, trades, and passes the checks a user relies on.

The models are found by glob, so a new ``models/*.toml`` is tested without touching this file.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import optirebal

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MODELS = sorted(MODELS_DIR.glob("*.toml"))
RESTRICTED_MODES = ("buy_only", "sell_only", "cash_only")


def test_models_are_shipped() -> None:
    names = {path.stem for path in MODELS}
    assert {"pension_6040", "endowment", "household"} <= names


@pytest.fixture(scope="module", params=MODELS, ids=[path.stem for path in MODELS])
def solved(request: pytest.FixtureRequest) -> tuple[optirebal.Portfolio, optirebal.Policy,
                                                     optirebal.Result]:
    portfolio, policy = optirebal.load(request.param)
    return portfolio, policy, optirebal.solve(portfolio, policy)


def test_model_trades(solved: tuple) -> None:
    _, _, result = solved
    assert result.traded
    assert result.turnover > 0
    assert set(result.orders["side"]) <= {"buy", "sell"}
    assert (np.sign(result.orders["shares"]) == np.where(result.orders["side"] == "buy", 1, -1)
            ).all()
    assert result.orders["reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()
    assert result.diagnostics.status in ("optimal", "optimal_inaccurate")


def test_model_reduces_tracking_error(solved: tuple) -> None:
    _, _, result = solved
    assert result.tracking_error["after"] < result.tracking_error["before"]


def test_model_cash_reserves_hold(solved: tuple) -> None:
    portfolio, _, result = solved
    cash = result.cash
    assert list(cash.index) == list(portfolio.accounts.index)
    assert (cash["after"] >= cash["reserve"] - 1e-6 * result.nav).all(), cash
    # cash is conserved: before + flow + net proceeds - costs
    expected = cash["before"] + cash["flow"] + cash["traded"] - cash["costs"]
    np.testing.assert_allclose(cash["after"], expected, rtol=0, atol=1e-6 * result.nav)


def test_model_hard_bands_hold(solved: tuple) -> None:
    _, policy, result = solved
    w = result.weights
    # every breach is reported: "outside" is the distance to the band
    distance = np.maximum(np.maximum(w["after"] - w["upper"], w["lower"] - w["after"]), 0.0)
    np.testing.assert_allclose(w["outside"], distance, rtol=0, atol=1e-12)
    if policy.soft_bands or policy.mode in RESTRICTED_MODES:
        return  # soft bands may be breached, at their penalty
    assert (w["after"] >= w["lower"] - 1e-4).all(), w
    assert (w["after"] <= w["upper"] + 1e-4).all(), w
    assert (w["outside"] <= 1e-4).all(), w


def test_model_weights_frame(solved: tuple) -> None:
    _, policy, result = solved
    w = result.weights
    assert list(w.columns) == ["before", "after", "target", "lower", "upper", "outside"]
    for name, target in policy.targets.items():
        assert w.loc[name, "target"] == pytest.approx(target)
    assert w["target"].sum() == pytest.approx(1.0)
    if policy.cash_class in policy.targets:  # every dollar is in some class
        assert w["before"].sum() == pytest.approx(1.0, abs=1e-9)
        assert w["after"].sum() == pytest.approx(1.0, abs=1e-6)


def test_model_lots_sold_within_lots(solved: tuple) -> None:
    portfolio, _, result = solved
    sold = result.lots_sold
    lots = portfolio.lots
    assert set(sold.index) <= set(lots.index)
    quantity = lots["quantity"].reindex(sold.index)
    assert (sold["shares"] <= quantity * (1 + 1e-12)).all(), sold
    assert (sold["shares"] >= 0).all()
    assert (sold["account"] == lots["account"].reindex(sold.index)).all()
    assert (sold["security"] == lots["security"].reindex(sold.index)).all()
    assert set(sold["term"]) <= {"short", "long"}


def test_model_orders_match_lots_sold(solved: tuple) -> None:
    _, _, result = solved
    sells = result.orders[result.orders["side"] == "sell"]
    by_pair = result.lots_sold.groupby(["account", "security"])["shares"].sum()
    for row in sells.itertuples():
        assert by_pair[(row.account, row.security)] == pytest.approx(-row.shares, rel=1e-9)


def test_model_whole_share_orders(solved: tuple) -> None:
    portfolio, _, result = solved
    unit = portfolio.securities["lot_size"].reindex(result.orders["security"]).to_numpy()
    shares = result.orders["shares"].to_numpy()
    rounded = unit > 0
    steps = shares[rounded] / unit[rounded]
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)


def test_model_costs_frame(solved: tuple) -> None:
    _, _, result = solved
    costs = result.costs
    assert {"spread", "impact", "tax", "total"} <= set(costs.index)
    parts = costs["value"].drop("total").sum()
    assert costs.loc["total", "value"] == pytest.approx(parts)
    assert (costs["value"].drop(["tax", "total"]) >= 0).all()
    np.testing.assert_allclose(costs["bps"], costs["value"] / result.nav * 1e4)


def test_model_summary_prints(solved: tuple) -> None:
    _, _, result = solved
    text = result.summary()
    assert "Orders" in text and "Weights" in text
    assert "<h4>" in result._repr_html_()


def test_household_groups_and_lots() -> None:
    portfolio, policy = optirebal.load(MODELS_DIR / "household.toml")
    sec = portfolio.securities
    assert sec.loc["VOO", "group"] == sec.loc["IVV", "group"]
    assert (sec["lot_size"] == 1).all()
    lots = portfolio.lots
    taxable = lots[lots["account"].map(portfolio.accounts["type"]) == "taxable"]
    gain = portfolio.lot_values.reindex(taxable.index) - taxable["cost_basis"]
    assert (gain > 0).any() and (gain < 0).any()
    held = (pd.Timestamp(portfolio.as_of) - pd.to_datetime(taxable["acquired"])).dt.days
    assert (held < 365).any() and (held > 366).any()
    assert policy.tax.model == "linear"
    result = optirebal.solve(portfolio, policy)
    # the loss lots harvested are never replaced inside their own group (no same-solve wash sale)
    losses = result.lots_sold[(result.lots_sold["gain"] < 0)
                              & (result.lots_sold["account"] == "brokerage")]
    bought = result.orders.loc[result.orders["side"] == "buy", "security"]
    assert not set(sec.loc[losses["security"], "group"]) & set(sec.loc[bought, "group"])


# --- errors ------------------------------------------------------------------------------------


def _copy_models(tmp_path: Path) -> Path:
    """A copy of the models folder (TOML files and their CSV folders) under ``tmp_path``."""
    target = tmp_path / "models"
    shutil.copytree(MODELS_DIR, target)
    return target


@pytest.mark.parametrize("model", MODELS, ids=[path.stem for path in MODELS])
def test_misspelled_policy_key_is_named(tmp_path: Path, model: Path) -> None:
    copy = _copy_models(tmp_path) / model.name
    text = copy.read_text()
    assert re.search(r"^\[policy\]\s*$", text, flags=re.M), "model has no [policy] table"
    copy.write_text(re.sub(r"^\[policy\]\s*$", "[policy]\nrisk_aversoin = 2.0", text, count=1,
                           flags=re.M))
    with pytest.raises(optirebal.PolicyFileError, match="risk_aversoin") as info:
        optirebal.load(copy)
    assert info.value.key == "policy.risk_aversoin"
    assert "risk_aversion" in str(info.value)  # the nearest known key is suggested


def test_misspelled_nested_key_is_named(tmp_path: Path) -> None:
    copy = _copy_models(tmp_path) / "household.toml"
    text = copy.read_text()
    assert "short_term_rate" in text
    copy.write_text(text.replace("short_term_rate", "short_term_rat", 1))
    key = re.escape("policy.tax.short_term_rat")
    with pytest.raises(optirebal.PolicyFileError, match=key) as info:
        optirebal.load(copy)
    assert "short_term_rate" in str(info.value)  # the nearest known key is suggested
    assert str(copy) in str(info.value)


def test_misspelled_nested_key_sets_key_attribute(tmp_path: Path) -> None:
    copy = _copy_models(tmp_path) / "household.toml"
    copy.write_text(copy.read_text().replace("short_term_rate", "short_term_rat", 1))
    with pytest.raises(optirebal.PolicyFileError) as info:
        optirebal.load(copy)
    assert info.value.key == "policy.tax.short_term_rat"
    assert str(info.value).count(str(copy)) == 1


def test_misspelled_data_key_is_named(tmp_path: Path) -> None:
    copy = _copy_models(tmp_path) / "pension_6040.toml"
    copy.write_text(copy.read_text().replace("\nlots =", "\nlot =", 1))
    with pytest.raises(optirebal.PolicyFileError, match="lot") as info:
        optirebal.load(copy)
    assert info.value.key == "data.lot"


@pytest.mark.parametrize("model", MODELS, ids=[path.stem for path in MODELS])
def test_negative_quantity_names_the_field(tmp_path: Path, model: Path) -> None:
    models = _copy_models(tmp_path)
    copy = models / model.name
    portfolio, _ = optirebal.load(copy)
    lots_path = _data_path(copy, "lots")
    lots = pd.read_csv(lots_path, dtype={"lot": str})
    bad_lot = lots["lot"].iloc[len(lots) // 2]
    lots.loc[lots.index[len(lots) // 2], "quantity"] = -10
    lots.to_csv(lots_path, index=False)
    with pytest.raises(optirebal.InputError, match="quantity") as info:
        optirebal.load(copy)
    assert info.value.field == "quantity"
    assert info.value.row == bad_lot
    assert len(portfolio.lots) == len(lots)


def _data_path(model: Path, key: str) -> Path:
    """The CSV path named by ``[data] key`` in a model file (relative to the file)."""
    with open(model, "rb") as handle:
        data = tomllib.load(handle)["data"]
    return model.parent / data[key]
