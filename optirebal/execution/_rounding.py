"""Rounding of an optimal schedule to whole-share child orders (private).

The cumulative shares executed are rounded, not the child orders one by one: each cumulative
total is then within half a share of the optimum, whereas rounding slices lets the errors add up.
Because ``floor(b + 1/2) - floor(a + 1/2) < b - a + 1``, a child order of a whole-share cap stays
within the cap when the optimum does; solver noise beyond the cap is moved to the nearest
intervals with room. A fractional parent order (a fractional-share account) puts its fraction on
the largest child order that has room for it, so every total is exact.
"""

from __future__ import annotations

import numpy as np


def child_shares(path: np.ndarray, orders: np.ndarray, cap: np.ndarray | None) -> np.ndarray:
    """Child orders, signed shares (active, N), from remaining fractions ``path`` (active, N + 1).

    Parameters
    ----------
    path : ndarray, shape (active, intervals + 1)
        Fraction of each order still to trade, 1 before the first interval and 0 after the last.
    orders : ndarray, shape (active,)
        Parent orders, signed shares.
    cap : ndarray, shape (active, intervals), optional
        Most whole shares per child order; the orders must fit (checked when the plan was made).
    """
    size = np.abs(orders)
    whole = np.floor(size)
    fraction = size - whole
    executed = whole[:, None] * (1.0 - np.clip(path, 0.0, 1.0))
    executed = np.maximum.accumulate(executed, axis=1)
    cumulative = np.floor(executed + 0.5)
    cumulative[:, 0] = 0.0
    cumulative[:, -1] = whole
    shares = np.diff(cumulative, axis=1)
    if cap is not None:
        for i in np.flatnonzero((shares > cap).any(axis=1)):
            shares[i] = _within_cap(shares[i], cap[i])
    for i in np.flatnonzero(fraction > 0):
        room = np.inf if cap is None else cap[i] - shares[i]
        candidates = np.where(room >= fraction[i], shares[i], -np.inf)
        shares[i, int(np.argmax(candidates))] += fraction[i]
    return shares * np.sign(orders)[:, None]


def _within_cap(shares: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Move whole shares above the cap to the nearest intervals with room (earlier on ties)."""
    shares = shares.copy()
    order = np.arange(shares.size)
    for k in np.flatnonzero(shares > cap):
        excess = shares[k] - cap[k]
        shares[k] = cap[k]
        for j in sorted(order, key=lambda j: (abs(j - k), j)):
            move = min(excess, max(cap[j] - shares[j], 0.0))
            shares[j] += move
            excess -= move
            if excess == 0:
                break
    return shares
