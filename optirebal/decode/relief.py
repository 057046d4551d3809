"""Lot relief in the decode: a fixed order followed exactly, checked, and its tax gap reported.

With ``Tax.lot_relief`` ``hifo``, ``fifo`` or ``lifo`` the decode takes from the program only
each position's total (account, security pair) and gives it to the position's lots strictly in
relief order (:func:`optirebal.tax.relief.relief_order`), passing over lots held at zero; every
later step (rounding, cash and band repair) adds shares after the last lot sold and takes them
back from it, so the lots sold stay a prefix of the order, which :func:`order_breach` checks.
The lots sold, gains and taxes reported are therefore those of the order, exactly.

The program prices the order by the lower convex envelope of its tax
(:mod:`optirebal.program.terms.relief`); :func:`relief_event` reports where that estimate and the
order's own tax of the same position totals differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optirebal.events import Event
from optirebal.program.data import ProblemData
from optirebal.program.terms.relief import lot_order
from optirebal.tax.netting import exact_tax
from optirebal.tax.relief import fill_in_order

__all__ = ["GAP_TOLERANCE", "in_order", "order_breach", "ordered_lots", "relief_event"]

GAP_TOLERANCE = 1e-6
"""A tax gap (fraction of NAV) below this is the solver's round-off, not a gap: no event."""


def ordered_lots(data: ProblemData) -> Callable[[int], np.ndarray] | None:
    """Per pair index, its lots in relief order (None for ``"optimal"``)."""
    order = lot_order(data)
    if order is None:
        return None
    bounds = np.searchsorted(data.lot_pair[order], np.arange(data.n_pairs + 1))
    return lambda p: order[bounds[p]:bounds[p + 1]]


def in_order(data: ProblemData, sells: np.ndarray) -> np.ndarray:
    """The program's lot sells (weights) with each position's total re-assigned to its lots in
    relief order, each lot up to its sell cap; unchanged for ``"optimal"``."""
    order = lot_order(data)
    if order is None:
        return sells
    return fill_in_order(order, data.lot_pair, data.sell_cap, data.pair_sells(sells))


def _model_tax(data: ProblemData, sells: np.ndarray) -> float:
    """The program's own tax of lot sells (weights): the per-lot rates of the linear model, or
    the exact netting of the year's nets (with the program's gains: harvest discount and
    disallowed losses applied) plus the short-term penalty."""
    info = data.tax
    if info is not None and info.exact:
        outcome = exact_tax(info.short0 + float(info.gain_short @ sells),
                            info.long0 + float(info.gain_long @ sells), info.rates)
        return float(outcome.tax) + float(info.extra @ sells)
    return float(data.tax_rate @ sells)


def relief_event(data: ProblemData, sells: np.ndarray) -> Event | None:
    """An event ``lot_relief`` when the program's tax of its lot sells ``sells`` (weights)
    differs from the tax of the same position totals sold in relief order.

    The value is the order's tax less the program's (currency): positive when the program
    sold a stretch of lots pro rata where the order's tax is not convex and so priced the sale
    below what the order realizes. None for ``"optimal"``, for ``model = "none"``, and for a gap
    within :data:`GAP_TOLERANCE` of NAV.
    """
    method = data.policy.tax.lot_relief
    if method == "optimal" or data.policy.tax.model == "none":
        return None
    ordered = in_order(data, sells)
    program, actual = _model_tax(data, sells), _model_tax(data, ordered)
    gap = actual - program
    if abs(gap) <= GAP_TOLERANCE:
        return None
    nav = data.nav
    return Event("lot_relief",
                 f"lot relief {method}: the program priced its sales at {program * nav:,.2f} "
                 f"of tax, the same amounts sold in {method} order realize {actual * nav:,.2f} "
                 f"({gap * nav:+,.2f}; the order's tax is not convex in the shares sold here, "
                 "see docs/tax.md)", value=float(gap * nav), limit=float(program * nav))


def order_breach(data: ProblemData, sell_shares: np.ndarray,
                 cap_shares: np.ndarray) -> str | None:
    """The first lot sold while a lot before it in relief order, open to sale, is not sold in
    full; None when every position's sold lots are a prefix of its order (or ``"optimal"``).

    ``sell_shares`` and ``cap_shares`` are per lot (shares); a lot with no cap is passed over.
    """
    order = lot_order(data)
    if order is None:
        return None
    order = order[cap_shares[order] > 0]
    same = data.lot_pair[order[:-1]] == data.lot_pair[order[1:]]
    a, b = order[:-1][same], order[1:][same]
    tol = 1e-9 * np.maximum(cap_shares[a], 1.0)
    bad = (sell_shares[b] > tol) & (sell_shares[a] < cap_shares[a] - tol)
    if not bad.any():
        return None
    n = int(np.argmax(bad))
    return (f"lot {data.lot_ids[b[n]]!r} is sold before lot {data.lot_ids[a[n]]!r} is sold in "
            f"full, against the {data.policy.tax.lot_relief} order")
