"""Turnover cap: gross traded value over all pairs at most ``turnover_cap`` (weights)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point
from optirebal.program.terms.trades import gross

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


class Turnover(BaseTerm):
    """``sum(g) <= turnover_cap``."""

    name = "turnover"

    def applies(self, data: ProblemData) -> bool:
        return bool(np.isfinite(data.turnover_cap))

    def build(self, ctx: Context) -> None:
        d = ctx.data
        assert ctx.buys is not None and ctx.sells is not None
        total = (ctx.buys + ctx.pair_sells()).sum()
        ctx.builder.at_most("turnover", total, d.turnover_cap, relax=True,
                            labels=lambda _: f"turnover cap ({d.turnover_cap:.4g})")

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(max(gross(data, x).sum() - data.turnover_cap, 0.0))
