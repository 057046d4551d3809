"""Signals from market data: how fast to close a gap to target, and momentum.

* :func:`vol_target_scale` and :func:`velocity` turn a volatility reading into a number: an
  exposure scale, or a velocity, the fraction of the gap between current and target weights
  to close at a rebalance (1 closes it all, 0 leaves it).
* :func:`realized_volatility` gives the annualized volatility such rules read.
* :func:`momentum_12_1` and :func:`above_moving_average` are trend signals on a wide price frame
  (dates by securities or classes).

Scalars, numpy arrays and pandas Series (or DataFrames) go in, the same kind comes out; a list
comes out as an array. In the *data* argument
(``vol_estimate``, ``x``) a NaN is a missing reading (a rolling window still warming up) and
gives NaN; an infinite value raises. The parameters must be finite numbers. Bad input raises
:class:`optirebal.errors.InputError` naming the argument.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.schema import number

__all__ = ["above_moving_average", "momentum_12_1", "realized_volatility", "velocity",
           "vol_target_scale"]

Data = TypeVar("Data", float, np.ndarray, pd.Series, pd.DataFrame)


def _data(value: object, field: str) -> np.ndarray:
    """The data argument as a float array (NaN allowed: missing), else InputError."""
    raw = value.to_numpy() if isinstance(value, pd.Series) else value
    try:
        array = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise InputError("must be numeric", field=field) from None
    if np.isinf(array).any():
        raise InputError("must not be infinite (NaN marks a missing reading)", field=field)
    return array


def _like(result: np.ndarray, template: object) -> float | np.ndarray | pd.Series:
    """``result`` in the kind of ``template``: Series or DataFrame (same labels), array, float."""
    if isinstance(template, pd.Series):
        return pd.Series(result, index=template.index, name=template.name)
    if isinstance(template, pd.DataFrame):
        return pd.DataFrame(result, index=template.index, columns=template.columns)
    if isinstance(template, np.ndarray) or result.ndim > 0:  # arrays, and lists as arrays
        return result
    return float(result)


def vol_target_scale(vol_target: float, vol_estimate: Data, max_scale: float) -> Data:
    """Target-volatility scaling: ``min(max_scale, vol_target / vol_estimate)``.

    The exposure multiplier that brings a position with volatility ``vol_estimate`` to
    ``vol_target``, capped at ``max_scale`` so that a calm spell does not lever up without
    limit.

    Parameters
    ----------
    vol_target
        Target volatility, annualized, as a fraction (0.10 = 10% a year), >= 0.
    vol_estimate
        Estimated volatility in the same units (for example :func:`realized_volatility`), > 0;
        scalar, numpy array or pandas Series. NaN (no estimate yet) gives NaN.
    max_scale
        Cap on the scale, > 0 (1.0 forbids leverage).

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        The dimensionless scale, of the same kind as ``vol_estimate``.

    Raises
    ------
    InputError
        Naming the argument: a parameter not finite, ``vol_target`` < 0, ``max_scale`` <= 0, or
        ``vol_estimate`` infinite or <= 0.

    Examples
    --------
    >>> vol_target_scale(0.10, 0.20, max_scale=1.5)
    0.5
    >>> vol_target_scale(0.10, 0.05, max_scale=1.5)
    1.5
    >>> vol_target_scale(0.10, pd.Series([0.08, 0.25], index=["calm", "storm"]), 1.0).tolist()
    [1.0, 0.4]
    """
    target = number("vol_target", vol_target)
    if target < 0:
        raise InputError(f"must be >= 0, got {target!r}", field="vol_target")
    cap = number("max_scale", max_scale)
    if cap <= 0:
        raise InputError(f"must be > 0, got {cap!r}", field="max_scale")
    vol = _data(vol_estimate, "vol_estimate")
    if (vol <= 0).any():  # NaN compares False, so missing readings pass through
        raise InputError("must be > 0 (a volatility)", field="vol_estimate")
    return _like(np.minimum(cap, target / vol), vol_estimate)  # type: ignore[return-value]


def velocity(x: Data, v_min: float, v_max: float, low: float, high: float) -> Data:
    """Velocity ramp: ``clip(v_min + (v_max - v_min) (x - low) / (high - low), v_min, v_max)``.

    The fraction of the gap to target to close at a rebalance, set by an indicator x such as
    an implied-volatility index: ``v_min`` at or below ``low``, ``v_max`` at or above ``high``,
    linear in between. With ``v_min > v_max`` not allowed, a higher indicator never means a
    slower rebalance; to trade faster when the indicator is *low*, pass ``-x`` with
    ``low=-high`` and ``high=-low``.

    Parameters
    ----------
    x
        The indicator, in its own units (for example VIX points); scalar, numpy array or pandas
        Series. NaN gives NaN.
    v_min, v_max
        Velocities at the ends of the ramp, fractions with 0 <= v_min <= v_max <= 1.
    low, high
        Indicator values where the ramp starts and ends, in the units of x, low < high.

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        The velocity in [v_min, v_max], of the same kind as ``x``.

    Raises
    ------
    InputError
        Naming the argument: a parameter not finite, ``low >= high``, ``v_min > v_max``, a
        velocity outside [0, 1], or x infinite.

    Examples
    --------
    >>> velocity(20.0, v_min=0.25, v_max=1.0, low=15.0, high=35.0)
    0.4375
    >>> velocity(np.array([10.0, 15.0, 25.0, 35.0, 50.0]), 0.25, 1.0, 15.0, 35.0).tolist()
    [0.25, 0.25, 0.625, 1.0, 1.0]
    """
    vmin = number("v_min", v_min)
    vmax = number("v_max", v_max)
    lo = number("low", low)
    hi = number("high", high)
    if not lo < hi:
        raise InputError(f"must be greater than low ({lo!r}), got {hi!r}", field="high")
    if vmin > vmax:
        raise InputError(f"must be <= v_max ({vmax!r}), got {vmin!r}", field="v_min")
    if vmin < 0:
        raise InputError(f"a fraction of the gap, must be >= 0, got {vmin!r}", field="v_min")
    if vmax > 1:
        raise InputError(f"a fraction of the gap, must be <= 1, got {vmax!r}", field="v_max")
    values = _data(x, "x")
    ramp = vmin + (vmax - vmin) * (values - lo) / (hi - lo)
    return _like(np.clip(ramp, vmin, vmax), x)  # type: ignore[return-value]


def _price_frame(prices: object, field: str) -> pd.DataFrame:
    """A wide numeric price frame with an increasing, unique DatetimeIndex and prices > 0."""
    if isinstance(prices, pd.Series):
        prices = prices.to_frame()
    if not isinstance(prices, pd.DataFrame):
        raise InputError("must be a pandas DataFrame of prices (dates by securities)",
                         field=field)
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise InputError("the index must be a DatetimeIndex", field=field)
    if not prices.index.is_unique:
        duplicated = prices.index[prices.index.duplicated()][0]
        raise InputError("dates must be unique", field=field, row=duplicated)
    if not prices.index.is_monotonic_increasing:
        raise InputError("dates must be increasing (sort the index)", field=field)
    try:
        frame = prices.astype(float)
    except (TypeError, ValueError):
        raise InputError("prices must be numeric", field=field) from None
    values = frame.to_numpy()
    bad = np.isinf(values) | (values <= 0)  # NaN compares False: a missing price is allowed
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"prices must be finite and > 0 (column {frame.columns[col]!r})",
                         field=field, row=frame.index[row])
    return frame


def momentum_12_1(prices: pd.DataFrame) -> pd.DataFrame:
    """Trailing 12-1 month momentum: the return from 12 months ago to 1 month ago.

    For each date t and column, ``P(t - 1 month) / P(t - 12 months) - 1``, where P(d) is the
    last price on or before d (an as-of lookup, skipping missing prices). Months are calendar
    months with the end-of-month rule of day counts: from a date on or after the last weekday
    of its month, k months back is the *last day* of that earlier month (so 30 April and
    Friday 29 November 2024 look back to 31 March and 31 October); from any other date it is
    the same day of the month, clipped (15 May -> 15 April, 30 March -> 28 or 29 February).
    So the signal does not depend on the sampling frequency: daily, weekly or month-end prices
    give the same answer wherever the looked-up prices are in both. (A plain
    ``pd.DateOffset(months=1)`` would send 30 April to 30 March, and month-end data to the
    February price.) Skipping the latest month avoids the short-term reversal that would
    otherwise contaminate the trend. Weekdays are Monday to Friday; holidays are not known.

    Parameters
    ----------
    prices
        Wide frame of prices > 0 (any currency; only ratios matter), dates by securities or
        classes, with an increasing DatetimeIndex of any frequency. NaN is a missing price.

    Returns
    -------
    pandas.DataFrame
        Same index and columns, the return as a fraction (0.12 = 12%). NaN where t - 12 months
        falls before the column's first price (history too short).

    Raises
    ------
    InputError
        Naming ``prices``: not a frame, index not an increasing unique DatetimeIndex, or a
        price <= 0 or infinite (with its date).

    Examples
    --------
    >>> dates = pd.date_range("2020-01-31", periods=14, freq="ME")
    >>> prices = pd.DataFrame({"stock": np.arange(100.0, 114.0)}, index=dates)
    >>> momentum = momentum_12_1(prices)
    >>> round(float(momentum.loc["2021-01-31", "stock"]), 6)  # P(2020-12-31) / P(2020-01-31) - 1
    0.11
    >>> bool(momentum.loc["2020-12-31", "stock"] != momentum.loc["2020-12-31", "stock"])  # NaN
    True
    """
    frame = _price_frame(prices, "prices")
    index = frame.index
    # Carry each column's last price forward so a lookup lands on the last *available* price.
    filled = frame.ffill().to_numpy()
    days = index.normalize()
    time_of_day = index - days
    # Wall-clock calendar dates decide "month end" (a time zone changes nothing here).
    local = (days if days.tz is None else days.tz_localize(None)).to_numpy()
    local = local.astype("datetime64[D]")
    month_end = (pd.DatetimeIndex(local) + pd.offsets.MonthEnd(0)).to_numpy()
    last_weekday = np.busday_offset(month_end.astype("datetime64[D]"), 0, roll="backward")
    at_month_end = local >= last_weekday

    def as_of(months: int) -> np.ndarray:
        same_day = days - pd.DateOffset(months=months)
        target = same_day.where(~at_month_end, same_day + pd.offsets.MonthEnd(0)) + time_of_day
        positions = index.get_indexer(target, method="pad")
        looked_up = filled[np.maximum(positions, 0)]
        looked_up[positions < 0] = np.nan  # before the first date: no history
        return looked_up

    with np.errstate(invalid="ignore"):
        result = as_of(1) / as_of(12) - 1.0
    return pd.DataFrame(result, index=index, columns=frame.columns)


def above_moving_average(prices: pd.DataFrame, days: int) -> pd.DataFrame:
    """Price relative to its N-observation moving average: ``P / mean(last N prices) - 1``.

    Positive means the price is above its average (an up-trend). The average runs over the last
    ``days`` rows including the current one (observations, not calendar days: with daily data,
    200 is the usual 200-day average) and needs all of them.

    Parameters
    ----------
    prices
        Wide frame of prices > 0, dates by securities or classes, increasing DatetimeIndex.
    days
        N >= 1, the number of observations averaged.

    Returns
    -------
    pandas.DataFrame
        Same index and columns, a fraction (0.05 = 5% above the average). NaN for the first
        N - 1 rows and wherever the window holds a missing price.

    Raises
    ------
    InputError
        Naming ``prices`` (as in :func:`momentum_12_1`) or ``days`` (not an integer >= 1).

    Examples
    --------
    >>> dates = pd.date_range("2024-01-01", periods=4, freq="D")
    >>> prices = pd.DataFrame({"stock": [100.0, 102.0, 104.0, 112.0]}, index=dates)
    >>> above_moving_average(prices, 3)["stock"].round(6).tolist()
    [nan, nan, 0.019608, 0.056604]
    """
    frame = _price_frame(prices, "prices")
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise InputError(f"must be an integer >= 1, got {days!r}", field="days")
    average = frame.rolling(int(days), min_periods=int(days)).mean()
    return frame / average - 1.0


def realized_volatility(returns: pd.DataFrame | pd.Series, window: int,
                        periods_per_year: float) -> pd.DataFrame | pd.Series:
    """Annualized realized volatility: rolling sample standard deviation × sqrt(periods/year).

    Parameters
    ----------
    returns
        Simple or log returns per period as fractions (0.01 = 1%), a Series or a frame with one
        column per asset.
    window
        Number of returns in each estimate, an integer >= 2 (the sample standard deviation,
        ddof = 1, needs two).
    periods_per_year
        Returns per year, > 0: 252 for trading days, 52 for weeks, 12 for months.

    Returns
    -------
    pandas.Series or pandas.DataFrame
        Same shape and index: annualized volatility as a fraction per sqrt(year) (0.16 = 16%).
        NaN for the first ``window - 1`` rows and where the window holds a missing return.

    Raises
    ------
    InputError
        Naming the argument: ``returns`` not a Series or frame or not numeric or infinite,
        ``window`` not an integer >= 2, ``periods_per_year`` not finite and > 0.

    Examples
    --------
    >>> daily = pd.Series([0.01, -0.01, 0.01, -0.01])
    >>> realized_volatility(daily, window=4, periods_per_year=252).round(4).tolist()
    [nan, nan, nan, 0.1833]
    """
    if not isinstance(returns, pd.Series | pd.DataFrame):
        raise InputError("must be a pandas Series or DataFrame of returns", field="returns")
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 2:
        raise InputError(f"must be an integer >= 2, got {window!r}", field="window")
    periods = number("periods_per_year", periods_per_year)
    if periods <= 0:
        raise InputError(f"must be > 0, got {periods!r}", field="periods_per_year")
    try:
        values = returns.astype(float)
    except (TypeError, ValueError):
        raise InputError("returns must be numeric", field="returns") from None
    if np.isinf(values.to_numpy()).any():
        raise InputError("returns must not be infinite", field="returns")
    return values.rolling(int(window), min_periods=int(window)).std(ddof=1) * math.sqrt(periods)
