r"""Derivative overlay: instruments, their exposure, margin and whole contracts (DESIGN section 7).

A derivative position is a notional ``o`` (a weight: fraction of pre-trade NAV ``V``) in an
instrument whose exposure per unit of notional is known: an index future or a total-return swap
carries 1.0 of its class (or the loadings given), an option its delta times the loadings. The
program chooses the change ``u = o - o0``. This module is the portfolio side: the ``derivatives``
frame, its validation and its exposures; :mod:`optirebal.program.overlaydata` turns portfolio and
policy into the program's arrays, and :mod:`optirebal.decode.contracts` decodes a solution into
whole contracts.

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

from collections.abc import Mapping

import numpy as np
import pandas as pd

from optirebal.errors import InputError
from optirebal.frame_checks import check_finite, indexed
from optirebal.schema import Col, FrameSchema, validate_frame

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
DERIVATIVES = FrameSchema("derivatives", {
    "price": Col(required=True, gt=0),
    "multiplier": Col(required=True, gt=0),
    "kind": Col("text", empty=True),
    "delta": Col(empty=True),  # options only, in [-1, 1] (checked with the kind)
    "asset_class": Col("text"),
    **{name: Col(default=default, ge=0) for name, default in DERIVATIVE_DEFAULTS.items()
       if name != "contracts"},
    "contracts": Col(default=DERIVATIVE_DEFAULTS["contracts"], whole=True),
    "name": Col("any"), "description": Col("any"),
}, prefixes={EXPOSURE_PREFIX: Col()})
"""Columns of the ``derivatives`` frame (index ``instrument``): an empty cost cell or
``contracts`` cell takes its default; an empty exposure is an error (give 0)."""
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
    columns = [f"{EXPOSURE_PREFIX}{k}" for k in classes]
    if frame is None:
        empty = pd.DataFrame(columns=["price", "multiplier", "kind", "delta",
                                      *DERIVATIVE_DEFAULTS, *columns])
        empty.index.name = "instrument"
        return empty
    der, _ = validate_frame(indexed(frame, "instrument", "derivatives"), DERIVATIVES)
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
    for column in given:
        values = der[column].fillna(0.0)
        name = column[len(EXPOSURE_PREFIX):]
        if name not in classes:
            loaded = values != 0
            row = der.index[loaded][0] if loaded.any() else der.index[0]
            raise InputError(f"unknown class {name!r}; the securities load on {classes}",
                             field=column, row=row)
        out[column] = values
        check_finite(out, column)
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
