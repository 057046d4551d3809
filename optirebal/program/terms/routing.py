r"""Cash-flow-first routing: a penalty on trades against an account's flow.

An account receiving cash pays ``counterflow_penalty`` per unit of lot sold, and one that must
raise cash per unit bought, so such trades happen only when a band demands them (DESIGN
section 4, term 6). Swapping into a wash-sale substitute adds its tracking cost to the buy side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


class Routing(BaseTerm):
    """Counter-flow penalties (module docstring)."""

    name = "routing"

    def applies(self, data: ProblemData) -> bool:
        return bool(data.buy_counterflow.any() or data.sell_counterflow.any())

    def build(self, ctx: Context) -> None:
        assert ctx.buys is not None and ctx.sells is not None
        ctx.builder.minimize(ctx.buys, ctx.data.buy_counterflow)
        ctx.builder.minimize(ctx.sells, ctx.data.sell_counterflow)

    def objective(self, data: ProblemData, x: Point) -> float:
        return float(data.buy_counterflow @ x.buys + data.sell_counterflow @ x.sells)
