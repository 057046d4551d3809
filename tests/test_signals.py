"""Signals: velocity ramp, target-volatility scaling, momentum, moving average, realized vol."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optirebal.errors import InputError
from optirebal.signals import (
    above_moving_average,
    momentum_12_1,
    realized_volatility,
    velocity,
    vol_target_scale,
)

RAMP = {"v_min": 0.2, "v_max": 0.8, "low": 15.0, "high": 35.0}


def test_velocity_at_low_middle_high_and_outside() -> None:
    assert velocity(15.0, **RAMP) == pytest.approx(0.2)
    assert velocity(25.0, **RAMP) == pytest.approx(0.5)  # halfway: 0.2 + 0.6 / 2
    assert velocity(35.0, **RAMP) == pytest.approx(0.8)
    assert velocity(20.0, **RAMP) == pytest.approx(0.35)  # a quarter: 0.2 + 0.6 / 4
    assert velocity(5.0, **RAMP) == pytest.approx(0.2)
    assert velocity(80.0, **RAMP) == pytest.approx(0.8)


def test_velocity_keeps_the_kind_of_its_input() -> None:
    scalar = velocity(25, **RAMP)
    assert type(scalar) is float
    array = velocity(np.array([10.0, 25.0, 40.0]), **RAMP)
    assert isinstance(array, np.ndarray)
    np.testing.assert_allclose(array, [0.2, 0.5, 0.8])
    vix = pd.Series([12.0, np.nan, 30.0], index=pd.date_range("2024-01-02", periods=3),
                    name="vix")
    series = velocity(vix, **RAMP)
    assert isinstance(series, pd.Series)
    assert series.name == "vix" and series.index.equals(vix.index)
    assert series.iloc[0] == pytest.approx(0.2)
    assert math.isnan(series.iloc[1])  # a missing reading stays missing
    assert series.iloc[2] == pytest.approx(0.65)


def test_velocity_and_scale_take_lists_and_frames() -> None:
    np.testing.assert_allclose(velocity([10.0, 25.0], **RAMP), [0.2, 0.5])
    frame = pd.DataFrame({"vix": [10.0, 25.0]}, index=["x", "y"])
    out = velocity(frame, **RAMP)
    assert isinstance(out, pd.DataFrame) and out.index.equals(frame.index)
    np.testing.assert_allclose(vol_target_scale(0.1, [0.2, 0.05], 1.0), [0.5, 1.0])


def test_velocity_constant_when_v_min_equals_v_max() -> None:
    np.testing.assert_allclose(velocity(np.array([0.0, 20.0, 99.0]), 0.5, 0.5, 15.0, 35.0),
                               [0.5, 0.5, 0.5])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"v_min": 0.2, "v_max": 0.8, "low": 35.0, "high": 15.0}, "high"),
    ({"v_min": 0.2, "v_max": 0.8, "low": 15.0, "high": 15.0}, "high"),
    ({"v_min": 0.9, "v_max": 0.8, "low": 15.0, "high": 35.0}, "v_min"),
    ({"v_min": -0.1, "v_max": 0.8, "low": 15.0, "high": 35.0}, "v_min"),
    ({"v_min": 0.2, "v_max": 1.5, "low": 15.0, "high": 35.0}, "v_max"),
    ({"v_min": 0.2, "v_max": 0.8, "low": float("-inf"), "high": 35.0}, "low"),
    ({"v_min": float("nan"), "v_max": 0.8, "low": 15.0, "high": 35.0}, "v_min"),
    ({"v_min": 0.2, "v_max": 0.8, "low": 15.0, "high": "high"}, "high"),
])
def test_velocity_bad_parameters_name_the_argument(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as caught:
        velocity(20.0, **kwargs)
    assert caught.value.field == field


def test_velocity_rejects_infinite_indicator() -> None:
    with pytest.raises(InputError) as caught:
        velocity(np.array([20.0, np.inf]), **RAMP)
    assert caught.value.field == "x"


def test_vol_target_scale_scales_and_caps() -> None:
    assert vol_target_scale(0.10, 0.20, max_scale=2.0) == pytest.approx(0.5)
    assert vol_target_scale(0.10, 0.08, max_scale=2.0) == pytest.approx(1.25)
    assert vol_target_scale(0.10, 0.04, max_scale=2.0) == pytest.approx(2.0)  # 2.5 capped
    assert vol_target_scale(0.10, 0.05, max_scale=2.0) == pytest.approx(2.0)  # at the cap
    vol = pd.Series([0.2, 0.04, np.nan], index=["a", "b", "c"])
    scale = vol_target_scale(0.10, vol, 1.0)
    assert isinstance(scale, pd.Series) and list(scale.index) == ["a", "b", "c"]
    assert scale.iloc[:2].tolist() == pytest.approx([0.5, 1.0])
    assert math.isnan(scale.iloc[2])
    array = vol_target_scale(0.12, np.array([0.24, 0.06]), 1.5)
    assert isinstance(array, np.ndarray)
    np.testing.assert_allclose(array, [0.5, 1.5])


@pytest.mark.parametrize(("args", "field"), [
    ((0.10, 0.0, 1.0), "vol_estimate"),
    ((0.10, -0.2, 1.0), "vol_estimate"),
    ((0.10, np.array([0.2, np.inf]), 1.0), "vol_estimate"),
    ((0.10, 0.2, 0.0), "max_scale"),
    ((0.10, 0.2, float("inf")), "max_scale"),
    ((-0.10, 0.2, 1.0), "vol_target"),
    ((float("nan"), 0.2, 1.0), "vol_target"),
])
def test_vol_target_scale_bad_input_names_the_argument(args: tuple, field: str) -> None:
    with pytest.raises(InputError) as caught:
        vol_target_scale(*args)
    assert caught.value.field == field


def _daily_growth(start: str, end: str, rate: float) -> pd.DataFrame:
    """Calendar-daily prices 100 * (1 + rate)^n, n the days since ``start``."""
    dates = pd.date_range(start, end, freq="D")
    days = (dates - dates[0]).days.to_numpy()
    return pd.DataFrame({"stock": 100.0 * (1.0 + rate) ** days,
                         "flat": np.full(len(dates), 50.0)}, index=dates)


def test_momentum_12_1_known_answer_on_calendar_months() -> None:
    prices = _daily_growth("2020-01-01", "2021-06-30", 0.001)
    momentum = momentum_12_1(prices)
    # 2021-03-31: one month back is 2021-02-28, twelve months back 2020-03-31 (by hand),
    # 334 days apart.
    assert momentum.loc["2021-03-31", "stock"] == pytest.approx(1.001**334 - 1, rel=1e-12)
    # 2021-05-15: 2021-04-15 and 2020-05-15, 335 days apart.
    assert momentum.loc["2021-05-15", "stock"] == pytest.approx(1.001**335 - 1, rel=1e-12)
    assert momentum.loc["2021-05-15", "flat"] == 0.0
    # History too short until twelve months have passed.
    assert momentum.loc[:"2020-12-31"].isna().all().all()
    assert momentum.loc["2021-01-01"].notna().all()
    assert momentum.index.equals(prices.index) and list(momentum.columns) == ["stock", "flat"]


def test_momentum_12_1_month_ends_look_back_to_month_ends() -> None:
    prices = _daily_growth("2020-01-01", "2024-12-31", 0.001)
    momentum = momentum_12_1(prices)
    # 2021-04-30 -> 2021-03-31 and 2020-04-30 (not 2021-03-30): 335 days apart.
    assert momentum.loc["2021-04-30", "stock"] == pytest.approx(1.001**335 - 1, rel=1e-12)
    # Friday 2024-11-29 is the last weekday of November -> 2024-10-31 and 2023-11-30, 336 days.
    assert momentum.loc["2024-11-29", "stock"] == pytest.approx(1.001**336 - 1, rel=1e-12)
    # Thursday 2024-11-28 is not: the same day of the month, 2024-10-28 and 2023-11-28, 335.
    assert momentum.loc["2024-11-28", "stock"] == pytest.approx(1.001**335 - 1, rel=1e-12)


@pytest.mark.parametrize("rule", ["ME", "BME"])
def test_momentum_12_1_does_not_depend_on_the_sampling_frequency(rule: str) -> None:
    # Calendar month ends against calendar-daily prices; business month ends against
    # weekday prices (so both frames hold the last-weekday prices the lookups land on).
    daily = _daily_growth("2019-01-01", "2021-12-31", 0.0005)
    if rule == "BME":
        daily = daily.loc[daily.index.day_of_week < 5]
    month_ends = daily.loc[pd.date_range("2019-01-01", "2021-12-31", freq=rule)]
    from_month_ends = momentum_12_1(month_ends)
    assert from_month_ends.notna().sum().sum() == 2 * 24  # 2020-01 .. 2021-12
    np.testing.assert_allclose(from_month_ends.to_numpy(),
                               momentum_12_1(daily).loc[month_ends.index].to_numpy())


def test_momentum_12_1_with_a_time_zone_and_a_time_of_day() -> None:
    prices = _daily_growth("2020-01-01", "2021-06-30", 0.001)
    expected = momentum_12_1(prices).to_numpy()
    for index in (prices.index.tz_localize("America/New_York"),
                  prices.index + pd.Timedelta(hours=16)):
        shifted = prices.set_axis(index)
        np.testing.assert_allclose(momentum_12_1(shifted).to_numpy(), expected)


def test_momentum_12_1_looks_up_the_last_available_price() -> None:
    # Business days: 2023-12-31 is a Sunday, so "twelve months before 2024-12-31" reads the
    # Friday 2023-12-29 price; 2024-11-30 is a Saturday, so one month back reads Friday
    # 2024-11-29, and a missing 2024-11-29 price falls back to Thursday 2024-11-28.
    dates = pd.bdate_range("2023-06-01", "2024-12-31")
    prices = pd.DataFrame({"stock": np.arange(len(dates), dtype=float) + 100.0}, index=dates)
    level = prices["stock"]
    expected = level["2024-11-29"] / level["2023-12-29"] - 1
    assert momentum_12_1(prices).loc["2024-12-31", "stock"] == pytest.approx(expected)
    prices.loc["2024-11-29", "stock"] = np.nan
    expected = level["2024-11-28"] / level["2023-12-29"] - 1
    assert momentum_12_1(prices).loc["2024-12-31", "stock"] == pytest.approx(expected)


def test_above_moving_average_by_hand() -> None:
    dates = pd.date_range("2024-01-01", periods=5, freq="D")
    prices = pd.DataFrame({"up": [10.0, 11.0, 12.0, 13.0, 14.0],
                           "down": [14.0, 13.0, 12.0, 11.0, 10.0]}, index=dates)
    signal = above_moving_average(prices, 4)
    assert signal.iloc[:3].isna().all().all()
    assert signal["up"].iloc[3] == pytest.approx(13.0 / 11.5 - 1)
    assert signal["up"].iloc[4] == pytest.approx(14.0 / 12.5 - 1)
    assert signal["down"].iloc[4] == pytest.approx(10.0 / 11.5 - 1)
    assert above_moving_average(prices, 1).eq(0.0).all().all()


def test_realized_volatility_annualizes_the_sample_std() -> None:
    # Returns alternating +-r have sample std r * sqrt(n / (n - 1)) over an even window n.
    r, n = 0.01, 20
    returns = pd.DataFrame({"a": [r, -r] * 15, "b": [2 * r, -2 * r] * 15})
    vol = realized_volatility(returns, n, 252)
    expected = r * math.sqrt(n / (n - 1)) * math.sqrt(252)
    assert vol["a"].iloc[:n - 1].isna().all()
    assert vol["a"].iloc[n - 1] == pytest.approx(expected)
    assert vol["b"].iloc[n - 1] == pytest.approx(2 * expected)
    monthly = realized_volatility(returns["a"], n, 12)
    assert isinstance(monthly, pd.Series)
    assert monthly.iloc[n - 1] == pytest.approx(expected * math.sqrt(12 / 252))


def test_realized_volatility_feeds_vol_target_scale() -> None:
    rng = np.random.default_rng(7)
    returns = pd.Series(rng.normal(0.0, 0.02, 300))
    vol = realized_volatility(returns, 60, 252)
    scale = vol_target_scale(0.10, vol, 1.0)
    assert scale.iloc[:59].isna().all()
    # Daily sd 2% is about 32% a year, so the scale is near 0.10 / 0.32.
    assert scale.iloc[59:].between(0.2, 0.45).all()


@pytest.mark.parametrize(("prices", "row"), [
    (pd.DataFrame({"s": [1.0, 2.0]}, index=[0, 1]), None),
    (pd.DataFrame({"s": [1.0, 2.0]}, index=pd.to_datetime(["2024-01-02", "2024-01-01"])), None),
    (pd.DataFrame({"s": [1.0, 2.0]}, index=pd.to_datetime(["2024-01-01", "2024-01-01"])),
     pd.Timestamp("2024-01-01")),
    (pd.DataFrame({"s": [1.0, -2.0]}, index=pd.to_datetime(["2024-01-01", "2024-01-02"])),
     pd.Timestamp("2024-01-02")),
    (pd.DataFrame({"s": [1.0, np.inf]}, index=pd.to_datetime(["2024-01-01", "2024-01-02"])),
     pd.Timestamp("2024-01-02")),
    ([1.0, 2.0], None),
])
def test_price_signals_bad_prices_name_the_argument(prices: object, row: object) -> None:
    for signal in (momentum_12_1, lambda p: above_moving_average(p, 2)):
        with pytest.raises(InputError) as caught:
            signal(prices)
        assert caught.value.field == "prices"
        assert caught.value.row == row


def test_window_arguments_are_checked() -> None:
    prices = _daily_growth("2024-01-01", "2024-01-10", 0.001)
    for days in (0, 2.5, True):
        with pytest.raises(InputError) as caught:
            above_moving_average(prices, days)  # type: ignore[arg-type]
        assert caught.value.field == "days"
    returns = prices.pct_change()
    for args, field in [((1, 252), "window"), ((5, 0), "periods_per_year"),
                        ((5, float("nan")), "periods_per_year")]:
        with pytest.raises(InputError) as caught:
            realized_volatility(returns, *args)
        assert caught.value.field == field
    with pytest.raises(InputError) as caught:
        realized_volatility([0.01, 0.02], 2, 252)  # type: ignore[arg-type]
    assert caught.value.field == "returns"
