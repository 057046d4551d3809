"""Child-order and cost frames of a schedule, and the check of its rounded orders (private)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from optirebal.errors import DecodeError
from optirebal.execution._inputs import Plan


def verify(plan: Plan, shares: np.ndarray) -> None:
    """Check the rounded child orders: exact totals, parent's side, caps."""
    orders = plan.active_orders
    total_gap = np.abs(shares.sum(axis=1) - orders)
    wrong_side = (shares * np.sign(orders)[:, None] < 0).any(axis=1)
    over_cap = np.zeros(orders.shape, dtype=bool)
    if plan.cap_shares is not None:
        over_cap = (np.abs(shares) > plan.cap_shares + 1e-9).any(axis=1)
    bad = (total_gap > 1e-6 * np.maximum(1.0, np.abs(orders))) | wrong_side | over_cap
    if bad.any():
        live = [s for s, a in zip(plan.securities, plan.active, strict=True) if a]
        raise DecodeError(
            f"rounded child orders of {live[int(np.argmax(bad))]!r} fail "
            "verification (total, side or participation cap)"
        )


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def child_frame(plan: Plan, active_shares: np.ndarray) -> pd.DataFrame:
    """Child orders of every security (zero orders included), by security then interval."""
    count = plan.intervals
    shares = np.zeros((len(plan.securities), count))
    shares[plan.active] = active_shares
    remaining = plan.orders[:, None] - np.cumsum(shares, axis=1)
    remaining[:, -1] = 0.0  # exactly: the totals were verified
    dtype = "int64" if _whole(plan.orders) else "float64"
    security: list[Hashable] = [s for s in plan.securities for _ in range(count)]
    return pd.DataFrame(
        {
            "security": security,
            "interval": np.tile(np.arange(count, dtype="int64"), len(plan.securities)),
            "shares": shares.ravel().astype(dtype),
            "remaining": remaining.ravel().astype(dtype),
        }
    )


def cost_frame(plan: Plan, temporary: np.ndarray, permanent: np.ndarray) -> pd.DataFrame:
    """Parent orders with their expected cost by component (currency) and in basis points."""
    n = len(plan.securities)
    value = np.zeros(n)
    value[plan.active] = plan.price * plan.active_orders
    temp = np.zeros(n)
    temp[plan.active] = temporary
    perm = np.zeros(n)
    perm[plan.active] = permanent
    cost = temp + perm
    bps = np.divide(cost * 1e4, np.abs(value), out=np.zeros(n), where=value != 0)
    return pd.DataFrame(
        {
            "shares": plan.orders.astype("int64" if _whole(plan.orders) else "float64"),
            "value": value,
            "temporary_cost": temp,
            "permanent_cost": perm,
            "expected_cost": cost,
            "cost_bps": bps,
        },
        index=pd.Index(list(plan.securities), name="security"),
    )
