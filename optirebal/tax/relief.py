"""Lot relief: which lots a sale of shares of one position relieves, in a fixed order.

A sale of ``x`` shares of one (account, security) position relieves its lots one after the other
in a fixed order until ``x`` is reached, each lot up to the shares that may be sold of it; the
gain and holding period of each piece are those of its lot. Specific identification (Treas. Reg.
1.1012-1(c)(2) and (3): the seller names the lots, here the program chooses them) has no fixed
order and is not handled here. The fixed orders:

``"hifo"``
    highest basis per share first; ties: earliest acquired, then lot id;
``"fifo"``
    earliest acquired first, ties by lot id: the rule when the lots sold are not adequately
    identified, Treas. Reg. 1.1012-1(c)(1);
``"lifo"``
    latest acquired first, ties by lot id.

Lot ids compare as text. Dates are acquisition dates (of a replacement lot, the date adjusted by
a wash sale). Pure functions on arrays; nothing is mutated.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIXED_ORDERS", "fill_in_order", "relief_order"]

FIXED_ORDERS = ("hifo", "fifo", "lifo")
"""The fixed relief orders (``Tax.lot_relief`` other than ``"optimal"``)."""

BASIS_DECIMALS = 9
"""Basis per share is compared to 1e-9 currency: two lots bought at the same price tie even when
their total basis divided by their shares differs in the last bits."""


def relief_order(method: str, position: np.ndarray, basis_per_share: np.ndarray,
                 acquired: np.ndarray, lot_id: np.ndarray) -> np.ndarray:
    """Lots sorted by position, and within a position in the order a sale relieves them.

    Parameters
    ----------
    method : str
        ``"hifo"``, ``"fifo"`` or ``"lifo"`` (:data:`FIXED_ORDERS`).
    position : ndarray of int, per lot
        The (account, security) position each lot belongs to (any integer code).
    basis_per_share : ndarray of float, per lot
        Cost basis per share (currency per share).
    acquired : ndarray, per lot
        Acquisition dates (``datetime64``) or any numbers in the same order as the dates.
    lot_id : array-like of str, per lot
        Lot ids, the last tie-break.

    Returns
    -------
    ndarray of int
        Lot indices: positions in increasing code, and within each the lot relieved first
        first.

    Raises
    ------
    ValueError
        For a method outside :data:`FIXED_ORDERS` (a programming error: ``"optimal"`` has no
        fixed order).
    """
    if method not in FIXED_ORDERS:
        raise ValueError(f"no fixed relief order for {method!r}")
    position = np.asarray(position)
    # dates as integers (days), so that "latest first" is a negation
    when = np.asarray(acquired)
    when = when.astype("datetime64[D]").astype(np.int64) if when.dtype.kind == "M" \
        else when.astype(float)
    rank = np.unique(np.asarray(lot_id, dtype=str), return_inverse=True)[1]
    keys: list[np.ndarray] = [rank, when if method != "lifo" else -when]
    if method == "hifo":
        keys.append(-np.round(np.asarray(basis_per_share, dtype=float), BASIS_DECIMALS))
    keys.append(position)
    return np.lexsort(keys)  # the last key is the primary one


def fill_in_order(order: np.ndarray, position: np.ndarray, capacity: np.ndarray,
                  amount: np.ndarray) -> np.ndarray:
    """Relieve each position's ``amount`` from its lots strictly in relief order.

    Parameters
    ----------
    order : ndarray of int
        Lot indices sorted by position and within it in relief order (:func:`relief_order`).
    position : ndarray of int, per lot
        Position code of each lot (as given to :func:`relief_order`).
    capacity : ndarray of float, per lot
        What may be sold of each lot (shares, or value; one unit throughout); a lot with 0 is
        passed over.
    amount : ndarray of float, per position code
        What each position's sale relieves, in the unit of ``capacity``; at most the sum of its
        lots' capacities is taken.

    Returns
    -------
    ndarray of float, per lot
        What is relieved of each lot: in each position, every lot before the last one touched
        in full, nothing after it.
    """
    order = np.asarray(order, dtype=np.int64)
    out = np.zeros(len(capacity))
    if len(order) == 0:
        return out
    cap = np.maximum(np.asarray(capacity, dtype=float)[order], 0.0)
    pos = np.asarray(position)[order]
    # capacity of the lots before each lot in its own position: a running sum restarted at
    # each position's first lot
    ahead = np.cumsum(cap) - cap
    first = np.concatenate(([True], pos[1:] != pos[:-1]))
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    before = ahead - ahead[start]
    out[order] = np.clip(np.asarray(amount, dtype=float)[pos] - before, 0.0, cap)
    return out
