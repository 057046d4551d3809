"""`Market`: prices and what else a backtest reads per date (income, volatility, volume, signals).

Every table is wide: a :class:`pandas.DatetimeIndex` of dates (sorted, unique) and one column per
security (or per signal). Prices are currency per share, ``income`` the cash paid per share on its
pay date, ``volatility`` the daily volatility (fraction of price per day) and ``traded_value`` the
daily traded value (currency per day) that the impact model reads. Build from prices
(:meth:`Market.from_prices`), from total returns (:meth:`Market.from_returns`) or from one tidy
frame (:meth:`Market.from_frame`); :func:`as_market` takes any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optirebal.errors import InputError

TIDY_COLUMNS = ("price", "return", "income", "volatility", "traded_value")


@dataclass(frozen=True, eq=False)
class Market:
    """Market data by date for a backtest.

    Attributes
    ----------
    prices : DataFrame
        Dates x securities, currency per share (> 0). A total-return series is a price with
        income reinvested.
    income : DataFrame or None
        Dates x securities, cash paid per share on that date (currency, >= 0); missing cells 0.
    volatility : DataFrame or None
        Dates x securities, daily volatility (fraction of price per day, >= 0).
    traded_value : DataFrame or None
        Dates x securities, daily traded value (currency per day, > 0).
    signals : DataFrame or None
        Dates x signal columns (any numbers), for signal policies.
    """

    prices: pd.DataFrame
    income: pd.DataFrame | None = None
    volatility: pd.DataFrame | None = None
    traded_value: pd.DataFrame | None = None
    signals: pd.DataFrame | None = None

    @classmethod
    def from_prices(cls, prices: pd.DataFrame, *, income: pd.DataFrame | None = None,
                    volatility: pd.DataFrame | None = None,
                    traded_value: pd.DataFrame | None = None,
                    signals: pd.DataFrame | None = None) -> Market:
        """Check wide frames (see the attributes) and build a market. Inputs are copied.

        Raises
        ------
        InputError
            Naming the column and the date: a missing value (a gap), a price that is not
            positive, unsorted or duplicate dates, an index that is not dates.
        """
        prices = _wide(prices, "prices", sign="positive")
        index = prices.index
        extra: dict[str, pd.DataFrame | None] = {}
        for name, frame, sign in (("income", income, "non-negative"),
                                  ("volatility", volatility, "non-negative"),
                                  ("traded_value", traded_value, "positive")):
            if frame is None:
                extra[name] = None
                continue
            frame = _wide(frame.fillna(0.0) if name == "income" else frame, name, sign=sign)
            _same_dates(frame, index, name)
            unknown = [c for c in frame.columns if c not in prices.columns]
            if unknown:
                raise InputError(f"no price for security {unknown[0]!r}", field=name,
                                 row=unknown[0])
            extra[name] = frame
        if signals is not None:
            signals = _wide(signals, "signals", gaps=True)
            _same_dates(signals, index, "signals")
        return cls(prices, signals=signals, **extra)

    @classmethod
    def from_returns(cls, returns: pd.DataFrame, *, start: str | pd.Timestamp | None = None,
                     start_prices: float | pd.Series = 1.0, **tables: pd.DataFrame | None
                     ) -> Market:
        """Prices from total returns: ``P_t = P_{t-1} (1 + r_t)``.

        Parameters
        ----------
        returns : DataFrame
            Dates x securities, the total return over the period ending on each date
            (fraction, > -1).
        start : date, optional
            The date of the starting prices, before the first return; by default one period
            before the first date (the index's inferred frequency).
        start_prices : float or Series
            Prices on ``start`` (currency per share), one for all or one per security.
        **tables
            ``income``, ``volatility``, ``traded_value``, ``signals`` as in :meth:`from_prices`
            (on the dates of ``returns``; the start row is filled from the first date).
        """
        returns = _wide(returns, "returns")
        low = returns.to_numpy() <= -1
        if low.any():
            r, c = np.argwhere(low)[0]
            raise InputError(f"a return of {returns.iat[r, c]:g} (<= -100%) on "
                             f"{returns.index[r].date()}", field=str(returns.columns[c]),
                             row=str(returns.index[r].date()))
        if start is None:
            freq = _frequency(returns.index) if len(returns) >= 3 else None
            if freq is None:
                raise InputError("cannot infer the date before the first return: give start=",
                                 field="start")
            start = returns.index[0] - freq
        first_day = pd.Timestamp(start)
        if first_day >= returns.index[0]:
            raise InputError(f"start {first_day.date()} is not before the first return "
                             f"{returns.index[0].date()}", field="start")
        first = (pd.Series(start_prices, index=returns.columns, dtype=float)
                 if np.isscalar(start_prices) else
                 pd.Series(start_prices, dtype=float).reindex(returns.columns))
        growth = (1 + returns).cumprod()
        prices = pd.concat([first.to_frame(first_day).T, growth * first])
        prices.index.name = returns.index.name
        filled = {name: None if table is None else
                  pd.concat([table.iloc[:1].set_axis([first_day]), table])
                  for name, table in tables.items()}
        return cls.from_prices(prices, **filled)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Market:
        """From a tidy frame: ``date``, ``security`` and ``price`` or ``return``, with optional
        ``income``, ``volatility`` and ``traded_value`` columns."""
        missing = [c for c in ("date", "security") if c not in frame.columns]
        if missing:
            raise InputError("a tidy market frame needs date and security columns",
                             field=missing[0])
        if ("price" in frame.columns) == ("return" in frame.columns):
            raise InputError("a tidy market frame needs a price or a return column (one)",
                             field="price")
        unknown = [c for c in frame.columns if c not in ("date", "security", *TIDY_COLUMNS)]
        if unknown:
            raise InputError(f"unknown market column {unknown[0]!r}; known: "
                             f"{', '.join(TIDY_COLUMNS)}", field=str(unknown[0]))
        dup = frame.duplicated(["date", "security"])
        if dup.any():
            row = frame[dup].iloc[0]
            raise InputError(f"two rows for {row['security']!r} on {row['date']}",
                             field="date", row=str(row["date"]))
        wide = {c: frame.pivot(index="date", columns="security", values=c)
                for c in TIDY_COLUMNS if c in frame.columns}
        for table in wide.values():
            table.index = pd.DatetimeIndex(pd.to_datetime(table.index, format="ISO8601"),
                                           name="date")
            table.columns.name = None
        if "return" in wide:
            return cls.from_returns(wide.pop("return"), **wide)
        return cls.from_prices(wide.pop("price"), **wide)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The market's dates."""
        return pd.DatetimeIndex(self.prices.index)

    def between(self, start: object = None, end: object = None) -> Market:
        """The market from ``start`` to ``end`` (inclusive; dates or ISO strings).

        Raises
        ------
        InputError
            When ``start`` or ``end`` lies outside the data or leaves no date.
        """
        dates = self.dates
        lo = dates[0] if start is None else pd.Timestamp(start)
        hi = dates[-1] if end is None else pd.Timestamp(end)
        for name, day in (("start", lo), ("end", hi)):
            if day < dates[0] or day > dates[-1]:
                raise InputError(f"{day.date()} is outside the market data "
                                 f"({dates[0].date()} to {dates[-1].date()})", field=name)
        if lo > hi:
            raise InputError(f"start {lo.date()} is after end {hi.date()}", field="start")
        keep = (dates >= lo) & (dates <= hi)

        def cut(table: pd.DataFrame | None) -> pd.DataFrame | None:
            return None if table is None else table.loc[keep]

        return Market(self.prices.loc[keep], cut(self.income), cut(self.volatility),
                      cut(self.traded_value), cut(self.signals))

    def covering(self, securities: Iterable[str]) -> None:
        """Raise :class:`InputError` naming the first of ``securities`` without a price."""
        for name in securities:
            if name not in self.prices.columns:
                raise InputError(f"the market has no price for security {name!r}",
                                 field="market", row=str(name))


def as_market(market: Market | pd.DataFrame) -> Market:
    """A :class:`Market` from a Market, a wide price frame or a tidy frame (``date`` and
    ``security`` columns)."""
    if isinstance(market, Market):
        return market
    if not isinstance(market, pd.DataFrame):
        raise InputError(f"market must be a Market or a DataFrame, got {type(market).__name__}",
                         field="market")
    if {"date", "security"} <= set(map(str, market.columns)):
        return Market.from_frame(market)
    return Market.from_prices(market)


def _wide(frame: pd.DataFrame, name: str, *, sign: str = "any", gaps: bool = False
          ) -> pd.DataFrame:
    """A checked float copy of a wide frame: dates sorted and unique, values finite (no gaps
    unless ``gaps``) and of ``sign``: ``"positive"``, ``"non-negative"`` or ``"any"``."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"must be a DataFrame (dates x columns), got {type(frame).__name__}",
                         field=name)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise InputError("the index must be a DatetimeIndex of dates", field=name)
    if frame.index.tz is not None:
        raise InputError(f"the dates carry a time zone ({frame.index.tz}); give calendar dates "
                         "without one (frame.tz_localize(None))", field=name)
    if not len(frame) or not len(frame.columns):
        raise InputError("no data", field=name)
    index = frame.index
    if index.has_duplicates:
        raise InputError(f"date {index[index.duplicated()][0].date()} appears twice",
                         field=name, row=str(index[index.duplicated()][0].date()))
    if not index.is_monotonic_increasing:
        where = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
        raise InputError(f"dates are not sorted: {index[where].date()} comes after "
                         f"{index[where - 1].date()}", field=name, row=str(index[where].date()))
    columns = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            raise InputError(f"column {column!r} holds booleans, not numbers", field=str(column))
        if not pd.api.types.is_numeric_dtype(values):
            # numbers held as objects are read one by one; a cell that is not one is named
            for day, value in values.items():
                if value is not None and (isinstance(value, bool)
                                          or not isinstance(value, int | float | np.number)):
                    raise InputError(f"{value!r} on {day.date()} is not a number",
                                     field=str(column), row=str(day.date()))
        columns[column] = values.astype(float)
    out = pd.DataFrame(columns, index=frame.index)
    out.columns = out.columns.map(str)
    values = out.to_numpy()
    bad = ~np.isfinite(values) if not gaps else np.isinf(values)
    if sign == "positive":
        bad |= values <= 0
    elif sign == "non-negative":
        bad |= values < 0
    if bad.any():
        r, c = np.argwhere(bad)[0]
        what = "a missing value (gap)" if np.isnan(values[r, c]) else f"the value {values[r, c]:g}"
        need = "finite" if sign == "any" else f"finite and {sign}"
        raise InputError(f"{what} on {index[r].date()}: values must be {need}",
                         field=str(out.columns[c]), row=str(index[r].date()))
    return out


def _same_dates(frame: pd.DataFrame, index: pd.DatetimeIndex, name: str) -> None:
    if not frame.index.equals(index):
        extra = frame.index.difference(index)
        missing = index.difference(frame.index)
        day = (missing if len(missing) else extra)[0]
        raise InputError(f"dates differ from the prices' (first: {day.date()})", field=name,
                         row=str(day.date()))


def _frequency(index: pd.DatetimeIndex) -> pd.DateOffset | None:
    """The frequency pandas infers for ``index``, as an offset (None if it infers none).
    ``pd.infer_freq`` returns a string and warns that a future pandas returns an offset; from
    pandas 3.1 the offset is asked for (``future.infer_freq_returns_offset``), before it the
    string is turned into one: the same offset either way."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            freq = pd.infer_freq(index)
    except pd.errors.OptionError:  # a pandas without the option: a string
        freq = pd.infer_freq(index)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq)
