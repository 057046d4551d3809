"""Validation of the inputs of an execution schedule into numpy arrays (private).

Everything a user passes is checked here, once, and turned into a :class:`Plan`: the program, the
rounding and the reports never see pandas objects or unchecked numbers. Errors name the field
(column or argument) and the row (security or order index label).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Hashable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd

from optirebal.errors import InfeasibleError, InputError
from optirebal.execution._risk import read_risk
from optirebal.execution.impact import (
    AlmgrenThumImpact,
    ImpactModel,
    ImpactTerms,
    LinearImpact,
    PowerImpact,
)
from optirebal.risk import RiskModel

MARKET_COLUMNS = ("price", "daily_volatility", "daily_volume")
"""Columns every market frame needs: currency per share, fraction per day, shares per day."""

ORDER_COLUMNS = ("security", "shares", "account", "side", "price", "value", "reason")
"""Columns an orders frame may carry: ``security`` and ``shares`` are read; the others are those
of :attr:`optirebal.result.Result.orders`, accepted so that a result's orders pass as they are."""


def _known_columns(frame: pd.DataFrame, known: list[str], what: str) -> None:
    """An unknown (misspelled) column of ``frame`` is an InputError with the nearest known name:
    read silently, ``daily_volumne`` would leave the schedule without the volume it names."""
    for name in map(str, frame.columns):
        if name in known or name.startswith("exposure_"):
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known columns: {', '.join(known)}"
        raise InputError(f"unknown column in {what}{hint}", field=name)


def _market_columns() -> list[str]:
    """Columns a market frame may carry: the schedule's own, and a portfolio's securities
    columns (so that ``portfolio.securities`` with the volume columns added passes as it is)."""
    from optirebal.portfolio_frames import SECURITIES

    return [*MARKET_COLUMNS, "shares_outstanding", *SECURITIES.columns]

WHOLE_SHARES = 1e-9
"""A parent order within this relative distance of a whole number is that whole number (sums of
per-account orders such as 33.3 + 66.7 carry float noise)."""


@dataclass(frozen=True, eq=False)
class Plan:
    """Validated data of one schedule. Arrays over *active* securities (nonzero orders) unless
    said otherwise.

    Attributes
    ----------
    securities : tuple
        Every security of the orders, in order of first appearance (zero orders included).
    orders : ndarray, shape (securities,)
        Parent order per security, signed shares (whole numbers snapped).
    active : ndarray of bool, shape (securities,)
        True where the order is not zero.
    price : ndarray, shape (active,)
        Currency per share.
    horizon_days : float
        Trading days from the first interval's start to the last one's end.
    interval_volume : ndarray, shape (active, intervals)
        Expected market volume per interval, shares.
    cap_shares : ndarray, shape (active, intervals), optional
        Most whole shares a child order may have (participation cap), or None.
    factor : ndarray, shape (active, factors)
        Daily return covariance factor: covariance ``factor @ factor.T + diag(specific ** 2)``.
    specific : ndarray, shape (active,)
        Daily specific (idiosyncratic) volatility, fraction.
    impact : ImpactTerms
        Impact coefficients of the chosen model on this market data.
    """

    securities: tuple[Hashable, ...]
    orders: np.ndarray
    active: np.ndarray
    price: np.ndarray
    horizon_days: float
    interval_volume: np.ndarray
    cap_shares: np.ndarray | None
    factor: np.ndarray
    specific: np.ndarray
    impact: ImpactTerms

    @property
    def intervals(self) -> int:
        """Number of intervals N."""
        return int(self.interval_volume.shape[1])

    @property
    def tau(self) -> float:
        """Length of one interval, trading days."""
        return self.horizon_days / self.intervals

    @property
    def active_orders(self) -> np.ndarray:
        """Signed parent orders of the active securities, shares."""
        return self.orders[self.active]

    def variance(self, shares: np.ndarray) -> float:
        """Variance (currency squared) of the cost of child orders ``shares`` (active, N).

        Almgren and Chriss: the holdings still to trade after interval k's child order, valued
        at the price, carry the price risk of the next ``tau`` days,
        :math:`V = \\tau \\sum_{k=1}^{N} z_k^\\top \\Sigma z_k`.
        """
        left = self.active_orders[:, None] - np.cumsum(shares, axis=1)
        value = left * self.price[:, None]
        systematic = np.sum((self.factor.T @ value) ** 2)
        specific = np.sum((self.specific[:, None] * value) ** 2)
        return float(self.tau * (systematic + specific))


def prepare(
    orders: Any,
    market: pd.DataFrame,
    *,
    horizon_days: float,
    intervals: int,
    impact: ImpactModel,
    participation_cap: float | None,
    volume_profile: Any,
    covariance: pd.DataFrame | RiskModel | None,
    trading_days_per_year: float,
) -> Plan:
    """Check every input and gather the arrays of one schedule (see the public functions).

    Raises
    ------
    InputError
        For any bad input, naming the field and the row.
    InfeasibleError
        When the participation cap cannot finish an order within the horizon.
    """
    horizon = _number(horizon_days, "horizon_days", positive=True)
    count = _intervals(intervals)
    if not isinstance(impact, (LinearImpact, PowerImpact, AlmgrenThumImpact)):
        raise InputError(
            f"must be LinearImpact, PowerImpact or AlmgrenThumImpact, got {impact!r}",
            field="impact",
        )
    cap = (
        None
        if participation_cap is None
        else _number(participation_cap, "participation_cap", positive=True)
    )
    days_per_year = _number(trading_days_per_year, "trading_days_per_year", positive=True)
    profile = _profile(volume_profile, count, horizon)

    totals = read_orders(orders)
    securities = tuple(totals.index)
    order = totals.to_numpy(dtype=float)
    active = order != 0
    need_outstanding = isinstance(impact, AlmgrenThumImpact) and impact.needs_shares_outstanding
    columns = _market(market, securities, active, need_outstanding)
    price = columns["price"][active]
    volatility = columns["daily_volatility"][active]
    daily_volume = columns["daily_volume"][active]
    outstanding = columns["shares_outstanding"][active] if need_outstanding else None

    interval_volume = daily_volume[:, None] * profile[None, :]
    live = [s for s, a in zip(securities, active, strict=True) if a]
    cap_shares = None
    if cap is not None:
        cap_shares = _cap_shares(cap, interval_volume, order[active], live, horizon)
    factor, specific = read_risk(covariance, live, volatility, days_per_year)
    terms = impact.terms(price, volatility, daily_volume, interval_volume, outstanding)
    return Plan(
        securities=securities,
        orders=order,
        active=active,
        price=price,
        horizon_days=horizon,
        interval_volume=interval_volume,
        cap_shares=cap_shares,
        factor=factor,
        specific=specific,
        impact=terms,
    )


def read_orders(orders: Any) -> pd.Series:
    """Parent orders summed per security (signed shares), in order of first appearance.

    ``orders`` is a DataFrame with columns ``security`` and ``shares`` or any object whose
    ``orders`` attribute is one (a :class:`~optirebal.result.Result`). Several rows of one security
    (one per account) are summed; near-whole sums are snapped to the whole number.
    """
    frame = orders if isinstance(orders, pd.DataFrame) else getattr(orders, "orders", None)
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            "must be a DataFrame with columns 'security' and 'shares' (signed, + buy) or an "
            "object with such an 'orders' attribute, such as a Result; got "
            f"{type(orders).__name__}",
            field="orders",
        )
    _known_columns(frame, list(ORDER_COLUMNS), "orders")
    for column in ("security", "shares"):
        if column not in frame.columns:
            raise InputError(f"orders need a column {column!r}", field=column)
    missing = frame["security"].isna().to_numpy()
    if missing.any():
        raise InputError(
            "security is missing", field="security", row=frame.index[int(np.argmax(missing))]
        )
    shares = pd.to_numeric(frame["shares"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(shares)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"must be a finite number of shares, got {frame['shares'].iloc[i]!r}",
            field="shares",
            row=frame.index[i],
        )
    keys = frame["security"].to_numpy(dtype=object)
    totals = (
        pd.Series(shares, index=pd.Index(keys, dtype=object)).groupby(level=0, sort=False).sum()
    )
    values = totals.to_numpy(dtype=float)
    whole = np.round(values)
    snap = np.abs(values - whole) <= WHOLE_SHARES * np.maximum(1.0, np.abs(values))
    return pd.Series(np.where(snap, whole, values), index=totals.index, name="shares")


def _number(value: Any, field: str, *, positive: bool) -> float:
    """A finite real number, > 0 when ``positive``, else >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise InputError(
            f"must be finite and {'> 0' if positive else '>= 0'}, got {value!r}", field=field
        )
    return number


def _intervals(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"must be a whole number of intervals, got {value!r}", field="intervals")
    if int(value) < 1:
        raise InputError(f"need at least one interval, got {value!r}", field="intervals")
    return int(value)


def _profile(volume_profile: Any, intervals: int, horizon: float) -> np.ndarray:
    """Expected volume per interval as a fraction of daily volume; flat ``tau`` by default."""
    if volume_profile is None:
        return np.full(intervals, horizon / intervals)
    try:
        profile = np.asarray(volume_profile, dtype=float)
    except (TypeError, ValueError):
        raise InputError("must be numbers, one per interval", field="volume_profile") from None
    if profile.shape != (intervals,):
        raise InputError(
            f"needs one value per interval ({intervals}), got shape {profile.shape}",
            field="volume_profile",
        )
    bad = ~np.isfinite(profile) | (profile <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"must be finite and > 0, got {profile[i]!r}", field="volume_profile", row=i
        )
    return profile


def _market(
    market: Any, securities: tuple[Hashable, ...], active: np.ndarray, need_outstanding: bool
) -> dict[str, np.ndarray]:
    """The market columns for ``securities`` (all of them, zero orders included), checked."""
    if not isinstance(market, pd.DataFrame):
        raise InputError(
            f"must be a DataFrame indexed by security, got {type(market).__name__}", field="market"
        )
    _known_columns(market, _market_columns(), "market")
    if not market.index.is_unique:
        duplicated = market.index[market.index.duplicated()][0]
        raise InputError("security appears twice in market", field="market", row=duplicated)
    positions = market.index.get_indexer(pd.Index(securities, dtype=object))
    if (positions < 0).any():
        missing = securities[int(np.argmax(positions < 0))]
        raise InputError(
            "security is in the orders but not in market (a typo?)", field="security", row=missing
        )
    needed = MARKET_COLUMNS + (("shares_outstanding",) if need_outstanding else ())
    columns = {}
    for column in needed:
        if column not in market.columns:
            raise InputError(f"market needs a column {column!r}", field=column)
        raw = market[column].iloc[positions]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        # Price and every quantity a traded security divides by must be strictly positive.
        strict = np.ones_like(active) if column == "price" else active
        bad = ~np.isfinite(values) | (values < 0) | (strict & (values == 0))
        if bad.any():
            i = int(np.argmax(bad))
            rule = "> 0" if strict[i] else ">= 0"
            raise InputError(
                f"must be finite and {rule}, got {raw.iloc[i]!r}", field=column, row=securities[i]
            )
        columns[column] = values
    return columns


def _cap_shares(
    cap: float,
    interval_volume: np.ndarray,
    orders: np.ndarray,
    securities: list[Hashable],
    horizon: float,
) -> np.ndarray:
    """Whole shares each child order may trade, after checking that every order can finish.

    Raises
    ------
    InfeasibleError
        Naming each order the cap cannot finish and the intervals (of this length, at the average
        interval volume) it would need.
    """
    # The (1 + 1e-12) keeps 0.1 * 1000 from flooring to 99 through float noise.
    shares = np.floor(cap * interval_volume * (1.0 + 1e-12))
    need = np.ceil(np.abs(orders) * (1.0 - 1e-12))
    short = np.flatnonzero(shares.sum(axis=1) < need)
    if short.size == 0:
        return shares
    count = interval_volume.shape[1]
    tau = horizon / count
    lines, conflicts = [], []
    for i in short:
        per_interval = math.floor(cap * float(np.mean(interval_volume[i])) * (1.0 + 1e-12))
        if per_interval >= 1:
            needed = math.ceil(need[i] / per_interval)
            advice = f"needs at least {needed} intervals ({needed * tau:.4g} days)"
        else:
            advice = "cannot trade one share per interval at this cap"
        lines.append(
            f"{securities[i]!r}: {abs(orders[i]):,.0f} shares, at most "
            f"{shares[i].sum():,.0f} in the horizon; {advice}"
        )
        conflicts.append(f"participation cap {securities[i]!r}")
    raise InfeasibleError(
        f"participation cap {cap:g} of interval volume is too low to finish within {count} "
        f"intervals of {tau:.4g} days: " + "; ".join(lines) + ". Raise participation_cap, "
        "lengthen the horizon (more intervals of the same length), or split the order.",
        conflicts=[*conflicts, "horizon"],
    )
