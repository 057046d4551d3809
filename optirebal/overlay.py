r"""Derivative overlay: instruments, their exposure, margin and whole contracts (DESIGN section 7).

A derivative position is a notional ``o`` (a weight: fraction of pre-trade NAV ``V``) in an
instrument whose exposure per unit of notional is known: an index future or a total-return swap
carries 1.0 of its class (or the loadings given), an option its delta times the loadings. The
program chooses the change ``u = o - o0``; this module turns portfolio and policy into the arrays
of that choice (:class:`OverlayData`); :mod:`optirebal.synthetic` decodes a solution into whole
contracts and builds the ``synthetic`` frame of the result.

The ``derivatives`` frame (index ``instrument``), money in the base currency:

``price`` (> 0)
    Level of the underlying in currency per unit (an index future: the index level).
``multiplier`` (> 0)
    Currency per unit of price per contract: the notional of one contract is ``price x multiplier``.
``kind``
    ``future`` (default), ``swap`` or ``option``.
``delta``
    Options only: exposure per unit of underlying notional, in ``[-1, 1]``, not zero. The
    linearization holds for small moves of the underlying over the horizon (gamma is ignored).
``premium``
    Options only (default 0): option price in the units of ``price``; a contract is worth
    ``premium x multiplier`` and that value is part of the NAV.
``exposure_<class>`` columns, or an ``asset_class`` column
    Exposure of one unit of underlying notional to each asset class (an ``asset_class`` column
    means 1.0 to that class). Every class must be one the securities load on.
``half_spread_bps`` (default 0)
    Cost of trading, in bp of the notional traded.
``margin_rate`` (default 0)
    Initial margin as a fraction of the absolute notional held, reserved from the cash of the
    policy's margin account.
``carry_per_year`` (default 0, >= 0)
    Roll or financing cost as a fraction of the absolute notional per year.
``basis_volatility`` (default 0)
    Annualized volatility of the instrument's return minus its classes' returns; it enters the
    tracking error as an independent risk of the instrument.
``contracts`` (default 0)
    Current position in whole contracts (signed: + long, - short).

In weights, with ``n`` contracts, ``o = n x price x multiplier / V``.

.. math::

    \text{exposure: } x \mathrel{+}= D\,o, \qquad
    \text{costs: } \textstyle\sum_d h_d |u_d| + H \sum_d c_d |o_d|, \qquad
    \text{margin: } \textstyle\sum_d (m_d + b) |o_d|, \qquad
    \text{basis risk: } \tfrac{\gamma H}{2} \sum_d \sigma_{b,d}^2 (o_d / (1 + F))^2 .

When the cash class is in the targets, a derivative's financing leg loads on it: its cash-class
exposure per unit of notional is minus the sum of its other exposures (a long future equitizes
cash).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.program.caps import close

if TYPE_CHECKING:
    from optirebal.policy import Policy
    from optirebal.portfolio import Portfolio

KINDS = ("future", "swap", "option")
EXPOSURE_PREFIX = "exposure_"
DERIVATIVE_DEFAULTS: Mapping[str, float] = {
    "half_spread_bps": 0.0,
    "margin_rate": 0.0,
    "carry_per_year": 0.0,
    "basis_volatility": 0.0,
    "contracts": 0.0,
    "premium": 0.0,
}
NO_CAP = 2.0
"""Stand-in for an absent notional cap, in weights: twice the NAV, or twice the current position
(per instrument; the sum of them for the gross cap) when that is more. Restoring an allocation
never takes that much; a larger stand-in (1,000 x NAV) leaves the interior-point solver badly
scaled."""


# --- portfolio side: validation ----------------------------------------------------------------


def validate_derivatives(frame: pd.DataFrame | None, classes: list[str]) -> pd.DataFrame:
    """Check a ``derivatives`` frame against the securities' classes and fill the defaults.

    Parameters
    ----------
    frame : DataFrame or None
        See the module docstring; ``instrument`` may be the index or a column.
    classes : list of str
        Asset classes the securities load on.

    Returns
    -------
    DataFrame
        Index ``instrument``; numeric columns filled, ``kind`` and ``delta`` set, and one
        ``exposure_<class>`` column per class in ``classes`` (per unit of underlying notional,
        delta not applied).

    Raises
    ------
    InputError
        Naming the field and the instrument: a non-positive price or multiplier, an unknown
        class, a bad kind or delta, fractional contracts, an instrument with no exposure.
    """
    from optirebal.portfolio import _check_finite, _indexed

    columns = [f"{EXPOSURE_PREFIX}{k}" for k in classes]
    if frame is None:
        empty = pd.DataFrame(columns=["price", "multiplier", "kind", "delta",
                                      *DERIVATIVE_DEFAULTS, *columns])
        empty.index.name = "instrument"
        return empty
    der = _indexed(frame, "instrument", "derivatives")
    for column in ("price", "multiplier"):
        if column not in der.columns:
            raise InputError("missing column in derivatives", field=column)
        _check_finite(der, column, minimum=0.0, strict=True)
        der[column] = der[column].astype(float)
    for column, default in DERIVATIVE_DEFAULTS.items():
        if column not in der.columns:
            der[column] = default
        der[column] = pd.to_numeric(der[column], errors="coerce").fillna(default)
    for column in ("half_spread_bps", "margin_rate", "carry_per_year", "basis_volatility",
                   "premium"):
        _check_finite(der, column, minimum=0.0)
    _check_finite(der, "contracts")
    fractional = der["contracts"] != np.round(der["contracts"])
    if fractional.any():
        row = der.index[fractional][0]
        raise InputError(f"contracts must be whole, got {der.loc[row, 'contracts']!r}",
                         field="contracts", row=row)
    kind = der["kind"] if "kind" in der.columns else pd.Series("future", index=der.index)
    der["kind"] = kind.fillna("future").map(str).str.lower()
    bad = ~der["kind"].isin(KINDS)
    if bad.any():
        row = der.index[bad][0]
        raise InputError(f"kind must be one of {KINDS}, got {der.loc[row, 'kind']!r}",
                         field="kind", row=row)
    der["delta"] = _deltas(der)
    linear = der["kind"] != "option"
    if (linear & (der["premium"] != 0)).any():
        row = der.index[linear & (der["premium"] != 0)][0]
        raise InputError("a premium applies to options only", field="premium", row=row)

    exposure = _exposure_columns(der, classes)
    silent = (exposure.abs().sum(axis=1) == 0).to_numpy()
    if silent.any():
        raise InputError("the instrument has no exposure to any class", field="exposures",
                         row=der.index[silent][0])
    keep = [c for c in der.columns if not c.startswith(EXPOSURE_PREFIX) and c != "asset_class"]
    return pd.concat([der[keep], exposure], axis=1)


def _deltas(der: pd.DataFrame) -> pd.Series:
    """Delta per instrument: 1 for futures and swaps, the given delta in [-1, 1] for options."""
    given = pd.to_numeric(der["delta"], errors="coerce") if "delta" in der.columns \
        else pd.Series(np.nan, index=der.index)
    option = der["kind"] == "option"
    missing = option & (given.isna() | (given == 0))
    if missing.any():
        raise InputError("an option needs a non-zero delta", field="delta",
                         row=der.index[missing][0])
    outside = option & ((given < -1) | (given > 1))
    if outside.any():
        row = der.index[outside][0]
        raise InputError(f"delta must be in [-1, 1], got {given[row]!r}", field="delta", row=row)
    odd = ~option & given.notna() & (given != 1)
    if odd.any():
        raise InputError("delta applies to options only (futures and swaps carry 1.0)",
                         field="delta", row=der.index[odd][0])
    return given.where(option, 1.0).astype(float)


def _exposure_columns(der: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per unit of underlying notional, one ``exposure_<class>`` column per known class."""
    given = [c for c in der.columns if c.startswith(EXPOSURE_PREFIX)]
    if given and "asset_class" in der.columns:
        raise InputError("give either an asset_class column or exposure_<class> columns",
                         field="asset_class")
    out = pd.DataFrame(0.0, index=der.index,
                       columns=[f"{EXPOSURE_PREFIX}{k}" for k in classes])
    if "asset_class" in der.columns:
        for row, name in der["asset_class"].items():
            if pd.isna(name) or str(name) not in classes:
                raise InputError(f"unknown class {name!r}; the securities load on {classes}",
                                 field="asset_class", row=row)
            out.loc[row, f"{EXPOSURE_PREFIX}{name}"] = 1.0
        return out
    if not given:
        raise InputError("give exposure_<class> columns or an asset_class column",
                         field="exposures")
    from optirebal.portfolio import _check_finite

    for column in given:
        values = der[column].fillna(0.0)
        name = column[len(EXPOSURE_PREFIX):]
        if name not in classes:
            loaded = values != 0
            row = der.index[loaded][0] if loaded.any() else der.index[0]
            raise InputError(f"unknown class {name!r}; the securities load on {classes}",
                             field=column, row=row)
        out[column] = values
        _check_finite(out, column)
    return out.astype(float)


def derivative_value(derivatives: pd.DataFrame | None) -> float:
    """Market value of the derivative positions (currency): option premiums; futures and swaps 0."""
    if derivatives is None or len(derivatives) == 0:
        return 0.0
    return float((derivatives["contracts"] * derivatives["premium"]
                  * derivatives["multiplier"]).sum())


def exposure_matrix(derivatives: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Risky classes x instruments: exposure per unit of underlying notional, delta applied."""
    columns = [f"{EXPOSURE_PREFIX}{k}" for k in classes]
    loadings = derivatives.reindex(columns=columns, fill_value=0.0).to_numpy(dtype=float).T
    return loadings * derivatives["delta"].to_numpy(dtype=float)


def with_contracts(portfolio: Portfolio, contracts: Mapping[str, float] | pd.Series) -> Portfolio:
    """A copy of ``portfolio`` with new current contracts for some instruments.

    Raises
    ------
    InputError
        Contracts on an instrument not in the portfolio, or not whole.
    """
    der = portfolio.derivatives
    series = pd.Series(contracts, dtype=float)
    known = der.index if der is not None else pd.Index([])
    unknown = [str(d) for d in series.index if str(d) not in known]
    if unknown:
        raise InputError("contracts on an instrument not in the portfolio", field="contracts",
                         row=unknown[0])
    if der is None:
        return portfolio
    der = der.copy()
    der.loc[series.index.map(str), "contracts"] = series.to_numpy()
    der = validate_derivatives(der, portfolio.classes)
    return dataclasses.replace(portfolio, derivatives=der)


# --- problem data -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OverlayData:
    """The overlay's arrays in weights (fractions of pre-trade NAV ``V``), per instrument ``d``.

    Attributes
    ----------
    instruments : list of str
    exposure : ndarray, classes x instruments
        Per unit of notional, delta applied: ``loadings x delta``.
    loadings : ndarray, classes x instruments
        Per unit of underlying notional, delta not applied; the cash-class row (when cash is a
        class) is the financing leg, minus the sum of the other rows. Part of the structure.
    delta : ndarray
        Per instrument: 1 for futures and swaps, the option's delta (a program parameter, so a new
        delta never recompiles).
    position : ndarray
        Current notional ``o0`` (weights, signed).
    contracts : ndarray
        Current contracts (signed, whole).
    unit : ndarray
        Notional of one contract (weights): ``price x multiplier / V``.
    lower, upper : ndarray
        Bounds on the post-trade notional ``o`` (weights) from caps, implementation, migration
        and margin shortfall.
    bound_reason : list of str
        Why an instrument's bounds are tighter than its caps ("" when they are not).
    gross_cap : float
        Cap on ``sum |o|`` (weights); the :data:`NO_CAP` stand-in when there is none.
    spread : ndarray
        Cost per unit of notional traded (fraction): ``half_spread_bps / 1e4``.
    carry : ndarray
        Carry over the horizon per unit of absolute notional held: ``carry_per_year x H``.
    basis_variance : ndarray
        Annualized basis variance (fraction squared per year).
    margin : ndarray
        Cash reserved per unit of absolute notional: margin rate plus the variation buffer.
    premium : ndarray
        Option value per unit of notional (``premium / price``; 0 for futures and swaps): cash
        paid per unit bought.
    margin_account : int
        Position of the account whose cash posts margin and pays the derivative trades.
    implementation : str
    """

    instruments: list[str]
    kind: np.ndarray
    exposure: np.ndarray
    loadings: np.ndarray
    delta: np.ndarray
    position: np.ndarray
    contracts: np.ndarray
    unit: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    bound_reason: list[str]
    gross_cap: float
    spread: np.ndarray
    carry: np.ndarray
    basis_variance: np.ndarray
    margin: np.ndarray
    premium: np.ndarray
    margin_account: int
    implementation: str
    has_cash: bool

    @property
    def size(self) -> int:
        """Number of instruments."""
        return len(self.instruments)

    @property
    def structure(self) -> tuple[int, str]:
        """What of the overlay shapes the program: the margin account and the loadings."""
        digest = hashlib.blake2b(np.ascontiguousarray(self.loadings, dtype=np.float64).tobytes(),
                                 digest_size=16).hexdigest()
        return self.margin_account, digest

    def exposure_before(self) -> np.ndarray:
        """Class exposure (units of V) of the current positions, option value in the cash row."""
        out = self.exposure @ self.position
        if self.has_cash:
            out[-1] += float(self.premium @ self.position)
        return out


def build_overlay_data(portfolio: Portfolio, policy: Policy, classes: list[str], nav: float,
                       accounts: list[str]) -> OverlayData | None:
    """The overlay arrays for ``portfolio`` and ``policy``, or None without derivatives.

    Parameters
    ----------
    classes : list of str
        The program's classes (risky classes, then the cash class when it has a target).
    nav : float
        Pre-trade NAV ``V`` (currency).
    accounts : list of str
        Account ids, in the program's order.

    Raises
    ------
    InputError
        An unknown margin account or capped instrument; with ``on_margin_shortfall = "raise"``,
        margin of the current contracts above the margin account's available cash: its cash
        before flows and trades less its reserve (a withdrawal is met by sales, as ever; the
        program then keeps the margin funded too).
    """
    der = portfolio.derivatives
    ov = policy.overlay
    if der is None or len(der) == 0:
        for name in ov.instrument_caps:
            raise InputError("cap on an instrument not in the portfolio",
                             field="overlay.instrument_caps", row=name)
        return None
    instruments = list(der.index)
    for name in ov.instrument_caps:
        if name not in instruments:
            raise InputError("cap on an instrument not in the portfolio",
                             field="overlay.instrument_caps", row=name)
    if ov.margin_account is None:
        margin_account = 0
    elif ov.margin_account in accounts:
        margin_account = accounts.index(ov.margin_account)
    else:
        raise InputError(f"unknown account {ov.margin_account!r}; accounts are {accounts}",
                         field="overlay.margin_account")
    n_risky = len(portfolio.classes)
    delta = der["delta"].to_numpy(dtype=float)
    loadings = exposure_matrix(der, classes[:n_risky]) / delta
    has_cash = len(classes) > n_risky
    if has_cash:
        loadings = np.vstack([loadings, -loadings.sum(axis=0, keepdims=True)])
    exposure = loadings * delta
    price = der["price"].to_numpy(dtype=float)
    unit = price * der["multiplier"].to_numpy(dtype=float) / nav
    contracts = der["contracts"].to_numpy(dtype=float)
    position = contracts * unit
    margin = der["margin_rate"].to_numpy(dtype=float) + ov.variation_buffer

    stand_in = np.maximum(NO_CAP, 2.0 * np.abs(position))
    cap = np.array([ov.instrument_caps.get(d, stand_in[n] if ov.max_instrument_notional is None
                                           else ov.max_instrument_notional)
                    for n, d in enumerate(instruments)], dtype=float)
    lower, upper = -cap, cap.copy()
    reason = [""] * len(instruments)

    def narrow(d: int, lo: float, hi: float, why: str) -> None:
        new_lo, new_hi = max(lower[d], lo), min(upper[d], hi)
        if new_lo > new_hi:
            # a cap tighter than a forced range wins: its point nearest to the range
            new_lo = new_hi = float(np.clip(lo if lo > 0 else hi, lower[d], upper[d]))
        if new_lo > lower[d] or new_hi < upper[d]:
            reason[d] = reason[d] or why
        lower[d], upper[d] = new_lo, new_hi

    required = float(margin @ np.abs(position))
    acc = portfolio.accounts
    room = float(acc["cash"].iloc[margin_account] - acc["cash_reserve"].iloc[margin_account]) / nav
    if required > room + 1e-12:
        worst = instruments[int(np.argmax(margin * np.abs(position)))]
        if ov.on_margin_shortfall == "raise":
            raise InputError(
                f"margin of the current contracts ({required * nav:,.2f}) is above the available "
                f"cash of account {accounts[margin_account]!r} ({room * nav:,.2f}); add cash, or "
                "set overlay.on_margin_shortfall = 'reduce' to cut the overlay",
                field="contracts", row=worst)
        ratio = max(room, 0.0) / required
        for d in range(len(instruments)):
            o = ratio * position[d]
            narrow(d, min(0.0, o), max(0.0, o),
                   f"margin: cut to fit the cash of account {accounts[margin_account]!r}")
    f = ov.migrate_fraction
    for d in range(len(instruments)):
        kept = (1 - f) * position[d]
        if ov.implementation == "physical":
            narrow(d, kept, kept, "implementation physical: overlay held" if f == 0
                   else f"migrate: shrink overlay by {f:.0%} into physical holdings")
        elif f > 0:
            narrow(d, min(0.0, kept), max(0.0, kept),
                   f"migrate: shrink overlay by at least {f:.0%}")
    gross_cap = max(NO_CAP, 2.0 * float(np.abs(position).sum())) \
        if ov.max_gross_notional is None else ov.max_gross_notional
    premium = np.where(der["kind"].to_numpy() == "option",
                       der["premium"].to_numpy(dtype=float) / price, 0.0)
    return OverlayData(
        instruments=instruments, kind=der["kind"].to_numpy(), exposure=exposure,
        loadings=loadings, delta=delta,
        position=position, contracts=contracts, unit=unit, lower=lower, upper=upper,
        bound_reason=reason, gross_cap=float(gross_cap),
        spread=der["half_spread_bps"].to_numpy(dtype=float) / 1e4,
        carry=der["carry_per_year"].to_numpy(dtype=float) * policy.horizon_years,
        basis_variance=der["basis_volatility"].to_numpy(dtype=float) ** 2,
        margin=margin, premium=premium, margin_account=margin_account,
        implementation=ov.implementation, has_cash=has_cash)


def synthetic_caps(policy: Policy, buy_cap: np.ndarray, sell_cap: np.ndarray,
                   reasons: dict[tuple[str, int], str]) -> None:
    """In ``synthetic`` implementation no physical trade is allowed: every cap set to zero."""
    if policy.overlay.implementation != "synthetic":
        return
    for caps, side in ((buy_cap, "buy"), (sell_cap, "sell")):
        close(caps, np.arange(len(caps)), reasons, side, "overlay implementation synthetic")


def contracts_for(notional_value: float, price: float, multiplier: float) -> int:
    """Whole contracts for a notional (currency, signed): ``round(notional / (price x mult))``.

    Examples
    --------
    >>> contracts_for(25e6, 5000.0, 250.0)
    20
    >>> contracts_for(-50e6, 5000.0, 50.0)
    -200
    """
    if not (price > 0 and multiplier > 0):
        raise InputError(f"price and multiplier must be > 0, got {price!r} and {multiplier!r}")
    return int(np.round(notional_value / (price * multiplier)))
