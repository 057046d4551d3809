r"""Cash: each account pays its buys, costs and overlay cash from its own cash and flow.

.. math::

    \sum_{p \in a} (b_p + \text{cost}_p) - \sum_{l \in a} s_l + m_a \le c_a + f_a - r_a,

with ``cost_p`` every trading cost of pair ``p`` (spread, commission, impact: convex, so the
row is convex) and ``m_a`` the overlay's cash (spread, premiums, margin) in its margin account.
No cash moves between accounts. Relaxable in the diagnosis: the reserve is policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.terms.base import BaseTerm, Context, Point

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


def cash_shortfall(data: ProblemData, x: Point) -> np.ndarray:
    """Per account, how far (weights) post-trade cash after costs falls below the reserve."""
    from optirebal.program.terms import account_cash, pair_costs

    n_a = len(data.accounts)
    spent = np.bincount(data.pair_account, weights=x.buys + pair_costs(data, x), minlength=n_a)
    raised = np.bincount(data.pair_account, weights=data.pair_sells(x.sells), minlength=n_a)
    return spent - raised + account_cash(data, x) - (data.cash + data.flow - data.reserve)


class Cash(BaseTerm):
    """One cash row per account (module docstring)."""

    name = "cash"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.buys is not None and ctx.sells is not None and ctx.pair_cost is not None
        used = d.pairs_to_accounts @ (ctx.buys + ctx.pair_cost) - d.lots_to_accounts @ ctx.sells
        if ctx.account_cash is not None:
            used = used + ctx.account_cash
        bld.at_most("cash", used, d.cash + d.flow - d.reserve, relax=True,
                    labels=lambda a: f"cash reserve of account {d.accounts[a]!r}")

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(np.max(cash_shortfall(data, x), initial=0.0))
