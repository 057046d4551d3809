"""The shipped market data: known values from the sources, shape, units and provenance."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from optirebal.datasets import implied_volatility_daily, stocks_bonds_monthly, us_stocks_daily
from optirebal.datasets.build_market import par_bond_return

LOADERS: dict[str, Callable[[], pd.DataFrame]] = {
    "stocks_bonds_monthly.csv.gz": stocks_bonds_monthly,
    "vix_daily.csv.gz": implied_volatility_daily,
    "us_stocks_daily.csv.gz": us_stocks_daily,
}


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    return stocks_bonds_monthly()


def bond_return_by_cash_flows(coupon: float, y: float) -> float:
    """A 20-year par bond bought a month ago, valued by discounting each of its 40 cash flows.

    Written independently of the closed form in build_market: coupons coupon/2 at 6, 12, ...,
    240 months after purchase are now 5, 11, ..., 239 months away, discounted at y compounded
    semiannually (6 months per period).
    """
    months_away = np.arange(6, 241, 6) - 1
    flows = np.full(40, coupon / 2)
    flows[-1] += 1.0
    return float(np.sum(flows * (1 + y / 2) ** (-months_away / 6))) - 1.0


@pytest.mark.parametrize("name", list(LOADERS))
def test_index_is_dates_sorted_unique_and_values_complete(name: str) -> None:
    frame = LOADERS[name]()
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "date"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert (frame.index == frame.index.normalize()).all()
    assert not frame.isna().any().any()
    assert all(dtype == np.float64 for dtype in frame.dtypes)


@pytest.mark.parametrize("name", list(LOADERS))
def test_attrs_give_source_units_and_license(name: str) -> None:
    frame = LOADERS[name]()
    publisher, package, unit = {
        "stocks_bonds_monthly.csv.gz": ("Moody's", "arch 8.0.0", "fraction per month"),
        "vix_daily.csv.gz": ("Cboe", "arch 8.0.0", "index points"),
        "us_stocks_daily.csv.gz": ("S&P 500", "skfolio 1.12.2", "US dollars per share"),
    }[name]
    assert publisher in frame.attrs["source"] and package in frame.attrs["source"]
    assert unit in frame.attrs["units"]
    assert frame.attrs["license"]


@pytest.mark.parametrize("name", list(LOADERS))
def test_shipped_file_matches_the_digest_written_by_the_build(name: str) -> None:
    # A hand edit of a data file without rerunning build_market breaks this.
    data = resources.files("optirebal.datasets").joinpath("data")
    info = json.loads(data.joinpath("provenance.json").read_text(encoding="utf-8"))
    text = gzip.decompress(data.joinpath(name).read_bytes())
    assert hashlib.sha256(text).hexdigest() == info[name]["sha256_csv"]


def test_monthly_covers_every_month_from_july_1926(monthly: pd.DataFrame) -> None:
    assert list(monthly.columns) == ["stocks", "bonds", "bills"]
    expected = pd.date_range("1926-07-31", "2018-11-30", freq="ME")
    assert monthly.index.equals(expected.as_unit(monthly.index.unit).rename("date"))


def test_monthly_first_rows_are_the_source_percentages_as_fractions(monthly: pd.DataFrame) -> None:
    # Fama-French 1926-07: Mkt-RF 2.96 %, RF 0.22 %; 1926-08: 2.64 %, 0.25 %.
    assert monthly.loc["1926-07-31", "stocks"] == 0.0318
    assert monthly.loc["1926-07-31", "bills"] == 0.0022
    assert monthly.loc["1926-08-31", "stocks"] == 0.0289
    assert monthly.loc["1926-08-31", "bills"] == 0.0025


def test_known_crashes_have_the_published_sign_and_size(monthly: pd.DataFrame) -> None:
    # Fama-French: October 1929 Mkt-RF -20.12 %, RF 0.46 %; October 1987 -23.24 %, 0.60 %;
    # September 1931, the worst month, -29.13 % and 0.03 %.
    assert monthly.loc["1929-10-31", "stocks"] == -0.1966
    assert monthly.loc["1987-10-31", "stocks"] == -0.2264
    assert monthly["stocks"].idxmin() == pd.Timestamp("1931-09-30")
    assert monthly["stocks"].min() == -0.2910


@pytest.mark.parametrize(("month", "y_prev", "y_now"), [
    ("1926-07-31", 4.72, 4.71),    # first month: Moody's Aaa for 1926-06 and 1926-07, percent
    ("1981-09-30", 14.89, 15.49),  # yields up 60 bp at their peak: a loss despite 1.24 % coupon
    ("1981-11-30", 15.40, 14.22),  # yields down 118 bp: a 9 % gain
    ("2008-12-31", 6.12, 5.05),    # the best month in the series
])
def test_bond_return_is_the_exact_par_bond_price_change(monthly: pd.DataFrame, month: str,
                                                        y_prev: float, y_now: float) -> None:
    expected = bond_return_by_cash_flows(y_prev / 100, y_now / 100)
    assert monthly.loc[month, "bonds"] == pytest.approx(expected, abs=1e-8)  # file: 8 decimals
    assert float(par_bond_return(y_prev / 100, y_now / 100)) == pytest.approx(expected, abs=1e-13)


def test_bond_return_splits_into_accrued_coupon_and_clean_price_change() -> None:
    # Unchanged yield: the full price grows at the yield, (1 + y/2)**(1/6); the clean price
    # (full price less the accrued coupon y/12) sits just below par, as between coupon dates.
    y = 0.06
    total = float(par_bond_return(y, y))
    assert total == pytest.approx((1 + y / 2) ** (1 / 6) - 1, abs=1e-15)
    clean_change = total - y / 12
    assert -1e-4 < clean_change < 0
    # A rise in yield loses about duration * change: modified duration of a 20-year 6 % par bond
    # is about 11.6 years, so +10 bp costs about 1.16 % before the coupon.
    assert float(par_bond_return(y, y + 0.001)) - y / 12 == pytest.approx(-0.0116, abs=5e-4)


def test_bond_return_rejects_yields_in_percent_sign_or_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        par_bond_return(0.05, 0.0)
    with pytest.raises(ValueError, match="divide 12"):
        par_bond_return(0.05, 0.05, frequency=5)


def test_monthly_returns_are_fractions_with_plausible_long_run_means(
        monthly: pd.DataFrame) -> None:
    assert monthly["stocks"].between(-0.30, 0.40).all()
    assert monthly["bonds"].between(-0.10, 0.15).all()
    # T-bill returns dipped just below zero in the 1930s (RF -0.06 % in November 1938).
    assert monthly["bills"].between(-0.001, 0.0136).all()
    study = monthly.loc["1926-07":"2009-12"]
    assert len(study) == 1002
    compound = (1 + study).prod() ** (12 / len(study)) - 1
    assert compound["stocks"] == pytest.approx(0.0960, abs=5e-4)
    assert compound["bonds"] == pytest.approx(0.0590, abs=5e-4)
    assert compound["bills"] == pytest.approx(0.0366, abs=5e-4)


def test_vix_is_daily_closes_in_index_points() -> None:
    vix = implied_volatility_daily()
    assert list(vix.columns) == ["vix"]
    assert len(vix) == 1259
    assert vix.index[0] == pd.Timestamp("2014-01-03")
    assert vix.index[-1] == pd.Timestamp("2019-01-03")
    assert vix.loc["2014-01-03", "vix"] == 13.76
    # 24 August 2015, the flash crash, is the highest close; 5 February 2018 the next spike.
    assert vix["vix"].idxmax() == pd.Timestamp("2015-08-24")
    assert vix["vix"].max() == 40.74
    assert vix.loc["2018-02-05", "vix"] == 37.32
    assert vix["vix"].min() == 9.14
    # Trading days only: the source's holiday rows ('.') are gone.
    assert (vix.index.day_of_week < 5).all()
    assert pd.Timestamp("2018-12-25") not in vix.index


def test_us_stocks_are_twenty_adjusted_price_columns() -> None:
    prices = us_stocks_daily()
    assert list(prices.columns) == ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM",
                                    "KO", "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH",
                                    "WMT", "XOM"]
    assert prices.shape == (8313, 20)
    assert prices.index[0] == pd.Timestamp("1990-01-02")
    assert prices.index[-1] == pd.Timestamp("2022-12-28")
    assert prices.loc["1990-01-02", "AAPL"] == 0.264
    assert prices.loc["2022-12-28", "MSFT"] == 233.434
    assert (prices > 0).all().all()
    two_years = prices.loc["2021-01-01":"2022-12-31"]
    assert len(two_years) == 501 and two_years.min().min() > 7.0


def test_loaders_return_independent_frames() -> None:
    first = stocks_bonds_monthly()
    first.iloc[0, 0] = 99.0
    first.attrs["source"] = "edited"
    second = stocks_bonds_monthly()
    assert second.iloc[0, 0] == 0.0318
    assert "arch" in second.attrs["source"]
