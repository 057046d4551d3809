"""Holding period by the calendar rule (IRC 1222, Rev. Rul. 66-7): known answers and properties."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optirebal.errors import InputError
from optirebal.tax.holding import (
    days_to_long_term,
    days_to_long_term_array,
    is_long_term,
    is_long_term_array,
    long_term_date,
    long_term_date_array,
    to_day_array,
)

D = dt.date

# (acquired, sold, long-term?) worked by hand from "count from the day after acquisition, the day of
# sale included, more than one calendar year".
KNOWN = [
    (D(2023, 2, 5), D(2024, 2, 5), False),  # IRS Pub. 550 example
    (D(2023, 2, 5), D(2024, 2, 6), True),  # IRS Pub. 550 example
    (D(2023, 3, 1), D(2024, 3, 1), False),  # 366 days across 29 Feb 2024, still short-term
    (D(2023, 3, 1), D(2024, 3, 2), True),
    (D(2024, 2, 29), D(2025, 2, 28), False),
    (D(2024, 2, 29), D(2025, 3, 1), True),
    (D(2023, 2, 28), D(2024, 2, 29), False),  # holding year is 2023-03-01 .. 2024-02-29
    (D(2023, 2, 28), D(2024, 3, 1), True),
    (D(2024, 2, 28), D(2025, 2, 28), False),
    (D(2024, 2, 28), D(2025, 3, 1), True),
    (D(2023, 12, 31), D(2024, 12, 31), False),
    (D(2023, 12, 31), D(2025, 1, 1), True),
    (D(2012, 9, 19), D(2013, 9, 19), False),
    (D(2012, 9, 19), D(2013, 9, 20), True),
    (D(2024, 1, 31), D(2025, 1, 31), False),
    (D(2024, 1, 31), D(2025, 2, 1), True),
]


@pytest.mark.parametrize(("acquired", "sold", "expected"), KNOWN)
def test_known_holding_periods(acquired: dt.date, sold: dt.date, expected: bool) -> None:
    assert is_long_term(acquired, sold) is expected


@pytest.mark.parametrize(
    ("acquired", "first_long"),
    [
        (D(2023, 3, 1), D(2024, 3, 2)),
        (D(2024, 2, 29), D(2025, 3, 1)),
        (D(2023, 2, 28), D(2024, 3, 1)),
        (D(2024, 2, 28), D(2025, 3, 1)),
        (D(2024, 12, 31), D(2026, 1, 1)),
        (D(2014, 5, 5), D(2015, 5, 6)),
    ],
)
def test_long_term_date(acquired: dt.date, first_long: dt.date) -> None:
    assert long_term_date(acquired) == first_long


def test_days_to_long_term() -> None:
    assert days_to_long_term(D(2024, 2, 29), D(2025, 2, 28)) == 1
    assert days_to_long_term(D(2024, 2, 29), D(2025, 3, 1)) == 0
    assert days_to_long_term(D(2024, 2, 29), D(2030, 1, 1)) == 0
    assert days_to_long_term(D(2023, 3, 1), D(2023, 3, 1)) == 367
    assert days_to_long_term(D(2023, 3, 1), D(2024, 3, 1)) == 1


def test_accepts_timestamps_and_datetime64() -> None:
    assert is_long_term(pd.Timestamp("2023-03-01 15:30"), np.datetime64("2024-03-02"))
    assert long_term_date(dt.datetime(2024, 2, 29, 23, 59)) == D(2025, 3, 1)


def test_vectorized_matches_scalar_on_known_cases() -> None:
    acquired = pd.Series(pd.to_datetime([a for a, _, _ in KNOWN]))
    sold = pd.Series(pd.to_datetime([s for _, s, _ in KNOWN]))
    expected = np.array([e for _, _, e in KNOWN])
    np.testing.assert_array_equal(is_long_term_array(acquired, sold.to_numpy()), expected)
    first = long_term_date_array(acquired)
    assert first.dtype == np.dtype("datetime64[D]")
    assert [x.item() for x in first] == [long_term_date(a) for a, _, _ in KNOWN]


def test_vectorized_inputs_of_every_kind() -> None:
    dates = [D(2024, 2, 29), D(2023, 3, 1)]
    as_of = D(2025, 2, 28)
    expected_days = np.array([1, 0])
    for acquired in (
        pd.Series(dates, dtype=object),
        pd.Series(pd.to_datetime(dates)),
        np.array(dates, dtype="datetime64[D]"),
        np.array(dates, dtype="datetime64[ns]"),
        pd.DatetimeIndex(dates),
        dates,
    ):
        got = days_to_long_term_array(acquired, as_of)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected_days)
        np.testing.assert_array_equal(is_long_term_array(acquired, as_of), [False, True])


def test_missing_date_names_field_and_row() -> None:
    acquired = pd.Series([pd.Timestamp("2024-01-02"), pd.NaT], index=["lot1", "lot2"])
    with pytest.raises(InputError, match="field 'acquired', row 'lot2'") as info:
        is_long_term_array(acquired, D(2025, 1, 1))
    assert info.value.field == "acquired"
    assert info.value.row == "lot2"
    with pytest.raises(InputError, match="field 'sold'"):
        is_long_term(D(2024, 1, 1), None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="field 'acquired'"):
        days_to_long_term_array(["not a date"], D(2024, 1, 1))


dates = st.dates(min_value=D(1950, 1, 1), max_value=D(2200, 12, 31))


@given(dates)
def test_first_long_term_date_is_one_calendar_year_after_the_day_after(acquired: dt.date) -> None:
    first = long_term_date(acquired)
    start = acquired + dt.timedelta(days=1)
    # 365 or 366 days after the start, plus one when the start is 29 February (rolls to 1 March)
    assert 366 <= (first - acquired).days <= 367
    if (start.month, start.day) == (2, 29):
        assert first == D(start.year + 1, 3, 1)
    else:
        assert first == start.replace(year=start.year + 1)
    assert not is_long_term(acquired, first - dt.timedelta(days=1))
    assert is_long_term(acquired, first)


@given(dates, st.integers(min_value=0, max_value=800))
def test_days_to_long_term_counts_down_to_zero(acquired: dt.date, held: int) -> None:
    as_of = acquired + dt.timedelta(days=held)
    days = days_to_long_term(acquired, as_of)
    assert days >= 0
    assert (days == 0) == is_long_term(acquired, as_of)
    assert is_long_term(acquired, as_of + dt.timedelta(days=days))
    if days > 0:
        assert not is_long_term(acquired, as_of + dt.timedelta(days=days - 1))


@given(st.lists(dates, min_size=1, max_size=30), dates)
def test_array_forms_agree_with_scalar_forms(acquired: list[dt.date], as_of: dt.date) -> None:
    series = pd.Series(acquired)
    np.testing.assert_array_equal(
        is_long_term_array(series, as_of), [is_long_term(a, as_of) for a in acquired]
    )
    np.testing.assert_array_equal(
        days_to_long_term_array(series, as_of), [days_to_long_term(a, as_of) for a in acquired]
    )


@given(st.lists(dates, min_size=1, max_size=30))
def test_date_objects_convert_as_pandas_parses_them(days: list[dt.date]) -> None:
    """``date`` objects take the ordinal path; datetimes and strings pandas' parse (one
    answer: the calendar day)."""
    expected = pd.to_datetime(pd.Series(days)).to_numpy().astype("datetime64[D]")
    np.testing.assert_array_equal(to_day_array(np.array(days, dtype=object), "d"), expected)
    np.testing.assert_array_equal(to_day_array(pd.Series(days, dtype=object), "d"), expected)
    stamps = [dt.datetime(d.year, d.month, d.day, 23, 59) for d in days]
    np.testing.assert_array_equal(to_day_array(np.array(stamps, dtype=object), "d"), expected)
    np.testing.assert_array_equal(to_day_array([d.isoformat() for d in days], "d"), expected)


def test_a_missing_date_among_date_objects_names_its_row() -> None:
    with pytest.raises(InputError, match="missing date") as caught:
        to_day_array(pd.Series([D(2024, 1, 2), None], index=["a", "b"], dtype=object), "acquired")
    assert caught.value.row == "b"
