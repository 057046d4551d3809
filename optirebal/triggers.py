"""Triggers: whether a look date trades at all (the program then decides how)."""

from __future__ import annotations

import numpy as np

from optirebal.policy import Policy
from optirebal.program.data import ProblemData, deferred_winners

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
    weights = data.exposure_before / data.scale
    return weights_trigger(data.policy, data.classes, weights, data.target, data.factor,
                           data.specific_variance,
                           deferred_winners(data.policy, data.classes, weights,
                                            data.portfolio.signals))


def quiet_reason(data: ProblemData) -> str:
    """Why a look that :func:`triggered` refused trades nothing."""
    winners = deferred_winners(data.policy, data.classes, data.exposure_before / data.scale,
                               data.portfolio.signals)
    if winners.any():
        names = ", ".join(name for name, w in zip(data.classes, winners, strict=True) if w)
        return (f"momentum: trim deferred ({names}); every other class is inside its trigger "
                "band and no cash must move: no trade")
    return "every class is inside its trigger band and no cash must move: no trade"


def weights_trigger(policy: Policy, classes: list[str], weights: np.ndarray,
                    target: np.ndarray, factor: np.ndarray, specific_variance: np.ndarray,
                    set_aside: np.ndarray | None = None) -> bool:
    """Whether class ``weights`` (fractions of NAV) breach a trigger band or the tracking-error
    level of ``policy``; ``factor`` (classes x factors) and ``specific_variance`` (per class,
    fraction squared per year) are the risk model over ``classes``.

    Classes ``set_aside`` (the momentum filter's deferred winners) are not tested, and the
    others are tested as a portfolio of their own: weights and targets rescaled to what the
    winners leave, so the drift a running winner causes fires no trigger.
    """
    targets = {name: policy.targets.get(name, 0.0) for name in classes}
    if set_aside is not None and set_aside.any():
        left, left_target = 1.0 - weights[set_aside].sum(), 1.0 - target[set_aside].sum()
        if left <= 0 or left_target <= 0:
            return False
        weights = np.where(set_aside, np.nan, weights / left)
        target = target / left_target
        targets = {name: t / left_target for name, t in targets.items()}
    for k, name in enumerate(classes):
        if set_aside is not None and set_aside[k]:
            continue
        if name == policy.cash_class and name not in policy.class_triggers:
            continue
        band = policy.trigger_of(name)
        if band is None:
            continue
        lo, hi = band.edges(targets[name])
        if weights[k] < lo - TOLERANCE or weights[k] > hi + TOLERANCE:
            return True
    level = policy.tracking_error_trigger
    if level is None:
        return False
    deviation = weights - target
    if set_aside is not None:
        deviation = np.where(set_aside, 0.0, deviation)
    return tracking_error(deviation, factor, specific_variance) > level


def tracking_error(deviation: np.ndarray, factor: np.ndarray,
                   specific_variance: np.ndarray) -> float:
    """Ex-ante tracking error ``sqrt(d' (F F' + diag(s)) d)`` of a class ``deviation``
    (weights), annualized (fraction)."""
    exposure = factor.T @ deviation
    return float(np.sqrt(exposure @ exposure + specific_variance @ deviation**2))
