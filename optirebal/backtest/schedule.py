"""Look dates: which market dates a :class:`~optirebal.policy.Schedule` looks on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.policy import Schedule

PERIODS = {"weekly": "W", "monthly": "M", "quarterly": "Q", "annual": "Y"}
"""Named looks on the last market date of each calendar period (pandas period codes)."""


def look_mask(schedule: Schedule, dates: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask over ``dates`` (the backtest's market dates): True on a look date.

    Calendar looks fall on the last market date of each period (the last trading day of the
    month for ``"monthly"``), so a monthly series looks on every date and a daily one once a
    month. A period cut short by the end of the data has no look.

    Raises
    ------
    InputError
        An explicit look date that is not a market date between the first and last date.
    """
    n = len(dates)
    if schedule.dates:
        mask = np.zeros(n, dtype=bool)
        for k, day in enumerate(schedule.dates):
            where = dates.get_indexer([pd.Timestamp(day)])[0]
            if where < 0:
                raise InputError(f"look date {day} is not a date of the market data "
                                 f"({dates[0].date()} to {dates[-1].date()})",
                                 field="schedule.dates", row=str(k))
            mask[where] = True
        return mask
    looks = schedule.looks
    if looks in ("every", "daily"):
        return np.ones(n, dtype=bool)
    if looks == "never":
        return np.zeros(n, dtype=bool)
    if looks == "semiannual":
        mask = _period_ends(dates, "Q") & ~_partial_last(dates, "Q")
        return mask & np.isin(dates.month, (6, 12))
    if looks in PERIODS:
        mask = _period_ends(dates, PERIODS[looks])
        return mask & ~_partial_last(dates, PERIODS[looks])
    # a pandas offset alias: the last market date on or before each anchor
    anchors = pd.date_range(dates[0], dates[-1], freq=looks)
    where = dates.searchsorted(anchors, side="right") - 1
    mask = np.zeros(n, dtype=bool)
    mask[where[where >= 0]] = True
    return mask


def _period_ends(dates: pd.DatetimeIndex, code: str) -> np.ndarray:
    """True on the last market date of each calendar period."""
    periods = dates.to_period(code)
    return np.append(periods[1:] != periods[:-1], True)


def _partial_last(dates: pd.DatetimeIndex, code: str) -> np.ndarray:
    """True on the last date when the data stop before its period ends (no look mid-period):
    the period of the last date continues past it by more than the data's usual spacing."""
    mask = np.zeros(len(dates), dtype=bool)
    if len(dates) < 2:
        return mask
    end = dates[-1].to_period(code).end_time.normalize()
    step = pd.Timedelta(np.median(np.diff(dates.asi8)), "ns")
    mask[-1] = end - dates[-1] >= max(step, pd.Timedelta(days=4))
    return mask
