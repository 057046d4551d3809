"""The overlay's problem data: the derivatives of a portfolio under a policy, in weights.

The portfolio side (the ``derivatives`` frame, its validation, exposures) is
:mod:`optirebal.overlay`; the program's overlay term is :mod:`optirebal.program.terms.overlay`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from optirebal.errors import InputError
from optirebal.overlay import NO_CAP, exposure_matrix
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.caps import close


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
    if required > 0 and required > room + 1e-12:  # without contracts there is no margin to cut
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
