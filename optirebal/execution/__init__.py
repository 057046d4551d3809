r"""Execution scheduling: slice large parent orders into child orders over time (DESIGN 11).

A rebalancing trade that is large against the market's volume moves the price. :func:`schedule`
splits each parent order into one child order per interval so as to minimize expected impact cost
plus :math:`\lambda` times the variance of that cost (Almgren and Chriss 2000), jointly over all
orders with a covariance, under a participation cap and an intraday volume profile.
:func:`frontier` traces expected cost against risk over a range of :math:`\lambda`, and
:func:`plot_frontier` draws it.

Impact models (frozen dataclasses in :mod:`optirebal.execution.impact`): :class:`LinearImpact`
(Almgren and Chriss 2000; reproduces the closed-form sinh trajectory), :class:`PowerImpact` (the
3/2-power cost of DESIGN section 4) and :class:`AlmgrenThumImpact` (the 3/5 power law of Almgren,
Thum, Hauptmann and Li 2005, the default).

Units: prices and costs in currency, volatility as a fraction of price per trading day, volume in
shares per trading day, time in trading days, risk aversion in 1 / currency; the covariance is
annualized like every risk model in optirebal.

Examples
--------
>>> import pandas as pd
>>> from optirebal.execution import LinearImpact, schedule
>>> market = pd.DataFrame({"price": [50.0], "daily_volatility": [0.02],
...                        "daily_volume": [1e6]}, index=["XYZ"])
>>> orders = pd.DataFrame({"security": ["XYZ"], "shares": [-100_000]})
>>> plan = schedule(orders, market, risk_aversion=0.0, intervals=4,
...                 impact=LinearImpact(eta=0.5))
>>> plan.child_orders["shares"].tolist()
[-25000, -25000, -25000, -25000]
"""

from __future__ import annotations

from optirebal.execution._schedule import (
    DEFAULT_IMPACT,
    Schedule,
    frontier,
    plot_frontier,
    schedule,
)
from optirebal.execution.impact import (
    AlmgrenThumImpact,
    ImpactModel,
    LinearImpact,
    PowerImpact,
)

__all__ = [
    "DEFAULT_IMPACT",
    "AlmgrenThumImpact",
    "ImpactModel",
    "LinearImpact",
    "PowerImpact",
    "Schedule",
    "frontier",
    "plot_frontier",
    "schedule",
]
