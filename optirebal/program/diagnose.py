"""Which constraints conflict: the program's elastic form, with every policy limit relaxed.

When the rebalance is infeasible, the program is built again from the same terms with the
builder in elastic mode (:class:`optirebal.program.conic.Builder`): every row a term marks
relaxable (a band edge of one class, the cash reserve of one account, the turnover cap, the gain
budget, the overlay's bounds, the buy and sell caps set by restrictions, modes and wash-sale
rules) gets a non-negative slack, and the total slack is minimized. The rows that must take a
positive slack are the ones in conflict: relaxing any of them (or making bands soft) is what
makes the policy feasible. Lot quantities and cash flows are physical and never relaxed. This
runs only on failure.
"""

from __future__ import annotations

import numpy as np

from optirebal.errors import InfeasibleError
from optirebal.program.data import ProblemData
from optirebal.program.solvers import INACCURATE, INFEASIBLE, OPTIMAL, solve_conic
from optirebal.program.terms import build_program

ELASTIC_TOLERANCE = 1e-7

ELASTIC_OPTIONS = {"CLARABEL": {"max_iter": 200}, "ECOS": {"max_iters": 200}}
"""The diagnosis keeps the solvers' own tolerances and a fixed iteration limit, whatever the
rebalance's settings were (the slacks need not be as precise as trades)."""


def diagnose(data: ProblemData) -> InfeasibleError:
    """Build the :class:`InfeasibleError` naming the conflicting constraints."""
    program, ctx = build_program(data, elastic=True)
    answer = None
    for solver in ("CLARABEL", "ECOS"):
        try:
            answer = solve_conic(program, solver, settings=ELASTIC_OPTIONS[solver])
        except Exception:  # the next solver may manage
            continue
        if answer.status in (OPTIMAL, INACCURATE):
            break
    if answer is not None and answer.status == INFEASIBLE:
        return InfeasibleError(
            "the rebalance is infeasible even with every policy constraint relaxed: the lots "
            "cannot cover the withdrawals and reserves", conflicts=("holdings and cash flows",))
    if answer is None or answer.x is None or answer.status not in (OPTIMAL, INACCURATE):
        return InfeasibleError("the rebalance failed and the diagnosis of its constraints "
                               "failed too", conflicts=())
    conflicts: dict[str, None] = {}
    for name, (columns, labels) in ctx.builder.slacks.items():
        slack = answer.x[columns]
        for n in np.flatnonzero(slack > ELASTIC_TOLERANCE):
            conflicts[labels(int(n)) if labels is not None else name] = None
    listed = "; ".join(conflicts) if conflicts else "numerical trouble near the boundary"
    return InfeasibleError(
        f"no trades satisfy the policy; these constraints conflict: {listed}. Relax one of them, "
        "or set soft_bands = true to turn band breaches into a penalty.",
        conflicts=list(conflicts))
