r"""Cash: each account pays its buys, costs and overlay cash from its own cash and flow.

.. math::

    \sum_{p \in a} (b_p + \text{cost}_p) - \sum_{l \in a} s_l + m_a \le c_a + f_a - r_a,

with ``cost_p`` every trading cost of pair ``p`` (spread, commission, impact: convex, so the
row is convex) and ``m_a`` the overlay's cash (spread, premiums, margin) in its margin account.
No cash moves between accounts. Relaxable in the diagnosis: the reserve is policy.

In ``cash_only`` an account that must raise cash (``c_a + f_a < r_a``) sells only, and raises
no more than it needs: the row also holds the other way,
``sum_l s_l - sum_p cost_p <= r_a - c_a - f_a``, so its cash ends at its reserve. Selling
more (toward a band, or for the tracking error) would leave cash that the next call, with the
account above its reserve, deploys: a round trip in two calls. The row gives way only where the
costs could be inflated, which the objective charges in full, so it binds as an equality.
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


def raising_accounts(data: ProblemData) -> np.ndarray:
    """Accounts that ``cash_only`` holds to raising exactly their shortfall (module docstring)."""
    if data.policy.mode != "cash_only":
        return np.zeros(0, dtype=int)
    return np.flatnonzero(data.cash + data.flow - data.reserve < 0)


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
        raising = raising_accounts(d)
        if len(raising):
            bld.at_most("cash raised", -used[raising], -(d.cash + d.flow - d.reserve)[raising],
                        relax=True, labels=lambda n: f"mode cash_only: account "
                                                     f"{d.accounts[raising[n]]!r} raises only "
                                                     "what it needs")

    def residual(self, data: ProblemData, x: Point) -> float:
        short = cash_shortfall(data, x)
        over_raised = -short[raising_accounts(data)]
        return float(max(np.max(short, initial=0.0), np.max(over_raised, initial=0.0)))
