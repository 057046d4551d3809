"""Synthetic trades: a solution's derivative notional into whole contracts, and the result frame.

Decode (DESIGN sections 7 and 8): contracts ``n = round(o V / (price x multiplier))`` inside the
bounds; with the rounded physical orders, the bands and the margin cash are checked again and the
contracts repaired one at a time when rounding broke one. The result side builds the ``synthetic``
frame, the overlay's costs, its cash (premiums, spread, margin) and the basis risk in the
tracking error. Arrays are weights (fractions of pre-trade NAV ``V``) unless named ``_value``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.decode.trades import CASH_TOLERANCE, Trades
from optirebal.errors import DecodeError
from optirebal.events import Event
from optirebal.overlay import EXPOSURE_PREFIX
from optirebal.program.overlaydata import OverlayData
from optirebal.program.terms import pair_costs
from optirebal.program.terms.bands import band_excess
from optirebal.program.terms.base import Point
from optirebal.program.terms.cash import cash_shortfall
from optirebal.program.terms.overlay import (
    overlay_costs,
    overlay_immediate_cost,
    overlay_margin,
)

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

CONTRACT_SLACK = 1e-9
"""Relative slack when a bound in contracts is a whole number up to round-off."""


def contract_range(ov: OverlayData) -> tuple[np.ndarray, np.ndarray]:
    """Per instrument, the whole contracts allowed by the bounds (lowest, highest).

    Where the bounds hold no whole number (a migrated or margin-cut position between two
    integers), both ends are the integer next to it on the side of zero, so caps and the migrated
    fraction are never exceeded.
    """
    lo = np.ceil(ov.lower / ov.unit - CONTRACT_SLACK)
    hi = np.floor(ov.upper / ov.unit + CONTRACT_SLACK)
    empty = lo > hi
    toward_zero = np.where(np.abs(lo) <= np.abs(hi), lo, hi)
    return np.where(empty, toward_zero, lo), np.where(empty, toward_zero, hi)


def round_contracts(data: ProblemData, change: np.ndarray | None, zero: float) -> np.ndarray:
    r"""Post-trade contracts nearest to the solution, inside the bounds.

    .. math:: n_d = \operatorname{round}\big((o_{0,d} + u_d) V / (p_d m_d)\big)

    Parameters
    ----------
    change : ndarray or None
        Change of notional from the program (weights); ``None`` keeps the current contracts.
    zero : float
        Solver tolerance (weights): smaller changes are no trade.
    """
    ov = data.overlay
    assert ov is not None
    if change is None:
        return ov.contracts.copy()
    u = np.where(np.abs(change) > zero, change, 0.0)
    wanted = np.round((ov.position + u) / ov.unit)
    lo, hi = contract_range(ov)
    # a solver answer a round-off away from the current position is no trade
    return np.clip(np.where(u == 0, ov.contracts, wanted), lo, hi)


def repair_contracts(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                     contracts: np.ndarray, tolerance: np.ndarray, zero: float
                     ) -> np.ndarray:
    """Move contracts one at a time until rounding breaks no band, cash or gross cap.

    Each step tries one contract more or less on every instrument (inside its whole-contract
    range) and keeps the move that most reduces, in order, the margin account's cash shortfall,
    the excess over the gross cap, and the total band excess beyond ``tolerance`` (weights per
    class: the physical rounding tolerance). It stops when nothing is broken or no move helps;
    at most ``4 x instruments + 4`` steps.

    A cash shortfall within ``zero`` (the solver's tolerance, weights) is the solver's noise on
    a margin constraint it holds at equality, which the cash repair of the physical trades
    settles in cents: it never moves a whole contract (that once broke a band by 211 bp for a
    shortfall of 1.5e-9 of NAV).

    Returns
    -------
    ndarray
        Post-trade contracts (signed, whole).
    """
    ov = data.overlay
    assert ov is not None
    lo, hi = contract_range(ov)
    lo, hi = np.minimum(lo, contracts), np.maximum(hi, contracts)

    def score(n: np.ndarray) -> tuple[float, float, float]:
        u = n * ov.unit - ov.position
        point = Point.of(buys, sells, u)
        short = np.clip(cash_shortfall(data, point) - max(zero, CASH_TOLERANCE), 0.0,
                        None).sum()
        gross = max(float(np.abs(n * ov.unit).sum()) - ov.gross_cap, 0.0)
        excess = np.clip(band_excess(data, point) - tolerance, 0.0, None).sum()
        return float(short), gross, float(excess)

    n = contracts.copy()
    best = score(n)
    for _ in range(4 * ov.size + 4):
        if best == (0.0, 0.0, 0.0):
            break
        candidates = []
        for d in range(ov.size):
            for step in (-1.0, 1.0):
                if lo[d] <= n[d] + step <= hi[d]:
                    trial = n.copy()
                    trial[d] += step
                    candidates.append((score(trial), d, step))
        if not candidates:
            break
        found, d, step = min(candidates, key=lambda c: c[0])
        if not found < best:
            break
        n[d] += step
        best = found
    return n


def contract_tolerance(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                       contracts: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Per class, the band tolerance (weights) rounding into contracts needs after repair.

    Zero when the repaired contracts hold every band within the physical ``tolerance``;
    otherwise one contract of every instrument traded, on the classes it loads on.
    """
    ov = data.overlay
    assert ov is not None
    u = contracts * ov.unit - ov.position
    if not (band_excess(data, Point.of(buys, sells, u)) > tolerance).any():
        return np.zeros(len(data.classes))
    return contract_allowance(data, contracts)


def contract_allowance(data: ProblemData, contracts: np.ndarray) -> np.ndarray:
    """Per class, one contract of every instrument traded, on the classes it loads on (weights):
    what whole contracts may move a band by."""
    ov = data.overlay
    assert ov is not None
    traded = (contracts != ov.contracts).astype(float)
    return np.abs(ov.exposure) @ (traded * ov.unit) / data.scale


def verify_contracts(data: ProblemData, contracts: np.ndarray) -> None:
    """Check decoded contracts: whole, inside their caps and the gross cap.

    Raises
    ------
    DecodeError
        Naming the instrument.
    """
    ov = data.overlay
    assert ov is not None
    if (contracts != np.round(contracts)).any():
        d = int(np.argmax(contracts != np.round(contracts)))
        raise DecodeError(f"instrument {ov.instruments[d]!r} has a fractional contract count")
    lo, hi = contract_range(ov)
    outside = (contracts < lo) | (contracts > hi)
    if outside.any():
        d = int(np.argmax(outside))
        raise DecodeError(f"instrument {ov.instruments[d]!r}: {contracts[d]:g} contracts outside "
                          f"its allowed range [{lo[d]:g}, {hi[d]:g}]")
    gross = float(np.abs(contracts * ov.unit).sum())
    if gross > ov.gross_cap + 1e-12:
        raise DecodeError(f"gross derivative notional {gross:.6g} is above its cap "
                          f"{ov.gross_cap:.6g} after rounding")


def decode_contracts(data: ProblemData, change: np.ndarray | None, zero: float,
                     buys: np.ndarray, sells: np.ndarray,
                     tolerance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole post-trade contracts for a solution, repaired; and their change of notional.

    Parameters
    ----------
    change : ndarray or None
        Change of notional from the program (weights).
    zero : float
        Solver tolerance (weights).
    buys, sells : ndarray
        Rounded physical trades (weights, per pair and per lot).
    tolerance : ndarray
        Physical band tolerance per class (weights).

    Returns
    -------
    contracts, change
        Post-trade contracts (signed, whole) and the change of notional they make (weights).
    """
    ov = data.overlay
    assert ov is not None
    contracts = repair_contracts(data, buys, sells, round_contracts(data, change, zero),
                                 tolerance, zero)
    return contracts, contracts * ov.unit - ov.position


# --- result -------------------------------------------------------------------------------------


def overlay_cash_frame(data: ProblemData, cash: pd.DataFrame,
                       change: np.ndarray | None) -> pd.DataFrame:
    """The result's cash frame with the overlay's cash: premiums traded, spread, margin reserved.

    Adds a ``margin`` column (currency reserved for margin, in the margin account) when the
    portfolio holds derivatives; returns ``cash`` unchanged otherwise.
    """
    ov = data.overlay
    if ov is None:
        return cash
    u = np.zeros(ov.size) if change is None else change
    nav = data.nav
    out = cash.copy()
    here = np.arange(len(out)) == ov.margin_account
    out["traded"] = out["traded"].to_numpy(dtype=float) - here * float(ov.premium @ u) * nav
    out["costs"] = out["costs"].to_numpy(dtype=float) \
        + here * float(overlay_costs(data, u)["derivative_spread"].sum()) * nav
    out["after"] = out["before"] + out["flow"] + out["traded"] - out["costs"]
    out["margin"] = here * float(overlay_margin(data, u).sum()) * nav
    return out


def with_basis_risk(data: ProblemData, tracking: pd.Series, trades: Trades) -> pd.Series:
    r"""Tracking error with each instrument's basis risk added as an independent risk.

    .. math:: TE = \sqrt{TE_{classes}^2 + \textstyle\sum_d \sigma_{b,d}^2 (o_d / s)^2}

    with ``s`` the NAV (over pre-trade NAV) the weights are measured in: ``1 + F`` before, and
    that less the costs paid now after the trades.
    """
    ov = data.overlay
    if ov is None or not (ov.basis_variance > 0).any():
        return tracking
    u = np.zeros(ov.size) if trades.derivatives is None else trades.derivatives
    paid = float(pair_costs(data, Point.of(trades.buys, trades.sells)).sum())
    after_scale = data.scale - paid - overlay_immediate_cost(data, u)
    out = tracking.copy()
    for key, o, s in (("before", ov.position, data.scale), ("after", ov.position + u,
                                                             after_scale)):
        out[key] = float(np.sqrt(out[key] ** 2 + ov.basis_variance @ (o / s) ** 2))
    return out


def synthetic_frame(data: ProblemData, contracts: np.ndarray | None,
                    change: np.ndarray | None, solution: np.ndarray | None
                    ) -> pd.DataFrame | None:
    """The synthetic trades: one row per instrument held or traded (index ``instrument``).

    Columns: ``kind``; ``contracts_before``, ``contracts`` (traded, signed), ``contracts_after``;
    ``price``, ``multiplier``; ``notional`` (traded) and ``notional_after`` (currency, signed);
    ``residual_notional`` (the program's notional minus the whole contracts', currency);
    ``exposure_<class>`` (post-trade exposure to each class, currency; the cash class carries
    the financing leg); ``margin`` (currency reserved); ``spread_cost`` and ``carry_cost``
    (currency); ``reason``. ``None`` without derivatives.
    """
    ov = data.overlay
    if ov is None:
        return None
    nav = data.nav
    after = ov.contracts.copy() if contracts is None else contracts
    u = after * ov.unit - ov.position if change is None else change
    wanted = ov.position + (u if solution is None else solution)
    der = data.portfolio.derivatives
    assert der is not None
    costs = overlay_costs(data, u)
    exposure = ov.exposure * (after * ov.unit * nav)
    columns: dict[str, object] = {
        "kind": ov.kind, "contracts_before": ov.contracts, "contracts": after - ov.contracts,
        "contracts_after": after, "price": der["price"].to_numpy(dtype=float),
        "multiplier": der["multiplier"].to_numpy(dtype=float), "notional": u * nav,
        "notional_after": after * ov.unit * nav,
        "residual_notional": (wanted - after * ov.unit) * nav,
        **{f"{EXPOSURE_PREFIX}{name}": exposure[k] for k, name in enumerate(data.classes)},
        "margin": overlay_margin(data, u) * nav,
        "spread_cost": costs["derivative_spread"] * nav,
        "carry_cost": costs["carry"] * nav,
        "reason": [_contract_reason(data, d, after[d] - ov.contracts[d]) for d in range(ov.size)],
    }
    frame = pd.DataFrame(columns, index=pd.Index(ov.instruments, name="instrument"))
    keep = (frame["contracts_before"] != 0) | (frame["contracts_after"] != 0)
    return frame[keep]


def _contract_reason(data: ProblemData, d: int, traded: float) -> str:
    """Why instrument ``d`` traded: a forced bound, a band, cash to equitize, flows, or risk."""
    ov = data.overlay
    assert ov is not None
    if traded == 0:
        return "hold"
    o0 = ov.position[d]
    if ov.bound_reason[d] and not ov.lower[d] - 1e-12 <= o0 <= ov.upper[d] + 1e-12:
        return ov.bound_reason[d]
    weights = data.exposure_before / data.scale
    n_risky = len(data.portfolio.classes)
    for k in np.flatnonzero(ov.exposure[:n_risky, d] != 0):
        name = data.classes[k]
        direction = np.sign(ov.exposure[k, d]) * np.sign(traded)
        if weights[k] > data.upper[k] + 1e-12 and direction < 0:
            return f"band: {name} above upper edge (synthetic)"
        if weights[k] < data.lower[k] - 1e-12 and direction > 0:
            return f"band: {name} below lower edge (synthetic)"
    adds = float(ov.exposure[:n_risky, d].sum()) * np.sign(traded) > 0
    if ov.has_cash and adds and weights[-1] > data.target[-1] + 1e-12:
        return "overlay: equitize cash"
    if data.flow[ov.margin_account] > 0 and adds:
        return "flow: deploy contribution synthetically"
    if abs(o0 + traded * ov.unit[d]) < abs(o0):
        return "overlay: close synthetic exposure (carry)" if ov.carry[d] > 0 \
            else "overlay: close synthetic exposure"
    return "risk: reduce tracking error" if data.risk_weight > 0 \
        else "rebalance: move toward target"


def residual_events(data: ProblemData, frame: pd.DataFrame | None) -> list[Event]:
    """The exposure left by rounding into whole contracts, one event per class (currency)."""
    ov = data.overlay
    if ov is None or frame is None or not len(frame) or not (frame["residual_notional"] != 0).any():
        return []
    residual = ov.exposure @ (frame["residual_notional"].reindex(ov.instruments, fill_value=0.0)
                              .to_numpy())
    return [Event("contract_residual", f"exposure left by rounding into whole contracts: "
                                       f"{name} {value:+,.2f} ({value / data.nav * 1e4:+.2f} bp)",
                  asset_class=name, value=float(value))
            for name, value in zip(data.classes, residual, strict=True) if abs(value) > 0.005]

