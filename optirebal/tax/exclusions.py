"""Wash-sale inputs and the exclusions computed before the solve (DESIGN section 6).

Two optional inputs of a :class:`~optirebal.portfolio.Portfolio`:

``history`` (one row per past trade, every account of the household, IRA and Roth included)
    ``date``, ``account``, ``security``, ``shares`` (+ buy, - sell), ``price`` (currency per
    share), ``cost_basis`` (currency, basis of the shares sold; required on sells in taxable
    accounts, to tell a loss sale), optional ``lot_id``. Rows in date order, none after ``as_of``.
``scheduled`` (buys that will happen: dividend reinvestment, planned contributions)
    ``date`` (on or after ``as_of``), ``account``, ``security`` and ``shares`` (> 0) or ``value``
    (currency, > 0; converted at today's price).

The exclusions, for the 61-day window of IRC 1091(a) (30 calendar days before and after a sale):

1. *Group bought recently or soon.* A loss lot of a taxable account whose group has replacement
   shares (another lot of the group held anywhere in the household and acquired in the last 30
   days, or a scheduled buy in the next 30 days) gets no loss benefit in the program
   (``Tax.wash_sale_lots = "no_benefit"``; a sale is flagged as a wash sale with its disallowed
   loss) or may not be sold (``"no_sell"``). Only shares still held count as replacements
   bought before a sale, as in :func:`~optirebal.tax.ledger.wash_sale_ledger`.
2. *Group sold at a loss recently.* A loss sale in a taxable account in the last 30 days whose
   loss shares are not yet matched by later buys of the group blocks every buy of the group in
   every account until the day after its window ends; substitutes carry the exposure.
3. A replacement bought in an IRA or Roth makes the loss permanently lost (Rev. Rul. 2008-5):
   reported in the notes when the history shows one, and flagged when a scheduled buy would make
   one.

Functions here take validated frames and return plain numpy arrays and strings; nothing is
mutated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.frame_checks import positions
from optirebal.portfolio_frames import Columns
from optirebal.tax.ledger import WINDOW_DAYS

__all__ = ["Exclusions", "validate_history", "validate_scheduled", "wash_exclusions"]

_EPS = 1e-9
HISTORY_COLUMNS = ("date", "account", "security", "shares", "price", "cost_basis", "lot_id")
SCHEDULED_COLUMNS = ("date", "account", "security", "shares")


def _frame(frame: object, what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}",
                         field=what)
    return frame.copy()


def _dates(frame: pd.DataFrame, what: str) -> pd.Series:
    if "date" not in frame.columns:
        raise InputError("missing column", field=f"{what}.date")
    dates = pd.to_datetime(frame["date"], errors="coerce")
    bad = dates.isna()
    if bad.any():
        raise InputError(f"not a date: {frame['date'][bad].iloc[0]!r}", field=f"{what}.date",
                         row=frame.index[bad][0])
    return dates.dt.normalize()


def _known(frame: pd.DataFrame, what: str, column: str, known: pd.Index) -> None:
    if column not in frame.columns:
        raise InputError("missing column", field=f"{what}.{column}")
    # what ``map(str)`` and ``isin`` gave, through a list and a dict (a quarter of the cost
    # of checking a household's history: a few dozen names, four columns)
    names = [str(value) for value in frame[column].to_numpy()]
    unknown = positions(known, names) < 0
    if unknown.any():
        n = int(np.argmax(unknown))
        raise InputError(f"unknown {column} {names[n]!r}", field=f"{what}.{column}",
                         row=frame.index[n])
    frame[column] = names


def _numbers(frame: pd.DataFrame, what: str, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError("missing column", field=f"{what}.{column}")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return values


def validate_history(history: pd.DataFrame, securities: pd.DataFrame, accounts: pd.DataFrame,
                     lots: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Check a household trade history against the portfolio it led to.

    Parameters
    ----------
    history : DataFrame
        Columns of the module docstring; shares in units, prices and basis in currency.
    securities, accounts, lots : DataFrame
        The portfolio's validated frames (the lots are the holdings after the history).
    as_of : datetime.date
        The trade date; no history row may be later.

    Returns
    -------
    DataFrame
        A copy with ``date`` as ``datetime64[ns]``, ``shares``, ``price`` and ``cost_basis``
        as floats (``cost_basis`` NaN where not given), in the given order.

    Raises
    ------
    InputError
        Naming the field (``history.<column>``) and the row: unknown account or security, dates
        out of order or after ``as_of``, missing numbers, a sell in a taxable account without its
        cost basis, or a history that sells more than was held (the holdings before the history,
        rebuilt from the lots, would go negative).
    """
    what = "history"
    frame = _frame(history, what)
    dates = _dates(frame, what)
    _known(frame, what, "account", accounts.index)
    _known(frame, what, "security", securities.index)
    shares = _numbers(frame, what, "shares")
    price = _numbers(frame, what, "price")
    for column, values in (("shares", shares), ("price", price)):
        bad = ~np.isfinite(values) | ((values == 0) if column == "shares" else (values < 0))
        if bad.any():
            rule = "a non-zero number (+ buy, - sell)" if column == "shares" else "a number >= 0"
            raise InputError(f"must be {rule}, got {frame[column].iloc[int(np.argmax(bad))]!r}",
                             field=f"{what}.{column}", row=frame.index[int(np.argmax(bad))])
    day = dates.to_numpy(dtype="datetime64[D]")
    if len(day) > 1 and (np.diff(day) < np.timedelta64(0, "D")).any():
        n = int(np.argmax(np.diff(day) < np.timedelta64(0, "D"))) + 1
        raise InputError(f"dates out of order ({day[n]} after {day[n - 1]}); sort the history by "
                         "date, keeping the order of trades within a day", field=f"{what}.date",
                         row=frame.index[n])
    late = day > np.datetime64(as_of, "D")
    if late.any():
        raise InputError(f"trade dated after as_of {as_of}", field=f"{what}.date",
                         row=frame.index[int(np.argmax(late))])
    basis = (_numbers(frame, what, "cost_basis") if "cost_basis" in frame.columns
             else np.full(len(frame), np.nan))
    taxable_sell = (shares < 0) & (frame["account"].map(accounts["type"]) == "taxable").to_numpy()
    bad = taxable_sell & ~(np.isfinite(basis) & (basis >= 0))
    if bad.any():
        raise InputError("a sell in a taxable account needs the cost basis of the shares sold "
                         "(currency, >= 0), to tell a loss sale", field=f"{what}.cost_basis",
                         row=frame.index[int(np.argmax(bad))])
    # holdings before the history = holdings now - what the history traded; they must never
    # go negative along the way
    held = lots.groupby(["account", "security"])["quantity"].sum()
    keys = list(zip(frame["account"], frame["security"], strict=True))
    net: dict[tuple[str, str], float] = {}
    for key, n in zip(keys, shares, strict=True):
        net[key] = net.get(key, 0.0) + float(n)
    position = {key: float(held.get(key, 0.0)) - total for key, total in net.items()}
    for key, start in position.items():
        scale = max(1.0, abs(float(held.get(key, 0.0))), abs(net[key]))
        if start < -_EPS * scale:
            n = keys.index(key)
            raise InputError(f"the history buys {net[key]:g} more shares of {key[1]!r} in account "
                             f"{key[0]!r} than are held now ({float(held.get(key, 0.0)):g}); a "
                             "sale is missing from the history or a lot from the lots",
                             field=f"{what}.shares", row=frame.index[n])
    for n, key in enumerate(keys):
        scale = max(1.0, abs(float(held.get(key, 0.0))), abs(net[key]))
        before = position[key]
        position[key] = before + float(shares[n])
        if position[key] < -_EPS * scale:
            detail = (f"the history sells {-shares[n]:g} shares of {key[1]!r} in account "
                      f"{key[0]!r} but only {max(before, 0.0):g} were held (the holdings before "
                      "the history are rebuilt from the lots)")
            raise InputError(detail, field=f"{what}.shares", row=frame.index[n])
    frame["date"] = dates.astype("datetime64[ns]")
    frame["shares"], frame["price"], frame["cost_basis"] = shares, price, basis
    if "lot_id" in frame.columns:
        frame["lot_id"] = [None if pd.isna(x) else str(x) for x in frame["lot_id"]]
    return frame


def validate_scheduled(scheduled: pd.DataFrame, securities: pd.DataFrame,
                       accounts: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Check scheduled buys (dividend reinvestment, planned contributions).

    Parameters
    ----------
    scheduled : DataFrame
        ``date``, ``account``, ``security`` and ``shares`` (> 0) or ``value`` (currency, > 0).
    securities, accounts : DataFrame
        The portfolio's validated frames (prices convert a ``value`` to shares).
    as_of : datetime.date
        The trade date; a scheduled buy is on or after it.

    Returns
    -------
    DataFrame
        ``date`` (``datetime64[ns]``), ``account``, ``security``, ``shares`` (float), sorted by
        date (stable).

    Raises
    ------
    InputError
        Naming ``scheduled.<column>`` and the row: unknown account or security, a date before
        ``as_of``, shares or value missing or not positive.
    """
    what = "scheduled"
    frame = _frame(scheduled, what)
    dates = _dates(frame, what)
    _known(frame, what, "account", accounts.index)
    _known(frame, what, "security", securities.index)
    if "shares" in frame.columns:
        shares = _numbers(frame, what, "shares")
        column = "shares"
    elif "value" in frame.columns:
        price = securities["price"].reindex(frame["security"]).to_numpy(dtype=float)
        shares = _numbers(frame, what, "value") / price
        column = "value"
    else:
        raise InputError("give shares or value (currency) of each scheduled buy",
                         field=f"{what}.shares")
    bad = ~(np.isfinite(shares) & (shares > 0))
    if bad.any():
        raise InputError(f"must be a number > 0 (scheduled buys only), got "
                         f"{frame[column].iloc[int(np.argmax(bad))]!r}", field=f"{what}.{column}",
                         row=frame.index[int(np.argmax(bad))])
    early = dates.dt.date.to_numpy() < as_of
    if early.any():
        raise InputError(f"scheduled before as_of {as_of}; past buys belong in the history",
                         field=f"{what}.date", row=frame.index[int(np.argmax(early))])
    out = pd.DataFrame({"date": dates.astype("datetime64[ns]").to_numpy(),
                        "account": frame["account"].to_numpy(),
                        "security": frame["security"].to_numpy(), "shares": shares},
                       index=frame.index)
    return out.sort_values("date", kind="stable")


@dataclass(frozen=True, eq=False)
class Exclusions:
    """Wash-sale exclusions for one solve.

    Attributes
    ----------
    washed_lot : ndarray of bool, per lot
        Rule 1: a loss lot of a taxable account whose group has replacement shares.
    washed_reason : dict[int, str]
        Per washed lot position, why (the replacement purchases).
    blocked : dict[str, tuple[datetime.date, str]]
        Rule 2: group -> (first date a buy is free, why).
    notes : tuple of str
        Permanent losses seen in the history, scheduled buys that wash open losses.
    """

    washed_lot: np.ndarray
    washed_reason: dict[int, str] = field(default_factory=dict)
    blocked: dict[str, tuple[dt.date, str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _date(value: object) -> dt.date:
    """A lot's acquisition date as printed in a reason (a validated lot holds a date)."""
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) \
        else pd.Timestamp(value).date()


def wash_exclusions(securities: pd.DataFrame | Columns, accounts: pd.DataFrame | Columns,
                    lots: pd.DataFrame | Columns, lot_value: np.ndarray, as_of: dt.date,
                    history: pd.DataFrame | None, scheduled: pd.DataFrame | None, *,
                    days_held: np.ndarray | None = None) -> Exclusions:
    """Compute the pre-solve exclusions of rules 1 and 2 (module docstring).

    Parameters
    ----------
    securities, accounts, lots : DataFrame or Columns
        Validated portfolio frames (``securities.group`` is the substantially-identical group),
        or their :class:`~optirebal.portfolio_frames.Columns` (a portfolio's, read once).
    lot_value : ndarray
        Market value of each lot (currency), in the order of ``lots``.
    as_of : datetime.date
        The trade date.
    history, scheduled : DataFrame or None
        Validated by :func:`validate_history` and :func:`validate_scheduled`.
    days_held : ndarray of int, optional
        Per lot, calendar days from its acquisition to ``as_of`` (what the problem data has
        computed already); read from ``lots.acquired`` when not given.

    Returns
    -------
    Exclusions
    """
    # plain arrays and dicts rather than Series.map and comparisons: this runs for every
    # household of a batch, where pandas' fixed cost per operation was most of its time
    securities, accounts, lots = (frame if isinstance(frame, Columns) else Columns(frame)
                                  for frame in (securities, accounts, lots))
    kind = accounts["type"]
    if not (kind == "taxable").any():
        return Exclusions(np.zeros(len(lots.frame), dtype=bool))  # no loss can be washed
    kind_of = dict(zip(map(str, accounts.frame.index), kind, strict=True))
    group = securities["group"]
    group_of = dict(zip(map(str, securities.frame.index), group, strict=True))
    window = dt.timedelta(days=WINDOW_DAYS)
    lot_group = group[positions(securities.frame.index, lots["security"])]
    lot_taxable = kind[positions(accounts.frame.index, lots["account"])] == "taxable"
    basis = lots.floats("cost_basis")
    if days_held is None:
        stamps = pd.to_datetime(lots.frame["acquired"])
        recent = ((stamps >= pd.Timestamp(as_of - window))
                  & (stamps <= pd.Timestamp(as_of))).to_numpy()
    else:
        recent = (days_held >= 0) & (days_held <= WINDOW_DAYS)
    loss = lot_taxable & (lot_value < basis)
    acquired = lots["acquired"]
    notes: list[str] = []

    # rule 1: replacement shares around today (other recent lots, scheduled buys)
    soon: dict[str, list[str]] = {}
    if scheduled is not None:
        for date, account, security, count in zip(
                scheduled["date"], scheduled["account"], scheduled["security"],
                scheduled["shares"], strict=True):
            day = pd.Timestamp(date).date()
            if day <= as_of + window:
                where = "IRA/Roth" if kind_of[account] != "taxable" else "taxable"
                soon.setdefault(str(group_of[security]), []).append(
                    f"{count:g} {security} scheduled {day} in {account} ({where})")
    washed = np.zeros(len(lots.frame), dtype=bool)
    reasons: dict[int, str] = {}
    recent_lots: dict[str, list[int]] = {}  # per group, its lots bought in the last 30 days
    for m in map(int, np.flatnonzero(recent)):
        recent_lots.setdefault(lot_group[m], []).append(m)
    replaced = set(recent_lots) | set(soon)  # groups with any replacement candidate
    candidate = np.array([g in replaced for g in lot_group], dtype=bool) if replaced else \
        np.zeros(len(lots.frame), dtype=bool)
    for n in map(int, np.flatnonzero(loss & candidate)):
        g = lot_group[n]
        others = [m for m in recent_lots.get(g, []) if m != n]
        why = [f"lot {lots.frame.index[m]!r} bought {_date(acquired[m])}" for m in others]
        why += soon.get(g, [])
        if why:
            washed[n] = True
            reasons[int(n)] = f"wash sale: group {g!r} has replacement shares ({'; '.join(why)})"

    # rule 2: loss sales of the last 30 days not yet matched by later buys of the group
    blocked: dict[str, tuple[dt.date, str]] = {}
    if history is not None and len(history):
        hist_security = history["security"].to_numpy()
        hist_account = history["account"].to_numpy()
        hist_group = np.array([group_of[str(x)] for x in hist_security], dtype=object)
        hist_type = np.array([kind_of[str(x)] for x in hist_account], dtype=object)
        days = [pd.Timestamp(d).date() for d in history["date"]]
        shares = history["shares"].to_numpy(dtype=float)
        price = history["price"].to_numpy(dtype=float)
        cost_basis = history["cost_basis"].to_numpy(dtype=float)
        used = np.zeros(len(history))  # replacement shares already matched, Reg. 1.1091-1(e)
        for n in range(len(history)):
            if not (shares[n] < 0 and hist_type[n] == "taxable"):
                continue
            proceeds = -shares[n] * float(price[n])
            lost = float(cost_basis[n]) - proceeds
            if lost <= _EPS * max(1.0, proceeds):
                continue
            per_share = lost / -shares[n]
            open_shares = -shares[n]
            g = hist_group[n]
            for m in range(n + 1, len(history)):
                if open_shares <= _EPS or days[m] > days[n] + window:
                    break
                if shares[m] > 0 and hist_group[m] == g and used[m] < shares[m]:
                    take = min(open_shares, shares[m] - used[m])
                    used[m] += take
                    open_shares -= take
                    if hist_type[m] != "taxable":
                        notes.append(
                            f"wash sale: the {take * per_share:,.2f} loss on {take:g} shares of "
                            f"{hist_security[n]} sold {days[n]} is lost for good: "
                            f"replaced in {hist_account[m]} ({hist_type[m]}) on "
                            f"{days[m]} (Rev. Rul. 2008-5)")
            end = days[n] + window
            if open_shares > _EPS and end >= as_of:
                free = end + dt.timedelta(days=1)
                block = (f"wash sale: group {g!r} sold at a loss on {days[n]} "
                         f"({hist_security[n]} in {hist_account[n]}); "
                         f"no buys until {free}")
                if g not in blocked or blocked[g][0] < free:
                    blocked[g] = (free, block)
                for text in soon.get(g, []):
                    notes.append(f"wash sale: {text} washes the open loss of group {g!r} sold "
                                 f"{days[n]}")
    return Exclusions(washed_lot=washed, washed_reason=reasons, blocked=blocked,
                      notes=tuple(dict.fromkeys(notes)))
