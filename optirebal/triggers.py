"""Triggers: whether a look date trades at all (the program then decides how)."""

from __future__ import annotations

from optirebal.program.data import ProblemData


def triggered(data: ProblemData) -> bool:
    """False when a trigger policy says to leave the portfolio alone.

    Cash is the residual of the risky classes: the policy's trigger applies to it only when it
    names cash in ``class_triggers`` (and its destination band then follows, see
    :func:`optirebal.program.data.base_problem_data`). So the band mechanics of a 60/40
    stock/cash portfolio are those of the stock alone.
    """
    policy = data.policy
    if policy.trigger is None and not policy.class_triggers:
        return True
    if (data.flow != 0).any() or (data.cash < data.reserve).any():
        return True
    weights = data.exposure_before / data.scale
    for k, name in enumerate(data.classes):
        if name == policy.cash_class and name not in policy.class_triggers:
            continue
        band = policy.trigger_of(name)
        if band is None:
            continue
        lo, hi = band.edges(policy.targets[name])
        if weights[k] < lo - 1e-12 or weights[k] > hi + 1e-12:
            return True
    return False
