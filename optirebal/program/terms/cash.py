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
account above its reserve, deploys: a round trip in two calls. Without impact its cash row is
an equality (two opposite rows would leave the program no interior). With impact the second
row reads the costs linear in the trades and allows a bound on the impact
(:func:`impact_allowance`): the impact's epigraph in an equality left Clarabel stalling, and
the cash left over is at most that bound. The second side is the program's aim, not a checked
constraint (:meth:`Cash.residual` checks the reserve). The overlay's margin account is not held
to it: its margin is a bound the program may over-reserve at no cost.
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
    short = data.cash + data.flow - data.reserve < 0
    if data.overlay is not None:
        short[data.overlay.margin_account] = False
    return np.flatnonzero(short)


def impact_allowance(data: ProblemData, accounts: np.ndarray) -> np.ndarray:
    """Per raising account, a bound on the impact its sale may cost (weights): the impact of
    selling 1.5 times its shortfall in its costliest security. Its cap row reads the costs
    linear in the trades and allows this for the impact (an equality through the impact's
    epigraph left Clarabel no interior to step in); cash left over is at most this."""
    from optirebal.program.terms.impact import impact_cost

    out = np.zeros(len(accounts))
    if data.impact_model == "none":
        return out
    for n, a in enumerate(accounts):
        securities = data.pair_security[data.pair_account == a]
        k = float(np.max(data.impact_cost[securities], initial=0.0))
        shortfall = -(data.cash + data.flow - data.reserve)[a]
        out[n] = float(impact_cost(np.array([k]), np.array([1.5 * shortfall]),
                                   data.impact_model)[0])
    return out


class Cash(BaseTerm):
    """One cash row per account (module docstring)."""

    name = "cash"

    def build(self, ctx: Context) -> None:
        d, bld = ctx.data, ctx.builder
        assert ctx.buys is not None and ctx.sells is not None and ctx.pair_cost is not None
        used = d.pairs_to_accounts @ (ctx.buys + ctx.pair_cost) - d.lots_to_accounts @ ctx.sells
        if ctx.account_cash is not None:
            used = used + ctx.account_cash
        available = d.cash + d.flow - d.reserve
        # cash_only's raising accounts (module docstring); the elastic form of the diagnosis
        # keeps every account a relaxable row, since only raising too little conflicts
        raising = np.zeros(0, dtype=int) if bld.elastic else raising_accounts(d)
        allowance = impact_allowance(d, raising)
        exact = raising[allowance == 0]
        rest = np.setdiff1d(np.arange(len(d.accounts)), exact)
        bld.at_most("cash", used[rest], available[rest], relax=True,
                    labels=lambda n: f"cash reserve of account {d.accounts[rest[n]]!r}")
        if len(exact):
            bld.equal("cash raised", used[exact], available[exact])
        capped = raising[allowance > 0]
        if len(capped):
            assert ctx.linear_pair_cost is not None
            linear_used = d.pairs_to_accounts @ (ctx.buys + ctx.linear_pair_cost) \
                - d.lots_to_accounts @ ctx.sells
            bld.at_most("cash raised cap", -linear_used[capped],
                        -available[capped] + allowance[allowance > 0])

    def residual(self, data: ProblemData, x: Point) -> float:
        return float(np.max(cash_shortfall(data, x), initial=0.0))
