"""Which constraints conflict: an elastic program that relaxes every constraint group.

When the rebalance is infeasible, each group of constraints (a band edge of one class, the cash
reserve of one account, the turnover cap, the buy and sell caps set by restrictions or the mode)
gets a non-negative elastic slack, and the total slack is minimized. The groups that must take a
positive slack are the ones in conflict: relaxing any of them (or making bands soft) is what makes
the policy feasible. This runs only on failure, so it is built fresh each time.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from optirebal.errors import InfeasibleError
from optirebal.program.compile import band_cost_weights, impact_bound, impact_shape
from optirebal.program.data import ProblemData, lot_aggregation
from optirebal.program.overlay import overlay_elastic

ELASTIC_TOLERANCE = 1e-7


def diagnose(data: ProblemData) -> InfeasibleError:
    """Build the :class:`InfeasibleError` naming the conflicting constraint groups."""
    n_a, n_p, n_l = len(data.accounts), data.n_pairs, len(data.lot_ids)
    n_k = len(data.classes)
    lots_to_pairs, pairs_to_securities = lot_aggregation(data)
    pairs_to_accounts = sp.csr_matrix((np.ones(n_p), (data.pair_account, np.arange(n_p))),
                                      shape=(n_a, n_p))
    b = cp.Variable(n_p, nonneg=True)
    s = cp.Variable(n_l, nonneg=True)
    e_hi, e_lo = cp.Variable(n_k, nonneg=True), cp.Variable(n_k, nonneg=True)
    e_cash = cp.Variable(n_a, nonneg=True)
    e_buy, e_sell = cp.Variable(n_p, nonneg=True), cp.Variable(n_l, nonneg=True)
    e_turn = cp.Variable(nonneg=True)
    gross = b + lots_to_pairs @ s
    trades = pairs_to_securities @ b - pairs_to_securities @ (lots_to_pairs @ s)
    z = data.exposure_before - data.target * data.scale + data.exposure @ trades
    pair_cost = cp.multiply(data.linear_cost[data.pair_security], gross)
    impact_cones: list[cp.Constraint] = []
    if data.impact_model != "none":
        shape, impact_cones = impact_shape(gross, data.impact_model, "power", impact_bound(data))
        pair_cost = pair_cost + cp.multiply(data.impact_cost[data.pair_security], shape)
    slack = 10.0 if data.soft_bands else 0.0
    upper_cost, lower_cost = band_cost_weights(data)
    total_cost = cp.sum(pair_cost)
    # the derivative overlay: its bounds and gross cap elastic too (optirebal.program.overlay)
    elastic = overlay_elastic(data) if data.overlay is not None else None
    overlay_cash = np.zeros(n_a) if elastic is None else elastic.cash
    if elastic is not None:
        z = z + elastic.exposure
        total_cost = total_cost + elastic.cost
    constraints = [
        z + upper_cost * total_cost <= (data.upper - data.target) * data.scale + slack + e_hi,
        z - lower_cost * total_cost >= (data.lower - data.target) * data.scale - slack - e_lo,
        b <= data.buy_cap + e_buy,
        s <= data.sell_cap + e_sell,
        pairs_to_accounts @ (b + pair_cost) - pairs_to_accounts @ (lots_to_pairs @ s)
        + overlay_cash <= data.cash + data.flow - data.reserve + e_cash,
    ]
    constraints += impact_cones
    if np.isfinite(data.turnover_cap):
        constraints.append(cp.sum(gross) <= data.turnover_cap + e_turn)
    # Lot quantities are physical limits, not policy: they are never relaxed. The sell cap of a
    # lot is relaxed only up to its quantity.
    constraints.append(s <= data.lot_weight)
    total = cp.sum(e_hi + e_lo) + cp.sum(e_cash) + cp.sum(e_buy) + cp.sum(e_sell) + e_turn
    if elastic is not None:
        constraints += elastic.constraints
        total = total + elastic.slack
    problem = cp.Problem(cp.Minimize(total), constraints)
    try:
        problem.solve(solver="CLARABEL")
    except cp.error.SolverError as exc:
        # no names to give: the caller keeps its own error (or this one, with no conflicts)
        return InfeasibleError(f"the rebalance failed and the diagnosis of its constraints "
                               f"failed too ({exc})", conflicts=())
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return InfeasibleError(
            "the rebalance is infeasible even with every policy constraint relaxed: the lots "
            "cannot cover the withdrawals and reserves", conflicts=("holdings and cash flows",))
    hi, lo, cash = (np.asarray(v.value, dtype=float) for v in (e_hi, e_lo, e_cash))
    conflicts: list[str] = []
    for k, name in enumerate(data.classes):
        if hi[k] > ELASTIC_TOLERANCE:
            conflicts.append(f"band upper {name!r} ({data.upper[k]:.4g})")
        if lo[k] > ELASTIC_TOLERANCE:
            conflicts.append(f"band lower {name!r} ({data.lower[k]:.4g})")
    for a, name in enumerate(data.accounts):
        if cash[a] > ELASTIC_TOLERANCE:
            conflicts.append(f"cash reserve of account {name!r}")
    if float(np.asarray(e_turn.value)) > ELASTIC_TOLERANCE:
        conflicts.append(f"turnover cap ({data.turnover_cap:.4g})")
    if elastic is not None:
        conflicts.extend(elastic.conflicts(data, cash, ELASTIC_TOLERANCE))
    reasons: dict[str, None] = {}
    for side, values in (("buy", e_buy.value), ("sell", e_sell.value)):
        for n in np.flatnonzero(np.asarray(values) > ELASTIC_TOLERANCE):
            reasons[data.cap_reasons.get((side, int(n)), f"{side} cap")] = None
    conflicts.extend(reasons)
    listed = "; ".join(conflicts) if conflicts else "numerical trouble near the boundary"
    return InfeasibleError(
        f"no trades satisfy the policy; these constraints conflict: {listed}. Relax one of them, "
        "or set soft_bands = true to turn band breaches into a penalty.",
        conflicts=conflicts)
