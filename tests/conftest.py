"""Builders of small portfolios with known answers."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
from hypothesis import settings
from scipy.optimize import brentq

import optirebal as orb

# Property tests draw the same examples on every run, so CI is repeatable; set
# HYPOTHESIS_PROFILE=explore to draw new ones.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

AS_OF = dt.date(2026, 11, 20)


def stock_and_cash(price: float = 1.0, shares: float = 60.0, cash: float = 40.0,
                   half_spread_bps: float = 0.0, variance: float = 0.04,
                   account_type: str = "tax_exempt", lot_size: float = 0.0) -> orb.Portfolio:
    """One stock (class ``equity``) and cash in one account ``fund``."""
    sec = pd.DataFrame({"security": ["STK"], "price": [price], "asset_class": ["equity"],
                        "half_spread_bps": [half_spread_bps], "lot_size": [lot_size]})
    acc = pd.DataFrame({"account": ["fund"], "type": [account_type], "cash": [cash]})
    lots = pd.DataFrame({"lot": ["L1"], "account": ["fund"], "security": ["STK"],
                         "quantity": [shares], "cost_basis": [shares], "acquired": ["2020-01-02"]})
    cov = pd.DataFrame([[variance, 0.0], [0.0, 0.0]], index=["equity", "cash"],
                       columns=["equity", "cash"])
    return orb.Portfolio.from_frames(sec, acc, lots, as_of=AS_OF, risk=cov)


def no_trade_edge(w0: float, target: float, rate: float, curvature: float,
                  tie_break: float = 0.0, flow: float = 0.0,
                  tie_square: float = 0.0) -> tuple[float, float]:
    """The exact optimum of one risky class and cash with linear costs: the trade (weight of
    pre-trade NAV, signed) and the post-trade weight after costs.

    ``w0`` is the class's value and ``flow`` the contribution (weights of the pre-trade NAV).
    The program charges ``(curvature / 2) e^2 / S + (rate + tie_break) |trade|
    + tie_square (w0 + trade)^2`` (the tie-breaks are no money: they leave the NAV alone) with
    ``S = 1 + flow - rate |trade|`` the post-trade NAV (the costs leave the cash) and
    ``e = x - target S`` the deviation after costs (``x`` the class value). Selling ``s`` gives
    ``e = gap - a s`` with ``gap = w0 - target (1 + flow)`` and ``a = 1 - target rate`` (buying,
    ``e = gap + a b`` with ``a = 1 + target rate``). The objective is convex in the trade; its
    derivative is solved to machine precision on each side. Inside the region it leaves there
    is no trade; its edges in weights do not depend on the flow.
    """
    gap = w0 - target * (1 + flow)
    linear = rate + tie_break

    def slope(trade: float, a: float, sign: float) -> float:
        """Derivative of the objective in the traded amount on one side (sign -1 sells)."""
        e, nav = gap + sign * a * trade, 1 + flow - rate * trade
        return (curvature / 2) * (2 * sign * a * e / nav + rate * e**2 / nav**2) + linear \
            + 2 * tie_square * sign * (w0 + sign * trade)

    for sign, a, room in ((-1.0, 1 - target * rate, w0), (1.0, 1 + target * rate, 1 + flow)):
        if slope(0.0, a, sign) < 0:
            trade = brentq(slope, 0.0, room, args=(a, sign), xtol=1e-16, rtol=4 * np.finfo(
                float).eps)
            e = gap + sign * a * trade
            return sign * trade, target + e / (1 + flow - rate * trade)
    return 0.0, w0 / (1 + flow)


def multi_asset(seed: int = 0, n_securities: int = 6, accounts: tuple[str, ...] = ("taxable",
                "ira"), lots_per_position: int = 2, nav: float = 1e6,
                flows: tuple[float, ...] | None = None) -> orb.Portfolio:
    """Random but reproducible: 3 classes, several securities and lots, two accounts."""
    rng = np.random.default_rng(seed)
    classes = ["equity", "bonds", "real_estate"]
    securities = [f"S{n}" for n in range(n_securities)]
    price = rng.uniform(20, 200, n_securities)
    sec = pd.DataFrame({
        "security": securities, "price": price,
        "asset_class": [classes[n % 3] for n in range(n_securities)],
        "half_spread_bps": rng.uniform(1, 5, n_securities),
        "daily_volatility": rng.uniform(0.005, 0.02, n_securities),
        "daily_traded_value": rng.uniform(1e7, 1e8, n_securities),
    })
    kinds = ["taxable", "tax_deferred", "tax_exempt"]
    acc = pd.DataFrame({"account": list(accounts),
                        "type": [kinds[n % 3] for n in range(len(accounts))],
                        "cash": rng.uniform(0.0, 0.05, len(accounts)) * nav / len(accounts),
                        "flow": list(flows) if flows else [0.0] * len(accounts)})
    rows = []
    for a in accounts:
        for s, p in zip(securities, price, strict=True):
            for n in range(lots_per_position):
                qty = rng.uniform(0.5, 1.5) * nav / (n_securities * len(accounts)
                                                     * lots_per_position) / p
                rows.append({"lot": f"{a}-{s}-{n}", "account": a, "security": s,
                             "quantity": qty, "cost_basis": qty * p * rng.uniform(0.6, 1.4),
                             "acquired": AS_OF - dt.timedelta(days=int(rng.integers(10, 2000)))})
    vol = np.array([0.16, 0.06, 0.2])
    corr = np.array([[1, 0.2, 0.6], [0.2, 1, 0.3], [0.6, 0.3, 1]])
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=classes, columns=classes)
    return orb.Portfolio.from_frames(sec, acc, pd.DataFrame(rows), as_of=AS_OF, risk=cov)
