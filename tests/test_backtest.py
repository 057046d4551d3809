"""Backtests: band mechanics over several steps, wash sales across steps, carryovers across a year
end, buy-and-hold, determinism, and bad market data (known answers computed by hand)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import optirebal as orb
from optirebal.errors import InputError

COV = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=["equity", "bonds"],
                   columns=["equity", "bonds"])


def household(kind: str = "tax_exempt", *, equity_basis: float = 600.0,
              acquired: str = "2020-01-02", as_of: str = "2024-01-31",
              spread_bps: float = 0.0) -> orb.Portfolio:
    """600 shares of EQ and 400 of BD at 1.0, no cash: 60/40 at the start."""
    securities = pd.DataFrame({"security": ["EQ", "BD"], "price": [1.0, 1.0],
                               "asset_class": ["equity", "bonds"],
                               "half_spread_bps": [spread_bps, spread_bps]})
    accounts = pd.DataFrame({"account": ["acct"], "type": [kind], "cash": [0.0]})
    lots = pd.DataFrame({"lot": ["eq", "bd"], "account": ["acct", "acct"],
                         "security": ["EQ", "BD"], "quantity": [600.0, 400.0],
                         "cost_basis": [equity_basis, 400.0], "acquired": [acquired, acquired]})
    return orb.Portfolio.from_frames(securities, accounts, lots, as_of=as_of, risk=COV)


def prices(equity: list[float], start: str = "2024-01-31", freq: str = "ME") -> pd.DataFrame:
    index = pd.date_range(start, periods=len(equity), freq=freq)
    return pd.DataFrame({"EQ": equity, "BD": 1.0}, index=index)


def policy(**kwargs: object) -> orb.Policy:
    base: dict[str, object] = {"targets": {"equity": 0.6, "bonds": 0.4}, "mode": "to_target",
                               "schedule": orb.Schedule(looks="monthly")}
    base.update(kwargs)
    return orb.Policy(**base)  # type: ignore[arg-type]


def test_calendar_to_target_trades_back_to_the_mix_every_look() -> None:
    market = prices([1.0, 1.5, 1.2, 0.9])
    result = orb.backtest(household(), policy(), market)
    # the first date is already 60/40; every later look trades back to it exactly
    np.testing.assert_allclose(result.weights["equity"].iloc[1:], 0.6, atol=1e-9)
    # after month 2: 600 EQ at 1.5 + 400 BD = 1300, 60% = 780 EQ -> sell 120 of value
    trades = result.trades.set_index(["date", "security"])["value"]
    assert trades[(market.index[1], "EQ")] == pytest.approx(-120.0, abs=1e-4)
    assert trades[(market.index[1], "BD")] == pytest.approx(120.0, abs=1e-4)
    assert result.summary()["trades"] == 3
    assert result.compiles == 1


def test_threshold_trigger_trades_only_outside_the_trigger_band() -> None:
    market = prices([1.0, 1.1, 1.5, 1.45])
    result = orb.backtest(household(), policy(trigger=orb.Band.absolute(0.05)), market)
    # 1.1: 660 / 1060 = 62.3% inside; 1.5: 900 / 1300 = 69.2% outside -> back to 60%;
    # 1.45: 780 / 1.5 * 1.45 = 754 of 1274 = 59.2% inside
    assert result.trades["date"].unique().tolist() == [market.index[2]]
    kinds = result.events.groupby("kind").size()
    assert kinds["look"] == 4 and kinds["trigger"] == 1
    assert result.weights["equity"].iloc[2] == pytest.approx(0.6, abs=1e-7)


def test_fraction_closes_half_the_gap_and_inner_band_stops_at_its_edge() -> None:
    market = prices([1.0, 1.5])
    half = orb.backtest(household(), policy(fraction=0.5), market)
    weight = 900 / 1300
    assert half.weights["equity"].iloc[1] == pytest.approx(weight + 0.5 * (0.6 - weight),
                                                           abs=1e-7)
    # trigger 5 points, destination 3 points: a 1 bp spread makes the cheapest move the edge
    inner = orb.backtest(household(spread_bps=1.0),
                         policy(mode="to_band", trigger=orb.Band.absolute(0.05),
                                band=orb.Band.absolute(0.03)), market)
    # (the band holds in the program's weights, of the NAV before the 1 bp paid on 2 x 91)
    assert inner.weights["equity"].iloc[1] == pytest.approx(0.63, abs=1e-5)
    assert inner.trades["value"].abs().max() == pytest.approx(900 - 0.63 * 1300, rel=1e-3)


def test_tracking_error_trigger() -> None:
    market = prices([1.0, 1.1, 1.5])
    # deviation d of equity (bonds -d): TE = sqrt(0.04 d^2 + 0.01 d^2) = 0.2236 |d|
    level = 0.2236 * 0.05
    result = orb.backtest(household(), policy(tracking_error_trigger=level), market)
    assert result.trades["date"].unique().tolist() == [market.index[2]]


def test_never_is_buy_and_hold_exactly() -> None:
    market = prices([1.0, 1.3, 0.7, 1.1, 2.0])
    result = orb.backtest(household(), policy(schedule=orb.Schedule(looks="never")), market)
    expected = 600 * market["EQ"] + 400 * market["BD"]
    np.testing.assert_array_equal(result.nav["nav"].to_numpy(), expected.to_numpy())
    assert len(result.trades) == 0 and result.solves == 0


def test_same_backtest_twice_is_identical() -> None:
    rng = np.random.default_rng(3)
    market = prices(list(np.exp(np.cumsum(rng.normal(0, 0.05, 24)))))
    runs = [orb.backtest(household(spread_bps=2.0), policy(trigger=orb.Band.absolute(0.03),
                                                           target_tolerance=0.001),
                         market) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0].nav, runs[1].nav)
    pd.testing.assert_frame_equal(runs[0].trades, runs[1].trades)
    pd.testing.assert_series_equal(runs[0].summary(), runs[1].summary())


def test_wash_sale_across_two_steps_adjusts_basis_and_holding_period() -> None:
    portfolio = household("taxable", equity_basis=1200.0, acquired="2023-11-01",
                          as_of="2024-01-02")
    days = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-13"])
    # EQ rallies from 1.5 to 1.8 (still below its 2.0 basis): overweight, sold at a loss
    market = pd.DataFrame({"EQ": [1.5, 1.8, 1.8], "BD": 1.0}, index=days)
    income = pd.DataFrame({"EQ": [0.0, 0.0, 0.09], "BD": 0.0}, index=days)
    acquired = {}
    for convention in ("tacking", "replacement_date"):
        pol = policy(schedule=orb.Schedule(dates=("2024-01-03",), income="reinvest"),
                     tax=orb.Tax(model="exact", holding_period=convention))
        result = orb.backtest(portfolio, pol, orb.Market.from_prices(market, income=income))
        # 2024-01-03: 600 x 1.8 + 400 = 1480, 60% = 888 -> sell 192 / 1.8 = 106.667 shares,
        # loss 0.2 per share; 2024-01-13: 493.333 shares x 0.09 = 44.4 reinvested at 1.8 =
        # 24.667 shares, which wash 24.667 x 0.2 = 4.9333 of the loss
        sold = 192 / 1.8
        replaced = (600 - sold) * 0.09 / 1.8
        taxes = result.taxes.loc[2024]
        assert taxes["disallowed_loss"] == pytest.approx(replaced * 0.2, rel=1e-9)
        assert taxes["realized_short"] == pytest.approx(-(sold - replaced) * 0.2, rel=1e-9)
        assert (result.events["kind"] == "income").sum() == 1
        # the replacement lot's basis is 1.8 + 0.2 per share
        lot = result.lots[result.lots.index.str.startswith("acct/EQ/2024-01-13")].iloc[0]
        assert lot["cost_basis"] / lot["quantity"] == pytest.approx(2.0, rel=1e-12)
        assert lot["quantity"] == pytest.approx(replaced, rel=1e-12)
        acquired[convention] = lot["acquired"]
    # the sold shares were held 63 days (2023-11-01 to 2024-01-03): tacked on, IRC 1223(3)
    assert acquired["tacking"] == dt.date(2024, 1, 13) - dt.timedelta(days=63)
    assert acquired["replacement_date"] == dt.date(2024, 1, 13)


def test_carryover_keeps_its_character_across_a_year_end() -> None:
    # EQ bought at 30 (basis 18,000 for 600 shares) in 2024, sold in December at 1.0:
    # a short-term loss of 17,400 -> 3,000 offsets ordinary income, 14,400 carries as short
    portfolio = household("taxable", equity_basis=18_000.0, acquired="2024-06-03",
                          as_of="2024-12-02")
    days = pd.to_datetime(["2024-12-02", "2024-12-16", "2025-01-15"])
    market = pd.DataFrame({"EQ": [1.0, 1.0, 1.0], "BD": 1.0}, index=days)
    pol = orb.Policy(targets={"equity": 0.0, "bonds": 1.0}, mode="to_target",
                     schedule=orb.Schedule(dates=("2024-12-16",)),
                     tax=orb.Tax(model="exact", short_term_rate=0.37, long_term_rate=0.2,
                                 ordinary_rate=0.37))
    result = orb.backtest(portfolio, pol, market)
    taxes = result.taxes
    assert taxes.loc[2024, "realized_short"] == pytest.approx(-17_400.0)
    assert taxes.loc[2024, "tax"] == pytest.approx(-0.37 * 3000.0)
    assert taxes.loc[2024, "carryover_short"] == pytest.approx(14_400.0)
    assert taxes.loc[2024, "carryover_long"] == 0.0
    assert taxes.loc[2025, "net_short"] == pytest.approx(-14_400.0)
    assert taxes.loc[2025, "tax"] == pytest.approx(-0.37 * 3000.0)
    assert taxes.loc[2025, "carryover_short"] == pytest.approx(11_400.0)
    year_end = result.events[result.events["kind"] == "year_end"]
    assert year_end["date"].tolist() == [days[2]]


def test_backtest_reuses_one_compile() -> None:
    rng = np.random.default_rng(5)
    market = prices(list(np.exp(np.cumsum(rng.normal(0, 0.04, 36)))))
    result = orb.backtest(household(spread_bps=1.0), policy(target_tolerance=0.001), market)
    assert result.compiles == 1 and result.solves >= 30


def test_returns_and_target_mix() -> None:
    market = prices([1.0, 1.5, 1.5])
    result = orb.backtest(household(), policy(schedule=orb.Schedule(looks="never")), market)
    # buy and hold: month 2 return = (900 + 400) / 1000 - 1 = 30%; the target mix earns
    # 0.6 x 50% = 30% as well; month 3: 0 for both
    np.testing.assert_allclose(result.returns.to_numpy(), [0.0, 0.3, 0.0])
    np.testing.assert_allclose(result.target_returns.to_numpy(), [0.0, 0.3, 0.0])


def test_compare_lines_up_summaries() -> None:
    market = prices([1.0, 1.4, 1.1, 1.3])
    runs = {name: orb.backtest(household(), policy(schedule=orb.Schedule(looks=looks)), market)
            for name, looks in (("never", "never"), ("monthly", "monthly"))}
    table = orb.compare(runs)
    assert list(table.columns) == ["never", "monthly"]
    assert table.loc["trades", "never"] == 0 and table.loc["trades", "monthly"] == 3
    assert "<h4>Backtest" in runs["monthly"]._repr_html_()


@pytest.mark.parametrize(("change", "field", "row"), [
    (lambda m: m.assign(EQ=m["EQ"].where(m.index != m.index[2])), "EQ", "2024-03-31"),
    (lambda m: m.assign(BD=m["BD"].where(m.index != m.index[1], -1.0)), "BD", "2024-02-29"),
    (lambda m: m.iloc[[0, 2, 1, 3]], "prices", "2024-02-29"),
    (lambda m: m.iloc[[0, 1, 1, 2]], "prices", "2024-02-29"),
    (lambda m: m.drop(columns="BD"), "market", "BD"),
])
def test_bad_market_data_names_column_and_date(change, field: str, row: str) -> None:
    market = change(prices([1.0, 1.1, 1.2, 1.3]))
    with pytest.raises(InputError) as error:
        orb.backtest(household(), policy(), market)
    assert error.value.field == field and str(error.value.row) == row


def test_look_date_outside_the_data_is_refused() -> None:
    with pytest.raises(InputError) as error:
        orb.backtest(household(), policy(schedule=orb.Schedule(dates=("2030-01-31",))),
                     prices([1.0, 1.1]))
    assert error.value.field == "schedule.dates"


def test_flows_are_routed_on_their_date() -> None:
    market = prices([1.0, 1.0, 1.0])
    flows = pd.DataFrame({"date": [market.index[1]], "account": ["acct"],
                          "amount": [500.0]})
    result = orb.backtest(household(), policy(schedule=orb.Schedule(looks="never")), market,
                          flows=flows)
    # the contribution is invested 60/40 on its date: NAV 1500, no cash left
    assert result.nav["nav"].iloc[1] == pytest.approx(1500.0)
    assert result.weights["cash"].iloc[1] == pytest.approx(0.0, abs=1e-9)
    assert result.returns.iloc[1] == pytest.approx(0.0, abs=1e-12)


def test_market_from_returns_and_tidy_frames() -> None:
    returns = pd.DataFrame({"EQ": [0.1, -0.1], "BD": [0.0, 0.01]},
                           index=pd.to_datetime(["2024-02-29", "2024-03-31"]))
    market = orb.Market.from_returns(returns, start="2024-01-31")
    np.testing.assert_allclose(market.prices["EQ"], [1.0, 1.1, 0.99])
    tidy = market.prices.rename_axis("date").reset_index().melt(
        id_vars="date", var_name="security", value_name="price")
    again = orb.Market.from_frame(tidy)
    pd.testing.assert_frame_equal(again.prices, market.prices[again.prices.columns],
                                  check_freq=False, check_names=False)
    assert dt.date(2024, 1, 31) == market.dates[0].date()


@pytest.mark.parametrize(("dates", "start"), [
    (["2024-02-29", "2024-03-31", "2024-04-30"], "2024-01-31"),  # month ends
    (["2024-01-05", "2024-01-12", "2024-01-19"], "2023-12-29"),  # Fridays
    (["2024-01-02", "2024-01-03", "2024-01-04"], "2024-01-01"),  # days
])
def test_the_start_before_the_first_return_is_one_inferred_period(dates: list[str],
                                                                  start: str) -> None:
    returns = pd.DataFrame({"EQ": [0.1, -0.1, 0.0]}, index=pd.to_datetime(dates))
    market = orb.Market.from_returns(returns)
    assert market.dates[0] == pd.Timestamp(start)
    irregular = returns.set_axis(pd.to_datetime(["2024-01-02", "2024-01-05", "2024-02-20"]))
    with pytest.raises(orb.InputError, match="cannot infer") as caught:
        orb.Market.from_returns(irregular)
    assert caught.value.field == "start"


def test_apply_trades_appends_the_trades_to_the_history() -> None:
    from optirebal.program.prepare import build_problem_data

    portfolio = household("taxable", equity_basis=1200.0, acquired="2023-11-01",
                          as_of="2024-01-03").with_prices({"EQ": 1.8})
    pol = policy(tax=orb.Tax(model="exact"))
    result = orb.solve(portfolio, pol)
    after = orb.apply_trades(portfolio, result)
    history = after.history
    sale = history[history["shares"] < 0].iloc[0]
    assert sale["security"] == "EQ" and sale["lot_id"] == "eq"
    assert sale["shares"] == pytest.approx(-192 / 1.8)
    assert sale["cost_basis"] == pytest.approx(192 / 1.8 * 2.0)
    assert (history["shares"] > 0).sum() == 1  # the bonds bought
    # the loss sale now blocks buys of its group for 30 days (wash-sale rule 2)
    blocked = build_problem_data(after, pol).tax.exclusions.blocked
    assert "EQ" in blocked


def test_monthly_to_target_without_costs_is_the_fixed_mix() -> None:
    """Trading back to 60/40 every month at no cost earns 0.6 r_stocks + 0.4 r_bonds each month:
    the NAV path of the classic study's calendar policy, computed independently in numpy."""
    from optirebal.backtest.studies import stock_bond_study
    from optirebal.datasets import stocks_bonds_monthly

    portfolio, policies, market = stock_bond_study(end="1936-12-31")
    result = orb.backtest(portfolio, policies["monthly 0%"], market)
    returns = stocks_bonds_monthly().loc["1926-07-31":"1936-12-31"]
    expected = 1e6 * np.cumprod(1 + 0.6 * returns["stocks"] + 0.4 * returns["bonds"])
    np.testing.assert_allclose(result.nav["nav"].iloc[1:].to_numpy(), expected.to_numpy(),
                               rtol=1e-7)


@pytest.mark.parametrize(("looks", "expected"), [
    ("monthly", ["2024-01-31", "2024-02-29", "2024-03-29", "2024-04-30", "2024-05-31",
                 "2024-06-28"]),
    ("quarterly", ["2024-03-29", "2024-06-28"]),
    ("semiannual", ["2024-06-28"]),
    ("annual", []),  # the year is cut short by the data: no look
    ("2ME", ["2024-01-31", "2024-03-29", "2024-05-31"]),
    ("never", []),
])
def test_look_dates_fall_on_the_last_market_date_of_each_period(looks: str,
                                                                 expected: list[str]) -> None:
    from optirebal.backtest.schedule import look_mask

    dates = pd.bdate_range("2024-01-01", "2024-07-10")
    mask = look_mask(orb.Schedule(looks=looks), dates)
    assert [str(d.date()) for d in dates[mask]] == expected


def test_explicit_look_dates_and_schedule_in_toml() -> None:
    import tomllib

    from optirebal.backtest.schedule import look_mask

    schedule = orb.Schedule(dates=("2024-03-15", "2024-02-01"), income="reinvest")
    assert schedule.dates == ("2024-02-01", "2024-03-15")
    mask = look_mask(schedule, pd.bdate_range("2024-01-01", "2024-04-30"))
    assert mask.sum() == 2
    pol = policy(schedule=schedule, fraction=0.5, tracking_error_trigger=0.01)
    assert orb.Policy.from_dict(tomllib.loads(pol.to_toml())["policy"]) == pol
    with pytest.raises(InputError) as error:
        orb.Schedule(looks="montly")
    assert error.value.field == "schedule.looks" and "monthly" in str(error.value)
    with pytest.raises(InputError) as error:
        orb.Schedule(dates=("31/03/2024",))
    assert error.value.field == "schedule.dates"


def test_sweep_on_two_processes_equals_the_backtests_one_by_one() -> None:
    market = prices([1.0, 1.3, 1.1, 1.2, 0.9])
    grid = {"monthly": policy(), "threshold": policy(trigger=orb.Band.absolute(0.05)),
            "never": policy(schedule=orb.Schedule(looks="never"))}
    table = orb.sweep(grid, household(), market, processes=2, progress=False)
    assert list(table.columns) == list(grid)
    for name, pol in grid.items():
        alone = orb.backtest(household(), pol, market, name=name).summary()
        pd.testing.assert_series_equal(table[name], alone, check_names=False)


@pytest.mark.parametrize(("make", "field"), [
    (lambda: (prices([1.0, 1.1]).tz_localize("UTC"), None), "prices"),
    (lambda: (prices([1.0, 1.1]), pd.DataFrame({"date": ["2024-02-29"], "account": ["acct"],
                                                 "amount": ["5"]})), "flows.amount"),
    (lambda: (prices([1.0, 1.1]), pd.DataFrame({"date": ["2024-02-29"], "account": ["nope"],
                                                 "amount": [5.0]})), "flows.account"),
    (lambda: (prices([1.0, 1.1]), pd.DataFrame({"date": ["2030-01-31"], "account": ["acct"],
                                                 "amount": [5.0]})), "flows.date"),
])
def test_bad_time_zones_and_flows_name_the_field(make, field: str) -> None:
    market, flows = make()
    with pytest.raises(InputError) as error:
        orb.backtest(household(), policy(), market, flows=flows)
    assert error.value.field == field


def test_a_household_with_a_trade_history_is_carried_through_weeks() -> None:
    """The shipped harvest model (a trade history with loss sales, wash-sale substitutes, exact
    tax) stepped weekly: its past loss sales block buys for their window, the book reads its
    history, and taxes by year carry the harvested losses forward."""
    import dataclasses

    portfolio, pol = orb.load("models/household_harvest.toml")
    portfolio = dataclasses.replace(portfolio, scheduled=None)
    days = pd.bdate_range(portfolio.as_of, periods=40)
    rng = np.random.default_rng(7)
    market = pd.DataFrame({s: price * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
                           for s, price in portfolio.securities["price"].items()}, index=days)
    pol = dataclasses.replace(pol, schedule=orb.Schedule(looks="weekly"), soft_bands=True)
    result = orb.backtest(portfolio, pol, market)
    assert result.summary()["trades"] >= 1 and result.compiles == 1
    first = result.taxes.index[0]
    assert first == portfolio.as_of.year
    # what year one carries over is what year two starts from
    if len(result.taxes) > 1:
        carried = result.taxes.loc[first, ["carryover_short", "carryover_long"]].to_numpy()
        year_two = result.taxes.iloc[1]
        assert year_two["net_short"] - year_two["realized_short"] == pytest.approx(-carried[0])
        assert year_two["net_long"] - year_two["realized_long"] == pytest.approx(-carried[1])
