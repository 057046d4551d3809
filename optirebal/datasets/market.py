"""Real market histories shipped with optirebal, readable offline.

Three files in ``optirebal/datasets/data`` (gzip-compressed CSV, fixed decimals), rebuilt by
``python -m optirebal.datasets.build_market`` from the data that the ``arch`` and ``skfolio``
packages ship; neither package is needed here. Each loader returns a new DataFrame with a
``DatetimeIndex`` named ``date`` and ``attrs["source"]`` (publisher, the package and version the
numbers were taken from, the transformation), ``attrs["units"]`` and ``attrs["license"]``, read
from ``data/provenance.json`` which the build script writes next to the data.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

__all__ = ["implied_volatility_daily", "stocks_bonds_monthly", "us_stocks_daily"]

_MONTHLY = "stocks_bonds_monthly.csv.gz"
_VIX = "vix_daily.csv.gz"
_STOCKS = "us_stocks_daily.csv.gz"

# Every value should be exactly float(text), so that the documented decimals compare equal:
# pandas 3 parses that way by default (and deprecates the option); pandas 2 needs round_trip.
_EXACT_FLOATS: dict[str, Any] = (
    {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {})


def _data_file(name: str) -> Any:
    return resources.files("optirebal.datasets").joinpath("data").joinpath(name)


@cache
def _provenance() -> dict[str, dict[str, str]]:
    with _data_file("provenance.json").open("r", encoding="utf-8") as fh:
        info: dict[str, dict[str, str]] = json.load(fh)
    return info


def _load(name: str) -> pd.DataFrame:
    with _data_file(name).open("rb") as raw:
        frame = pd.read_csv(raw, compression="gzip", index_col="date", parse_dates=["date"],
                            date_format="%Y-%m-%d", **_EXACT_FLOATS)
    frame.columns.name = None
    info = _provenance()[name]
    frame.attrs.update({key: info[key] for key in ("source", "units", "license")})
    return frame


def stocks_bonds_monthly() -> pd.DataFrame:
    """Monthly US stock market, long-term corporate bond and T-bill total returns from July 1926.

    Returns
    -------
    pandas.DataFrame
        One row per month from 1926-07 to 2018-11 (1109 rows, every month, no gaps), index the
        month-end dates (``DatetimeIndex`` named ``date``), float columns, all simple total
        returns as **fractions per month** (0.01 = 1 %):

        ``stocks``
            US stock market: Fama-French ``Mkt-RF + RF`` (value-weighted CRSP NYSE, AMEX and
            NASDAQ stocks), exact to the 4 decimals of the source (2 decimals in percent).
        ``bonds``
            Long-term Aaa corporate bonds: the one-month return of a constant-maturity 20-year
            par bond with semiannual coupons, bought at the end of the previous month at par
            (coupon = Moody's Aaa yield ``y[t-1]``) and priced at ``y[t]`` by exact
            yield-to-maturity pricing::

                r[t] = v**(1/6) * (y[t-1]/y[t] * (1 - v**-40) + v**-40) - 1,  v = 1 + y[t]/2

            which is the accrued coupon ``y[t-1]/12`` plus the clean price change (see
            ``docs/datasets.md``); 8 decimals.
        ``bills``
            One-month Treasury bill: Fama-French ``RF``, 4 decimals.

        ``attrs["source"]``, ``attrs["units"]`` and ``attrs["license"]`` say the same in a
        sentence each.

    Notes
    -----
    Taken from ``arch`` 8.0.0 (``arch.data.frenchdata``: Kenneth R. French Data Library, percent
    per month, 1926-07 to 2018-11; ``arch.data.default``: Moody's Seasoned Aaa Corporate Bond
    Yield from FRED, series ``AAA``, percent a year, 1919-01 to 2018-12). The coverage is their
    overlap. Moody's yield for a month is the *average* of that month's daily yields, not the
    month-end yield, so the bond returns are smoothed and lag the market by about half a month;
    the 20-year maturity is a modelling choice (Moody's averages seasoned bonds with 20 years or
    more to maturity, near 30 when it can) and no default losses are modelled, so ``bonds``
    approximates, and is not, a long-term corporate bond index such as SBBI's. Ken French's
    factors are revised from time to time; these are the values arch shipped.

    License and terms: the Ken French Data Library is free to use with no formal license (cite
    Fama and French, 1993); Moody's Aaa yields are copyright Moody's Investors Service and
    shown on FRED for fair use; both are redistributed in ``arch`` (NCSA license).

    Examples
    --------
    >>> from optirebal.datasets import stocks_bonds_monthly
    >>> returns = stocks_bonds_monthly()
    >>> float(returns.loc["1987-10-31", "stocks"])
    -0.2264
    """
    return _load(_MONTHLY)


def implied_volatility_daily() -> pd.DataFrame:
    """Cboe VIX implied-volatility index, daily close, January 2014 to January 2019.

    Returns
    -------
    pandas.DataFrame
        One row per US trading day from 2014-01-03 to 2019-01-03 (1259 rows), ``DatetimeIndex``
        named ``date``, one float column ``vix`` in **index points**: the annualized 30-day
        implied volatility of the S&P 500 in percent (20.0 means 20 % a year), 2 decimals.
        ``attrs["source"]``, ``attrs["units"]`` and ``attrs["license"]`` describe it.

    Notes
    -----
    Taken from ``arch`` 8.0.0 (``arch.data.vix``), which holds FRED series ``VIXCLS`` on a
    weekday calendar with ``.`` on market holidays; those 46 holiday rows are dropped and the
    closes are unchanged. Range 9.14 to 40.74 (2015-08-24).

    License and terms: VIX is a Cboe Global Markets index, shown on FRED with Cboe's permission
    and subject to Cboe's terms; redistributed in ``arch`` (NCSA license).
    """
    return _load(_VIX)


def us_stocks_daily() -> pd.DataFrame:
    """Adjusted daily closing prices of 20 large US stocks, January 1990 to December 2022.

    Returns
    -------
    pandas.DataFrame
        One row per trading day from 1990-01-02 to 2022-12-28 (8313 rows, no gaps in the data),
        ``DatetimeIndex`` named ``date``, one float column per ticker (AAPL, AMD, BAC, BBY, CVX,
        GE, HD, JNJ, JPM, KO, LLY, MRK, MSFT, PEP, PFE, PG, RRC, UNH, WMT, XOM) in **US dollars
        per share**, adjusted for splits and dividends so that the ratio of two days' prices is
        the total return. ``attrs["source"]``, ``attrs["units"]`` and ``attrs["license"]``
        describe it.

    Notes
    -----
    Taken unchanged from ``skfolio`` 1.12.2 (``skfolio.datasets.load_sp500_dataset``), which
    does not name its upstream vendor. Prices have 3 decimals, so while a back-adjusted price is
    small (AAPL 0.264 on 1990-01-02, BBY 0.107 at its low) daily returns are quantized to a few
    tenths of a percent, and RRC has over a thousand zero-return days. Prefer recent years for
    daily studies: in 2021-2022 (501 trading days) every price is above 7 dollars. These are 20
    constituents picked after the fact, so a study on them has survivorship bias.

    License and terms: ``skfolio`` is BSD-3-Clause and provides this data for testing and
    examples only, not for investment use.
    """
    return _load(_STOCKS)
