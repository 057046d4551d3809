"""Which constraints conflict: the program's elastic form, with every policy limit relaxed.

When the rebalance is infeasible, the program is built again from the same terms with the
builder in elastic mode (:class:`optirebal.program.conic.Builder`): every row a term marks
relaxable (a band edge of one class, the cash reserve of one account, the turnover cap, the gain
budget, the overlay's bounds, the buy and sell caps set by restrictions, modes and wash-sale
rules) gets a non-negative slack, and the total slack is minimized. The rows that must take a
positive slack are the ones in conflict: relaxing any of them (or making bands soft) is what
makes the policy feasible. When those are limits other than bands, a second pass names the band
edges they keep out of reach (a gain budget and the band it conflicts with). Lot
quantities and cash flows are physical and never relaxed. This runs only on failure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optirebal.errors import InfeasibleError
from optirebal.program.data import ProblemData
from optirebal.program.solvers import INACCURATE, INFEASIBLE, OPTIMAL, solve_conic
from optirebal.program.terms import build_program

ELASTIC_TOLERANCE = 1e-7

ELASTIC_OPTIONS = {"CLARABEL": {"max_iter": 200}, "ECOS": {"max_iters": 200}}
"""The diagnosis keeps the solvers' own tolerances and a fixed iteration limit, whatever the
rebalance's settings were (the slacks need not be as precise as trades)."""


BANDS = ("band upper", "band lower")
"""The relaxable blocks of the band edges (:mod:`optirebal.program.terms.bands`)."""

NAMED_COST = 1e4
"""Cost of a unit of slack on a row the first pass named, in the second pass: high enough that
the elastic program relaxes any other row that can take the conflict instead."""


Slacks = dict[str, tuple[np.ndarray, Callable[[int], str] | None]]
"""Per relaxable block: its rows with a positive slack, and their labels."""


def _elastic(data: ProblemData, named: Slacks | None = None) -> tuple[str, Slacks]:
    """Solve the elastic form, the rows of ``named`` priced at :data:`NAMED_COST`; the status
    and, per relaxable block, the rows with a positive slack and their labels."""
    costs = None
    if named:
        _, ctx = build_program(data, elastic=True)
        costs = {}
        for name, (columns, _) in ctx.builder.slacks.items():
            costs[name] = np.ones(columns.stop - columns.start)
            if name in named:
                costs[name][named[name][0]] = NAMED_COST
    program, ctx = build_program(data, elastic=True, slack_costs=costs)
    answer = None
    for solver in ("CLARABEL", "ECOS"):
        try:
            answer = solve_conic(program, solver, settings=ELASTIC_OPTIONS[solver])
        except Exception:  # the next solver may manage
            continue
        if answer.status in (OPTIMAL, INACCURATE):
            break
    if answer is None or answer.x is None or answer.status not in (OPTIMAL, INACCURATE):
        return ("failed" if answer is None else answer.status), {}
    return OPTIMAL, {name: (np.flatnonzero(answer.x[columns] > ELASTIC_TOLERANCE), labels)
                     for name, (columns, labels) in ctx.builder.slacks.items()}


def diagnose(data: ProblemData) -> InfeasibleError:
    """Build the :class:`InfeasibleError` naming the conflicting constraints.

    The elastic solve names the rows whose slack is cheapest. When none of them is a band edge
    (a gain budget, a turnover cap, a reserve) and bands are hard, a second solve prices them
    high and names the band edges that then take the slack: the bands the limit keeps out of
    reach (the gain budget's slack is the smaller, and alone it would hide the band it
    conflicts with)."""
    status, first = _elastic(data)
    if status == INFEASIBLE:
        return InfeasibleError(
            "the rebalance is infeasible even with every policy constraint relaxed: the lots "
            "cannot cover the withdrawals and reserves", conflicts=("holdings and cash flows",))
    if status != OPTIMAL:
        return InfeasibleError("the rebalance failed and the diagnosis of its constraints "
                               "failed too", conflicts=())
    named = {name: picked for name, picked in first.items() if len(picked[0])}
    passes = [named]
    # soft bands never conflict: they take a penalty instead
    if named and not data.soft_bands and not any(name in BANDS for name in named):
        status, second = _elastic(data, named)
        if status == OPTIMAL:
            passes.append({name: second[name] for name in BANDS if name in second})
    conflicts: dict[str, None] = {}
    for found in passes:
        for name, (rows, labels) in found.items():
            for n in rows:
                conflicts[labels(int(n)) if labels is not None else name] = None
    listed = "; ".join(conflicts) if conflicts else "numerical trouble near the boundary"
    return InfeasibleError(
        f"no trades satisfy the policy; these constraints conflict: {listed}. Relax one of them, "
        "or set soft_bands = true to turn band breaches into a penalty.",
        conflicts=list(conflicts))
