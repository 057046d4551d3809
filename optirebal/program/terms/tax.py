r"""Tax: per-lot rates, the exact-netting region, and the gain budget.

Realized gains in weights for lot sells ``s``: ``S = S_0/V + g_S' s`` and ``L = L_0/V + g_L' s``
(:class:`optirebal.program.taxdata.TaxData`). The objective charges ``r' s`` with ``r`` the
per-lot tax (plus the short-term penalty and the harvest discount) of the ``linear`` model, or of
the netting region the program is bound to (``exact``), whose rows ``A_r (S, L) >= b_r`` are
added with the region's constant (:func:`optirebal.program.taxdata.region_coefficients`; the
region driver is :mod:`optirebal.program.regions`). A gain budget adds
``(g_S + g_L)' s <= B/V + e`` with ``e = 0`` for a hard cap (relaxable in the diagnosis) or
``0 <= e`` at a cost ``pi e`` in the penalty form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.taxdata import region_coefficients
from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


class Tax(BaseTerm):
    """Per-lot tax, the netting region's rows, and the gain budget (module docstring)."""

    name = "tax"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.sells is not None
        bld.minimize(ctx.sells, d.tax_rate)
        info = d.tax
        if info is None:
            return
        if info.exact and info.region is not None:
            rows, bound, constant, _ = region_coefficients(info, info.region, d.tax_rate)
            bld.at_most("tax region", -(rows @ ctx.sells), -bound)
            if not bld.elastic:
                bld.constant += constant
        if info.has_budget:
            gain = (info.gain_short + info.gain_long) @ ctx.sells
            hard = not np.isfinite(info.budget_penalty)
            if not hard:
                excess = bld.variable("gain excess", 1)
                bld.at_most("gain excess >= 0", -excess)
                bld.minimize(excess, info.budget_penalty)
                gain = gain - excess
            bld.at_most("gain budget", gain, info.budget, relax=hard,
                        labels=lambda _: f"gain budget ({info.budget * d.nav:,.2f})")

    def objective(self, data: ProblemData, x: Point) -> float:
        value = float(data.tax_rate @ x.sells)
        info = data.tax
        if info is not None and info.exact and info.region is not None:
            value += region_coefficients(info, info.region, data.tax_rate)[2]
        if info is not None and info.has_budget and np.isfinite(info.budget_penalty):
            excess = (info.gain_short + info.gain_long) @ x.sells - info.budget
            value += info.budget_penalty * max(float(excess), 0.0)
        return value

    def residual(self, data: ProblemData, x: Point) -> float:
        info = data.tax
        out = 0.0
        if info is None:
            return out
        if info.exact and info.region is not None:
            rows, bound, _, _ = region_coefficients(info, info.region, data.tax_rate)
            out = max(out, float(np.max(bound - rows @ x.sells)))
        if info.has_budget and not np.isfinite(info.budget_penalty):
            out = max(out, float((info.gain_short + info.gain_long) @ x.sells - info.budget))
        return out
