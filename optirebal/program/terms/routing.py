r"""Cash-flow-first routing: flows are invested (or raised) first, and not traded against.

Two penalties, both ``counterflow_penalty`` (default 1.0: a unit of NAV per unit of weight, so a
dollar of routing penalty outweighs any trading cost; it sets priorities, it is not a price):

- **against the flow** (DESIGN section 4, term 6): an account receiving cash pays it per unit of
  lot sold, and one that must raise cash per unit bought, so such trades happen only when a band
  demands them; a buy of a wash-sale substitute adds its tracking cost;
- **idle cash**, when cash is not a class of the targets (the policy then means fully invested):
  each account pays it per unit of cash left above its reserve before costs,

  .. math:: p \sum_a \big(c_a + f_a - r_a - (\text{bought}_a - \text{sold}_a)\big),

  so a contribution, or cash above the reserve, is invested, and the tracking error decides where
  (the underweight classes first). With cash in the targets its own deviation does this job, and
  the term is absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


def idle_cash_penalty(data: ProblemData) -> float:
    """The cost per unit of idle cash (weights): the counter-flow penalty when cash is not a
    class of the targets, else 0."""
    return 0.0 if data.policy.cash_class in data.classes else data.policy.counterflow_penalty


class Routing(BaseTerm):
    """Counter-flow and idle-cash penalties (module docstring)."""

    name = "routing"

    def applies(self, data: ProblemData) -> bool:
        return bool(data.buy_counterflow.any() or data.sell_counterflow.any()
                    or idle_cash_penalty(data) > 0)

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.buys is not None and ctx.sells is not None
        idle = idle_cash_penalty(d)
        bld.minimize(ctx.buys, d.buy_counterflow - idle)
        bld.minimize(ctx.sells, d.sell_counterflow + idle)
        if not bld.elastic:
            bld.constant += idle * float((d.cash + d.flow - d.reserve).sum())

    def objective(self, data: ProblemData, x: Point) -> float:
        idle = idle_cash_penalty(data)
        left = (data.cash + data.flow - data.reserve).sum() - x.buys.sum() + x.sells.sum()
        return float(data.buy_counterflow @ x.buys + data.sell_counterflow @ x.sells
                     + idle * left)
