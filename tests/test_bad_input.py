"""Bad input: every error is an optirebal error that names the field and row (or file and key).

Also: an infeasible policy names the constraints in conflict, and ``solve`` never changes its
inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, multi_asset, stock_and_cash

import optirebal as orb

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
NO_IMPACT = orb.Costs(impact="none")
TARGETS = {"equity": 0.6, "cash": 0.4}


def frames() -> dict[str, pd.DataFrame]:
    """Two securities (equity, bonds), one taxable account, two lots, a class covariance."""
    return {
        "securities": pd.DataFrame({"security": ["AAA", "BBB"], "price": [10.0, 20.0],
                                    "asset_class": ["equity", "bonds"],
                                    "half_spread_bps": [1.0, 2.0], "lot_size": [1, 1]}),
        "accounts": pd.DataFrame({"account": ["acct"], "type": ["taxable"], "cash": [100.0],
                                  "flow": [0.0]}),
        "lots": pd.DataFrame({"lot": ["L1", "L2"], "account": ["acct", "acct"],
                              "security": ["AAA", "BBB"], "quantity": [10.0, 5.0],
                              "cost_basis": [80.0, 120.0],
                              "acquired": ["2020-01-02", "2021-06-30"]}),
        "risk": pd.DataFrame([[0.04, 0.002], [0.002, 0.01]], index=["equity", "bonds"],
                             columns=["equity", "bonds"]),
    }


def build(f: dict[str, pd.DataFrame]) -> orb.Portfolio:
    return orb.Portfolio.from_frames(f["securities"], f["accounts"], f["lots"], as_of=AS_OF,
                                     risk=f["risk"])


def test_the_good_frames_build() -> None:
    # the baseline every bad case below changes in exactly one cell
    portfolio = build(frames())
    assert portfolio.nav_value == pytest.approx(100.0 + 100.0 + 100.0)


# --- securities -------------------------------------------------------------------------------

@pytest.mark.parametrize("price", [np.nan, np.inf, -np.inf, 0.0, -1.0],
                         ids=["nan", "inf", "-inf", "zero", "negative"])
def test_bad_price_names_field_and_row(price: float) -> None:
    f = frames()
    f["securities"].loc[1, "price"] = price
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert info.value.field == "price"
    assert info.value.row == "BBB"
    assert "'price'" in str(info.value) and "'BBB'" in str(info.value)


def test_non_numeric_price_is_an_input_error() -> None:
    f = frames()
    f["securities"]["price"] = pd.Series(["10.0", "abc"], dtype=object)
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert info.value.field == "price"


@pytest.mark.parametrize("column", ["half_spread_bps", "lot_size"])
def test_text_in_a_cost_column_is_not_silently_replaced_by_the_default(column: str) -> None:
    f = frames()
    f["securities"][column] = pd.Series([1.0, "n/a"], dtype=object)
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == (column, "BBB")


@pytest.mark.parametrize(("column", "value"), [
    ("half_spread_bps", -1.0), ("daily_volatility", -0.01), ("lot_size", -1.0),
    ("daily_traded_value", 0.0), ("commission_bps", np.inf),
])
def test_bad_cost_column_names_field_and_row(column: str, value: float) -> None:
    f = frames()
    f["securities"][column] = [1.0, 1.0]
    f["securities"].loc[1, column] = value
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == (column, "BBB")


def test_duplicate_security_names_the_id() -> None:
    f = frames()
    f["securities"].loc[1, "security"] = "AAA"
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("security", "AAA")


def test_missing_asset_class_names_the_row() -> None:
    f = frames()
    f["securities"].loc[0, "asset_class"] = None
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("asset_class", "AAA")


def test_with_prices_checks_the_new_prices() -> None:
    portfolio = build(frames())
    with pytest.raises(orb.InputError) as info:
        portfolio.with_prices({"AAA": np.nan})
    assert (info.value.field, info.value.row) == ("price", "AAA")
    with pytest.raises(orb.InputError) as info:
        portfolio.with_prices({"ZZZ": 1.0})
    assert (info.value.field, info.value.row) == ("price", "ZZZ")


# --- accounts ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("column", "value"), [
    ("cash", -5.0), ("cash", np.nan), ("flow", np.inf), ("flow", np.nan),
    ("cash_reserve", -1.0),
])
def test_bad_account_number_names_field_and_row(column: str, value: float) -> None:
    f = frames()
    f["accounts"][column] = [value]
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == (column, "acct")


def test_unknown_account_type_names_the_account() -> None:
    f = frames()
    f["accounts"]["type"] = ["taxible"]
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("type", "acct")
    assert "taxible" in str(info.value)


def test_withdrawal_larger_than_nav_names_the_flow() -> None:
    portfolio = build(frames()).with_accounts(flow={"acct": -1e6})
    with pytest.raises(orb.InputError) as info:
        orb.solve(portfolio, orb.Policy({"equity": 0.5, "bonds": 0.5}))
    assert info.value.field == "flow"


def test_with_accounts_rejects_an_unknown_account() -> None:
    portfolio = build(frames())
    with pytest.raises(orb.InputError) as info:
        portfolio.with_accounts(flow={"nope": 1.0})
    assert (info.value.field, info.value.row) == ("flow", "nope")


# --- lots -------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity", [-10.0, 0.0, np.nan, np.inf],
                         ids=["negative", "zero", "nan", "inf"])
def test_bad_quantity_names_the_lot(quantity: float) -> None:
    f = frames()
    f["lots"].loc[1, "quantity"] = quantity
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("quantity", "L2")


def test_negative_cost_basis_names_the_lot() -> None:
    f = frames()
    f["lots"].loc[0, "cost_basis"] = -1.0
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("cost_basis", "L1")


@pytest.mark.parametrize(("column", "value"), [("security", "ZZZ"), ("account", "nope")])
def test_lot_naming_unknown_security_or_account(column: str, value: str) -> None:
    f = frames()
    f["lots"].loc[1, column] = value
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == (column, "L2")
    assert value in str(info.value)


def test_duplicate_lot_id() -> None:
    f = frames()
    f["lots"].loc[1, "lot"] = "L1"
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("lot", "L1")
    assert "duplicate" in str(info.value)


def test_acquired_after_as_of() -> None:
    f = frames()
    f["lots"].loc[1, "acquired"] = "2026-11-21"  # one day after AS_OF
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("acquired", "L2")
    assert str(AS_OF) in str(info.value)


def test_acquired_on_as_of_is_fine() -> None:
    f = frames()
    f["lots"].loc[1, "acquired"] = str(AS_OF)
    assert len(build(f).lots) == 2


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_acquired_not_a_date() -> None:
    f = frames()
    f["lots"].loc[0, "acquired"] = "31/02/2020"
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("acquired", "L1")


def test_missing_lot_column() -> None:
    f = frames()
    f["lots"] = f["lots"].drop(columns="cost_basis")
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert info.value.field == "cost_basis"


# --- risk -------------------------------------------------------------------------------------

def test_non_psd_covariance() -> None:
    f = frames()
    f["risk"].iloc[0, 1] = f["risk"].iloc[1, 0] = 0.1  # correlation 5
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert info.value.field == "covariance"
    assert "positive semidefinite" in str(info.value)


def test_asymmetric_covariance_names_the_row() -> None:
    f = frames()
    f["risk"].iloc[0, 1] = 0.003
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("covariance", "equity")
    assert "symmetric" in str(info.value)


def test_nan_in_covariance_names_the_row() -> None:
    f = frames()
    f["risk"].iloc[1, 1] = np.nan
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert (info.value.field, info.value.row) == ("covariance", "bonds")


def test_covariance_missing_a_class() -> None:
    f = frames()
    f["risk"] = f["risk"].rename(index={"bonds": "bond"}, columns={"bonds": "bond"})
    with pytest.raises(orb.InputError) as info:
        build(f)
    assert info.value.field == "risk"
    assert "'bonds'" in str(info.value)


def test_negative_specific_variance_names_the_class() -> None:
    loadings = pd.DataFrame([[1.0], [0.5]], index=["equity", "bonds"], columns=["mkt"])
    omega = pd.DataFrame([[0.03]], index=["mkt"], columns=["mkt"])
    with pytest.raises(orb.InputError) as info:
        orb.RiskModel.from_factors(loadings, omega, pd.Series({"equity": 0.01, "bonds": -0.01}))
    assert (info.value.field, info.value.row) == ("specific_variance", "bonds")


# --- policy -----------------------------------------------------------------------------------

def test_targets_not_summing_to_one() -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": 0.5, "bonds": 0.4})
    assert info.value.field == "targets"
    assert "sum to 1" in str(info.value) and "0.9" in str(info.value)


@pytest.mark.parametrize("weight", [-0.2, 1.2, np.nan])
def test_target_out_of_range_names_the_class(weight: float) -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": weight, "bonds": 1 - weight})
    assert (info.value.field, info.value.row) == ("targets", "equity")


def test_class_band_excluding_its_target() -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": 0.5, "bonds": 0.5},
                   class_bands={"equity": orb.Band.range(0.55, 0.70)})
    assert (info.value.field, info.value.row) == ("class_bands", "equity")
    assert "excludes its target" in str(info.value)


def test_default_band_excluding_a_target() -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": 0.5, "bonds": 0.5}, band=orb.Band.range(0.0, 0.3))
    assert info.value.field == "band"
    assert info.value.row == "equity"


@pytest.mark.parametrize("band", [
    lambda: orb.Band.absolute(-0.05), lambda: orb.Band.absolute(np.nan),
    lambda: orb.Band.range(0.4, np.inf), lambda: orb.Band(0.05, 0.05, "relatve"),
], ids=["negative", "nan", "inf", "kind"])
def test_bad_band(band) -> None:
    with pytest.raises(orb.InputError):
        band()


def test_class_band_for_a_class_without_target() -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": 0.5, "bonds": 0.5}, class_bands={"equty": orb.Band.absolute(0.1)})
    assert (info.value.field, info.value.row) == ("class_bands", "equty")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"mode": "ful"}, "mode"), ({"risk_aversion": -1.0}, "risk_aversion"),
    ({"risk_aversion": np.nan}, "risk_aversion"), ({"turnover_cap": -0.1}, "turnover_cap"),
    ({"turnover_cap": np.nan}, "turnover_cap"), ({"horizon_years": -1.0}, "horizon_years"),
])
def test_bad_policy_field(kwargs: dict, field: str) -> None:
    with pytest.raises(orb.InputError) as info:
        orb.Policy({"equity": 0.5, "bonds": 0.5}, **kwargs)
    assert info.value.field == field


def test_unknown_mode_suggests_the_nearest() -> None:
    with pytest.raises(orb.InputError, match="did you mean 'full'"):
        orb.Policy({"equity": 1.0}, mode="ful")


@pytest.mark.parametrize("part", [
    lambda: orb.Costs(impact="linear"), lambda: orb.Tax(long_term_rate=1.5),
    lambda: orb.Tax(model="progressive"), lambda: orb.SolverOptions(chain=("GUROBI",)),
    lambda: orb.SolverOptions(chain=()), lambda: orb.DecodeOptions(min_trade_value=-1.0),
], ids=["impact", "rate", "tax model", "solver", "empty chain", "min trade"])
def test_bad_policy_part(part) -> None:
    with pytest.raises(orb.InputError):
        part()


BASE = {"targets": {"equity": 0.5, "bonds": 0.5}}


@pytest.mark.parametrize(("extra", "key", "hint"), [
    ({"risk_aversoin": 1.0}, "policy.risk_aversoin", "risk_aversion"),
    ({"targts": {"equity": 1.0}}, "policy.targts", "targets"),
    ({"costs": {"impcat": "none"}}, "policy.costs.impcat", "impact"),
    ({"tax": {"long_rate": 0.2}}, "policy.tax.long_rate", "long_term_rate"),
    ({"restrictions": {"no_buys": ["AAA"]}}, "policy.restrictions.no_buys", "no_buy"),
    ({"decode": {"min_trade": 10.0}}, "policy.decode.min_trade", "min_trade_value"),
    ({"solver": {"chains": ["ECOS"]}}, "policy.solver.chains", "chain"),
    ({"band": {"widht": 0.05}}, "policy.band.widht", "width"),
    ({"class_bands": {"equity": {"widht": 0.05}}}, "policy.class_bands.equity.widht", "width"),
    ({"trigger": {"with": 0.05}}, "policy.trigger.with", "width"),
])
def test_unknown_policy_key_from_dict(extra: dict, key: str, hint: str) -> None:
    with pytest.raises(orb.PolicyFileError) as info:
        orb.Policy.from_dict({**BASE, **extra}, file="policy.toml")
    assert info.value.key == key
    assert info.value.file == "policy.toml"
    assert f"did you mean {hint!r}" in str(info.value)
    assert "policy.toml" in str(info.value)


@pytest.mark.parametrize(("extra", "key"), [
    ({"solver": {"chain": ["GUROBI"]}}, "policy.solver.chain"),
    ({"mode": "ful"}, "policy.mode"),
    ({"targets": {"equity": 0.5, "bonds": 0.4}}, "policy.targets"),
    ({"band": 0.05}, "policy.band"),
    ({"band": {"below": 0.05}}, "policy.band"),
])
def test_bad_policy_value_from_dict_names_the_key(extra: dict, key: str) -> None:
    with pytest.raises(orb.PolicyFileError) as info:
        orb.Policy.from_dict({**BASE, **extra}, file="policy.toml")
    assert info.value.key == key
    assert info.value.file == "policy.toml"


def test_policy_from_toml_file_with_a_misspelled_nested_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[policy]\nmode = "to_band"\n[policy.targets]\nequity = 0.5\nbonds = 0.5\n'
                    '[policy.costs]\nimpact = "none"\nimpact_coeficient = 0.5\n')
    with pytest.raises(orb.PolicyFileError) as info:
        orb.Policy.from_toml(path)
    assert info.value.key == "policy.costs.impact_coeficient"
    assert info.value.file == str(path)
    assert "impact_coefficient" in str(info.value)


def test_policy_from_toml_file_with_a_misspelled_top_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[policy]\nmod = "to_band"\n[policy.targets]\nequity = 0.5\nbonds = 0.5\n')
    with pytest.raises(orb.PolicyFileError) as info:
        orb.Policy.from_toml(path)
    assert info.value.key == "policy.mod"
    assert "did you mean 'mode'" in str(info.value)


def test_policy_toml_round_trip_is_not_an_error(tmp_path: Path) -> None:
    policy = orb.Policy({"equity": 0.5, "bonds": 0.5}, class_bands={
        "equity": orb.Band.range(0.4, 0.6)}, restrictions=orb.Restrictions(no_buy=("AAA",)))
    path = tmp_path / "policy.toml"
    path.write_text(policy.to_toml())
    assert orb.Policy.from_toml(path) == policy


def test_policy_file_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[policy\nmode = 1\n")
    with pytest.raises(orb.PolicyFileError) as info:
        orb.Policy.from_toml(path)
    assert info.value.file == str(path)


def _model_copy(tmp_path: Path) -> Path:
    shutil.copytree(MODELS_DIR / "pension_6040", tmp_path / "pension_6040")
    target = tmp_path / "model.toml"
    shutil.copy(MODELS_DIR / "pension_6040.toml", target)
    return target


@pytest.mark.parametrize(("old", "new", "key"), [
    ("[policy.costs]", "[policy.cost]", "policy.cost"),
    ("impact_coefficient = 0.5", "impact_coef = 0.5", "policy.costs.impact_coef"),
    ("horizon_years = 0.25", "horizon = 0.25", "policy.horizon"),
    ("[data]", "[dta]", "dta"),
    ("covariance = ", "covariances = ", "data.covariances"),
    ("base_currency", "currency", "model.currency"),
    ("us_equity = { width = 0.03 }", "us_equity = { widht = 0.03 }",
     "policy.class_bands.us_equity.widht"),
])
def test_model_file_with_a_misspelled_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = _model_copy(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(orb.PolicyFileError) as info:
        orb.load(path)
    assert info.value.key == key
    assert info.value.file == str(path)


def test_model_file_with_bad_csv_data_names_field_and_row(tmp_path: Path) -> None:
    path = _model_copy(tmp_path)
    securities = tmp_path / "pension_6040" / "securities.csv"
    frame = pd.read_csv(securities)
    first = str(frame.iloc[0, 0])
    frame.loc[0, "price"] = -1.0
    frame.to_csv(securities, index=False)
    with pytest.raises(orb.InputError) as info:
        orb.load(path)
    assert (info.value.field, info.value.row) == ("price", first)
    assert str(path) in str(info.value)


# --- policy and portfolio together ------------------------------------------------------------

@pytest.mark.parametrize(("restrictions", "field", "row"), [
    (orb.Restrictions(no_buy=("ZZZ",)), "restrictions.no_buy", "ZZZ"),
    (orb.Restrictions(no_sell=("nope/AAA",)), "restrictions.no_sell", "nope/AAA"),
    (orb.Restrictions(no_trade=("acct/ZZZ",)), "restrictions.no_trade", "acct/ZZZ"),
    (orb.Restrictions(locked_lots=("L9",)), "restrictions.locked_lots", "L9"),
])
def test_restriction_naming_unknown_things(restrictions: orb.Restrictions, field: str,
                                           row: str) -> None:
    policy = orb.Policy({"equity": 0.5, "bonds": 0.5}, restrictions=restrictions)
    with pytest.raises(orb.InputError) as info:
        orb.solve(build(frames()), policy)
    assert (info.value.field, info.value.row) == (field, row)


def test_target_for_a_class_no_security_loads_on() -> None:
    policy = orb.Policy({"equity": 0.4, "bonds": 0.4, "gold": 0.2})
    with pytest.raises(orb.InputError) as info:
        orb.solve(build(frames()), policy)
    assert (info.value.field, info.value.row) == ("targets", "gold")


def test_class_with_securities_but_no_target() -> None:
    with pytest.raises(orb.InputError) as info:
        orb.solve(build(frames()), orb.Policy({"equity": 1.0}))
    assert (info.value.field, info.value.row) == ("targets", "bonds")


# --- infeasible policies ----------------------------------------------------------------------

# stock_and_cash(price=1.75): equity 105 of NAV 145 = 72.4%, far above the 65% edge
@pytest.mark.parametrize(("restrictions", "named"), [
    (orb.Restrictions(no_trade=("STK",)), "no_trade 'STK'"),
    (orb.Restrictions(no_sell=("fund/STK",)), "no_sell 'fund/STK'"),
    (orb.Restrictions(locked_lots=("L1",)), "locked lot 'L1'"),
])
def test_hard_band_unreachable_because_of_a_restriction(restrictions: orb.Restrictions,
                                                        named: str) -> None:
    policy = orb.Policy(TARGETS, costs=NO_IMPACT, restrictions=restrictions)
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(stock_and_cash(price=1.75), policy)
    assert set(info.value.conflicts) == {"band upper 'equity' (0.65)", named}
    assert named in str(info.value)


def test_hard_band_unreachable_because_of_no_buy() -> None:
    # price 0.6: equity 36 of 76 = 47.4%, below the 55% edge, and buying is forbidden
    policy = orb.Policy(TARGETS, costs=NO_IMPACT, restrictions=orb.Restrictions(no_buy=("STK",)))
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(stock_and_cash(price=0.6), policy)
    assert set(info.value.conflicts) == {"band lower 'equity' (0.55)", "no_buy 'STK'"}


def test_turnover_cap_too_small() -> None:
    # reaching 65% needs a sale of 105 - 0.65 * 145 = 10.75 = 7.4% of NAV; the cap allows 1%
    policy = orb.Policy(TARGETS, costs=NO_IMPACT, turnover_cap=0.01)
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(stock_and_cash(price=1.75), policy)
    assert set(info.value.conflicts) == {"band upper 'equity' (0.65)", "turnover cap (0.01)"}


@pytest.mark.parametrize("model", ["linear", "exact"])
def test_gain_budget_against_a_band(model: str) -> None:
    # reaching 65% needs a sale of 10.75 of stock bought at 1.00 and worth 1.75: a gain of 4.61,
    # above a hard budget of 1; the budget's slack is the smaller, and the band is named too
    policy = orb.Policy(TARGETS, costs=NO_IMPACT, tax=orb.Tax(model=model, gain_budget=1.0))
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(stock_and_cash(price=1.75, account_type="taxable"), policy)
    assert set(info.value.conflicts) == {"band upper 'equity' (0.65)", "gain budget (1.00)"}


def test_soft_bands_are_never_named_in_a_conflict() -> None:
    # cash_only (soft bands): a withdrawal of 90 with 40 of cash and the stock unsellable
    portfolio = stock_and_cash().with_accounts(flow={"fund": -90.0})
    policy = orb.Policy(TARGETS, mode="cash_only", costs=NO_IMPACT,
                        restrictions=orb.Restrictions(no_sell=("fund/STK",)))
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(portfolio, policy)
    assert set(info.value.conflicts) == {"no_sell 'fund/STK'", "cash reserve of account 'fund'"}


def test_cash_reserve_against_a_band() -> None:
    # a reserve of 50 of NAV 100 forces equity to at most 50%, below the 55% edge
    portfolio = stock_and_cash().with_accounts(cash_reserve={"fund": 50.0})
    with pytest.raises(orb.InfeasibleError) as info:
        orb.solve(portfolio, orb.Policy(TARGETS, costs=NO_IMPACT))
    assert set(info.value.conflicts) == {"band lower 'equity' (0.55)",
                                         "cash reserve of account 'fund'"}


def test_soft_bands_make_the_restricted_policy_feasible() -> None:
    policy = orb.Policy(TARGETS, costs=NO_IMPACT, soft_bands=True,
                        restrictions=orb.Restrictions(no_trade=("STK",)))
    result = orb.solve(stock_and_cash(price=1.75), policy)
    assert not result.traded
    assert result.weights.loc["equity", "outside"] == pytest.approx(105 / 145 - 0.65)


# --- inputs are never changed -----------------------------------------------------------------

def _snapshot_policy(policy: orb.Policy) -> dict:
    return copy.deepcopy(policy.to_dict())


@pytest.mark.parametrize("case", ["frames", "multi_asset"])
def test_solve_never_mutates_its_inputs(case: str) -> None:
    if case == "frames":
        f = frames()
        f["accounts"]["flow"] = [50.0]
        f["accounts"]["cash_reserve"] = [5.0]
        given = {k: v.copy(deep=True) for k, v in f.items()}
        portfolio = build(f)
        policy = orb.Policy({"equity": 0.7, "bonds": 0.3}, band=orb.Band.absolute(0.02),
                            restrictions=orb.Restrictions(locked_lots=("L2",)),
                            decode=orb.DecodeOptions(min_trade_value=5.0))
    else:
        portfolio = multi_asset(seed=7, flows=(2e4, -1e4))
        f = {}
        given = {}
        policy = orb.Policy({"equity": 0.5, "bonds": 0.35, "real_estate": 0.15},
                            band=orb.Band.absolute(0.02), risk_aversion=3.0)
    held = {name: getattr(portfolio, name).copy(deep=True)
            for name in ("securities", "exposures", "accounts", "lots")}
    risk = (portfolio.risk.factor.copy(deep=True), portfolio.risk.specific_variance.copy())
    as_of = portfolio.as_of
    policy_before = _snapshot_policy(policy)
    policy_copy = dataclasses.replace(policy)

    result = orb.solve(portfolio, policy)
    assert result.traded  # the solve did real work
    orb.apply_trades(portfolio, result)

    for name, frame in given.items():
        pd.testing.assert_frame_equal(f[name], frame, check_exact=True)
    for name, frame in held.items():
        pd.testing.assert_frame_equal(getattr(portfolio, name), frame, check_exact=True)
    pd.testing.assert_frame_equal(portfolio.risk.factor, risk[0], check_exact=True)
    pd.testing.assert_series_equal(portfolio.risk.specific_variance, risk[1], check_exact=True)
    assert portfolio.as_of == as_of
    assert _snapshot_policy(policy) == policy_before
    assert policy == policy_copy and hash(policy) == hash(policy_copy)


def test_policy_survives_pickle_for_process_pools() -> None:
    import pickle

    policy = orb.Policy({"equity": 0.5, "bonds": 0.5},
                        class_bands={"equity": orb.Band.range(0.4, 0.6)},
                        restrictions=orb.Restrictions(no_buy=("AAA",)))
    again = pickle.loads(pickle.dumps(policy))
    assert again == policy and hash(again) == hash(policy)
    with pytest.raises(TypeError):
        again.targets["equity"] = 1.0  # still frozen
