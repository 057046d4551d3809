"""Triggers: whether a look date trades at all (the program then decides how)."""

from __future__ import annotations

import numpy as np

from optirebal.policy import Policy
from optirebal.program.data import ProblemData

TOLERANCE = 1e-12  # a weight this close to a trigger edge is inside


def triggered(data: ProblemData) -> bool:
    """False when a trigger policy says to leave the portfolio alone.

    Cash is the residual of the risky classes: the policy's trigger applies to it only when it
    names cash in ``class_triggers`` (and its destination band then follows, see
    :func:`optirebal.program.data.base_problem_data`). So the band mechanics of a 60/40
    stock/cash portfolio are those of the stock alone.
    """
    if not data.policy.has_trigger:
        return True
    if (data.flow != 0).any() or (data.cash < data.reserve).any():
        return True
    return weights_trigger(data.policy, data.classes, data.exposure_before / data.scale,
                           data.target, data.factor, data.specific_variance)


def weights_trigger(policy: Policy, classes: list[str], weights: np.ndarray,
                    target: np.ndarray, factor: np.ndarray, specific_variance: np.ndarray) -> bool:
    """Whether class ``weights`` (fractions of NAV) breach a trigger band or the tracking-error
    level of ``policy``; ``factor`` (classes x factors) and ``specific_variance`` (per class,
    fraction squared per year) are the risk model over ``classes``."""
    for k, name in enumerate(classes):
        if name == policy.cash_class and name not in policy.class_triggers:
            continue
        band = policy.trigger_of(name)
        if band is None:
            continue
        lo, hi = band.edges(policy.targets[name])
        if weights[k] < lo - TOLERANCE or weights[k] > hi + TOLERANCE:
            return True
    level = policy.tracking_error_trigger
    if level is None:
        return False
    return tracking_error(weights - target, factor, specific_variance) > level


def tracking_error(deviation: np.ndarray, factor: np.ndarray,
                   specific_variance: np.ndarray) -> float:
    """Ex-ante tracking error ``sqrt(d' (F F' + diag(s)) d)`` of a class ``deviation``
    (weights), annualized (fraction)."""
    exposure = factor.T @ deviation
    return float(np.sqrt(exposure @ exposure + specific_variance @ deviation**2))
