r"""Trades: buys per account-security pair and sells per lot, with their caps and linear costs.

Variables (weights): ``0 <= b_p <= cap_p`` per pair and ``0 <= s_l <= cap_l`` per lot. A trade
whose cap is zero (a restriction, a mode, a wash-sale rule, the overlay, the minimum trade) has
no variable at all: its entries of ``buys`` and ``sells`` are the constant zero, so the program
is smaller and keeps an interior. Costs per unit of gross traded value ``g_p = b_p + S_p``
(``S_p`` the pair's lot sells): half-spread plus commissions,

.. math:: \text{cost} = c^\top g, \qquad c_i = \text{half\_spread}_i + \text{commission}_i
          + \text{per\_share}_i / \text{price}_i,

a tie-break of :data:`TIE_BREAK` per unit of gross turnover, so that among equally good trade
lists the smallest is chosen, and :data:`TIE_SQUARE` times the squared positions after the
trades, so that the optimum is unique. In the elastic form every cap is a relaxable row and the lot
quantity a physical one that never gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.conic import Affine
from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

TIE_BREAK = 1e-6
"""Cost per unit of gross turnover (0.01 bp) added to every objective, so that among equally good
trade lists the smallest is chosen and no trade beats a costless round trip."""

TIE_SQUARE = 1e-8
"""Weight of the sum of squared positions after the trades (per account and security that can
trade; weights) added to every objective. Without it an optimum with flat directions (no risk
aversion, ``to_band``, two securities of one class that cost the same) is a face, and the
solver stops at a point of it that floating-point noise chooses (the same portfolio at 1,000
times the NAV moved weights by up to 6e-4). The square makes the optimum unique. It is a
function of the positions, not of the trades, so that re-solving the post-trade portfolio sees
the same term and trades nothing (a square of the trades charged the first solve's last unit
more than the re-solve's first). It leans toward smaller positions by ``2e-8 x position / k``
at a curvature ``k`` (1.5e-6 of weight at the known answers' lowest, 0.01)."""


def spread_rates(data: ProblemData) -> tuple[np.ndarray, np.ndarray]:
    """Per security, the half-spread and the commission per unit of traded value."""
    spread = data.portfolio.security_columns.floats("half_spread_bps") / 1e4
    return spread, data.linear_cost - spread


def held_by_pair(data: ProblemData) -> np.ndarray:
    """Per pair, the value held before the trades (weights)."""
    return np.bincount(data.lot_pair, weights=data.lot_weight, minlength=data.n_pairs)


def movable_pairs(data: ProblemData) -> np.ndarray:
    """The pairs that can trade (an open buy or a lot with an open sell): those whose position
    after the trades the tie-break squares."""
    sellable = np.bincount(data.lot_pair, weights=(data.sell_cap > 0).astype(float),
                           minlength=data.n_pairs) > 0
    return np.flatnonzero((data.buy_cap > 0) | sellable)


def gross(data: ProblemData, x: Point) -> np.ndarray:
    """Gross traded value per pair (weights)."""
    return np.abs(x.buys) + np.abs(data.pair_sells(x.sells))


def linear_immediate_cost(data: ProblemData, x: Point) -> float:
    """The costs paid now that are linear in the trades, spread and commission (weights): the
    part of the costs the band rows and the tracking error can read exactly."""
    return float(_negligible_to_zero(data.linear_cost[data.pair_security]) @ gross(data, x))


def _entries(caps: np.ndarray, elastic: bool) -> np.ndarray:
    return np.arange(len(caps)) if elastic else np.flatnonzero(caps > 0)


class Trades(BaseTerm):
    """Buy and sell variables, their caps, spread and commissions, and the tie-break."""

    name = "trades"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        open_buys = _entries(d.buy_cap, bld.elastic)
        open_sells = _entries(d.sell_cap, bld.elastic)
        b = bld.variable("buys", len(open_buys))
        s = bld.variable("sells", len(open_sells))
        bld.at_most("buys >= 0", -b)
        bld.at_most("sells >= 0", -s)
        # a buy is open (no cap: cash bounds it) or closed; only closed ones need a row, and only
        # in the elastic form, where the cap may give
        capped = np.flatnonzero(np.isfinite(d.buy_cap[open_buys]))
        bld.at_most("buy caps", b[capped], d.buy_cap[open_buys[capped]], relax=True,
                    labels=lambda n: d.cap_reasons.get(("buy", int(open_buys[capped[n]])),
                                                       "buy cap"))
        bld.at_most("sell caps", s, d.sell_cap[open_sells], relax=True,
                    labels=lambda n: d.cap_reasons.get(("sell", int(open_sells[n])), "sell cap"))
        if bld.elastic:  # the lot itself is a physical limit, never relaxed
            bld.at_most("lot quantities", s, d.lot_weight)
        ctx.buys = Affine.scatter(d.n_pairs, open_buys, b)
        ctx.sells = Affine.scatter(len(d.lot_ids), open_sells, s)
        rate = _negligible_to_zero(d.linear_cost[d.pair_security])
        pair_gross = ctx.buys + ctx.pair_sells()
        ctx.pair_cost = rate * pair_gross
        ctx.linear_pair_cost = ctx.pair_cost
        bld.minimize(pair_gross, rate + TIE_BREAK)
        if not bld.elastic:
            # the square of each position after the trades (a function of the state, so a
            # re-solve of the post-trade portfolio sees the same term; see TIE_SQUARE)
            moved = movable_pairs(d)
            if len(moved):
                after = bld.variable("positions after", len(moved))
                change = (ctx.buys - ctx.pair_sells())[moved]
                bld.equal("positions after", after - change, held_by_pair(d)[moved])
                bld.minimize_squares("positions after", TIE_SQUARE)

    def costs(self, data: ProblemData, x: Point) -> dict[str, float]:
        spread, commission = spread_rates(data)
        g = gross(data, x)
        return {"spread": float(spread[data.pair_security] @ g),
                "commission": float(commission[data.pair_security] @ g)}

    def objective(self, data: ProblemData, x: Point) -> float:
        after = (held_by_pair(data) + x.buys - data.pair_sells(x.sells))[movable_pairs(data)]
        return float(sum(self.costs(data, x).values()) + TIE_BREAK * gross(data, x).sum()
                     + TIE_SQUARE * np.sum(after**2))

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(max(np.max(-x.buys, initial=0.0), np.max(-x.sells, initial=0.0),
                         np.max(x.buys - data.buy_cap, initial=0.0),
                         np.max(x.sells - data.sell_cap, initial=0.0)))


NEGLIGIBLE_COST = 1e-12
"""Cost coefficients (fraction of NAV per unit weight) below this are set to zero in the program:
they change no decision, and values near the floating-point floor (a daily volatility of 1e-300)
wreck the solver's scaling."""


def _negligible_to_zero(coefficients: np.ndarray) -> np.ndarray:
    return np.where(np.abs(coefficients) < NEGLIGIBLE_COST, 0.0, coefficients)
