r"""The convex program of an execution schedule, its solver chain and its certificate (private).

Variables are *fractions of each order*: :math:`y_{ik}` is the part of security i's order still to
trade after interval k (:math:`y_{i0} = 1`, :math:`y_{iN} = 0`), and :math:`d_{ik} = y_{i,k-1} -
y_{ik}` the part traded in interval k. Solved in raw shares the same program has coefficients
spread over twenty orders of magnitude and solvers return wrong answers with only a warning; in
fractions every variable lies in [0, 1] whatever the order size. The objective is divided by the
temporary cost of even slicing (currency), so it is of order one.

.. math::

    \min_y\; & \frac{1}{c_0}\Big(\sum_{ik} a_{ik}\, d_{ik}^{1+\beta}
        + \lambda \tau \sum_{k=1}^{N-1} \big(\|F^\top (w \circ y_k)\|^2
        + \|s \circ w \circ y_k\|^2\big)\Big) \\
    \text{s.t. }\; & 0 \le d_{ik} \le \bar n_{ik} / |X_i| ,

with :math:`a_{ik} = |X_i|^{1+\beta}\, \eta \sigma_i P_i / V_{ik}^\beta` (minus
:math:`g_i X_i^2 / 2` in the discrete linear model), :math:`w_i = P_i X_i` the signed order value,
:math:`F, s` the daily factor and specific volatility, :math:`\bar n` the participation cap in
shares. :math:`d \ge 0` keeps every child order on the side of its parent (no round trips). The
covariance enters as ``sum_squares(F' y)``, never as ``quad_form`` (DESIGN section 12), and the
risk aversion is a Parameter, so a frontier sweep compiles once.

The power :math:`d^{1+\beta}` has two exact forms: 3D power cones and second-order cones (for a
rational power such as 3/2 or 8/5). Clarabel gets the power cones first (fewer cones; on the 3/2
power the other form stalls short of full accuracy), then the other form, then ECOS (second-order
cones only). Each form is built once, on first use.

Every answer is checked in numpy, whatever the solver says: constraints within
:data:`TOLERANCE`, the objective equal to the solver's, and a *certificate* of optimality
(:meth:`Program.certificate`) within :data:`GAP_TOLERANCE`. Orders of very different sizes in one
program (objective weights ten orders of magnitude apart) can leave an interior-point solver just
short of its own tolerance while the answer is already optimal to 1e-8: such an answer is taken
when it is certified, and reported as ``certified`` rather than ``optimal``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from optirebal.errors import SolverError
from optirebal.execution._inputs import Plan

SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9},
    "ECOS": {"abstol": 1e-8, "reltol": 1e-8, "feastol": 1e-8, "max_iters": 200},
}
"""Tight tolerances: a fraction off by 1e-9 is a thousandth of a share of a million-share order.
ECOS, the fallback, stops short of 1e-9 on these programs and is held to its default 1e-8."""

POWER_CONE_SOLVERS = frozenset({"CLARABEL", "SCS", "MOSEK"})
"""Solvers that take the 3D power cone; the others get the second-order-cone form of a power."""

TOLERANCE = 1e-7
"""Largest accepted violation of a bound or cap (fraction of the order), and relative difference
between the solver's objective and the numpy objective at its answer."""

GAP_TOLERANCE = 1e-7
"""Largest accepted certified gap to the optimum, relative to ``max(1, objective)``; the objective
is in units of the even-slicing cost, so 1e-7 is a ten-millionth of that cost."""


@dataclass(eq=False)
class Program:
    """A compiled schedule program: set ``risk_aversion``, solve, read ``remaining``.

    Not thread-safe (a cvxpy problem holds its last solution).
    """

    problem: cp.Problem
    remaining: cp.Variable
    risk_aversion: cp.Parameter
    cost: np.ndarray
    exponent: float
    risk_factor: np.ndarray
    risk_specific: np.ndarray
    cap: np.ndarray | None

    def objective(self, path: np.ndarray, risk_aversion: float) -> float:
        """The program's objective in numpy at remaining fractions ``path`` (active, N + 1)."""
        traded = np.maximum(path[:, :-1] - path[:, 1:], 0.0)
        cost = np.sum(self.cost * traded ** (1.0 + self.exponent))
        inner = path[:, 1:-1]
        risk = np.sum((self.risk_factor.T @ inner) ** 2)
        risk += np.sum((self.risk_specific[:, None] * inner) ** 2)
        return float(cost + risk_aversion * risk)

    def residual(self, path: np.ndarray) -> float:
        """Largest violation (fraction of the order) of the program's constraints at ``path``."""
        traded = path[:, :-1] - path[:, 1:]
        worst = float(np.max(-traded, initial=0.0))
        if self.cap is not None:
            worst = max(worst, float(np.max(traded - self.cap, initial=0.0)))
        return worst

    def certificate(self, path: np.ndarray, risk_aversion: float) -> float:
        r"""An upper bound on ``objective(path) - optimum``, from weak duality.

        The risk :math:`R` is convex, so :math:`R(d) \ge R(d_0) + g^\top (d - d_0)` with
        :math:`g = \nabla_d R(d_0)`; the impact :math:`h` is kept exact. Then
        :math:`f^* \ge R(d_0) - g^\top d_0 + \sum_i \min_{d_i} [h_i(d_i) + g_i^\top d_i]` over each
        security's child fractions (:math:`0 \le d_{ik} \le \bar d_{ik}`, :math:`\sum_k d_{ik}
        = 1`), and each inner minimum is bounded below by its Lagrangian dual at any multiplier
        :math:`\nu_i` (found by bisection), so the bound is rigorous at any precision. Keeping
        :math:`h` exact matters: its gradient :math:`d^\beta` is steep near 0, and linearizing it
        would inflate the bound by the solver's noise on the last, tiny child orders.
        """
        power = 1.0 + self.exponent
        traded = np.maximum(path[:, :-1] - path[:, 1:], 0.0)
        inner = path[:, 1:-1]
        slope_y = (
            2.0
            * risk_aversion
            * (
                self.risk_factor @ (self.risk_factor.T @ inner)
                + self.risk_specific[:, None] ** 2 * inner
            )
        )
        # y_k = 1 - sum_{j <= k} d_j, so dR/dd_j = -sum_{k >= j} dR/dy_k.
        slope = np.zeros_like(traded)
        slope[:, :-1] = -np.cumsum(slope_y[:, ::-1], axis=1)[:, ::-1]
        cap = np.ones_like(traded) if self.cap is None else np.minimum(self.cap, 1.0)
        curvature = power * self.cost

        def best(nu: np.ndarray) -> np.ndarray:
            # argmin over 0 <= d <= cap of cost d^p + (slope - nu) d, term by term.
            drive = np.maximum(nu[:, None] - slope, 0.0) / curvature
            return np.clip(drive ** (1.0 / (power - 1.0)), 0.0, cap)

        low = slope.min(axis=1)
        high = (slope + curvature * cap ** (power - 1.0)).max(axis=1)
        for _ in range(100):
            middle = 0.5 * (low + high)
            over = best(middle).sum(axis=1) > 1.0
            high = np.where(over, middle, high)
            low = np.where(over, low, middle)
        nu = 0.5 * (low + high)
        inner_best = best(nu)
        dual = (
            np.sum(self.cost * inner_best**power + (slope - nu[:, None]) * inner_best, axis=1) + nu
        )
        primal = np.sum(self.cost * traded**power + slope * traded, axis=1)
        return float(max(np.sum(primal - dual), 0.0))


@dataclass(frozen=True, eq=False)
class Solution:
    """A verified optimum: remaining fractions with what it took to get them.

    ``status`` is ``optimal`` (the solver's word, confirmed), ``certified`` (the solver stopped
    just short of its tolerance, the certificate proves the answer optimal within
    :data:`GAP_TOLERANCE`) or ``trivial`` (no program was needed).
    """

    path: np.ndarray
    solver: str
    status: str
    gap: float
    attempts: tuple[tuple[str, str], ...]
    seconds: float


class Programs:
    """The program of one plan in each form its solvers need, each built once on first use."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._built: dict[bool, Program] = {}

    def forms(self, solver: str) -> list[tuple[str, Program]]:
        """The attempts for ``solver``: a label and a program, in the order to try them."""
        if self.plan.impact.exponent == 1.0 or solver not in POWER_CONE_SOLVERS:
            return [(solver, self._form(False))]  # a quadratic, or a solver without power cones
        return [
            (f"{solver}, power cones", self._form(True)),
            (f"{solver}, second-order cones", self._form(False)),
        ]

    def _form(self, power_cone: bool) -> Program:
        if power_cone not in self._built:
            self._built[power_cone] = build(self.plan, power_cone=power_cone)
        return self._built[power_cone]


def build(plan: Plan, *, power_cone: bool) -> Program:
    """The program of ``plan`` (at least one active security and two intervals).

    ``power_cone`` writes the impact power with 3D power cones instead of second-order cones.
    """
    size = np.abs(plan.active_orders)
    count = plan.intervals
    terms = plan.impact
    power = 1.0 + terms.exponent
    cost = terms.temporary * size[:, None] ** power
    if terms.discrete_permanent:
        # A child order does not pay its own permanent impact: -g n^2 / 2 (Almgren-Chriss).
        cost = cost - 0.5 * terms.permanent[:, None] * size[:, None] ** 2
    # Currency per unit of objective: the temporary cost of even slices, so the optimum is O(1).
    scale = float(np.sum(cost) * count ** (-power))
    cost = cost / scale
    value = plan.price * plan.active_orders
    weight = value * np.sqrt(plan.tau / scale)
    risk_factor = plan.factor * weight[:, None]
    risk_specific = plan.specific * weight
    cap = None if plan.cap_shares is None else plan.cap_shares / size[:, None]

    rows = size.size
    remaining = cp.Variable((rows, count - 1), name="remaining")
    path = cp.hstack([np.ones((rows, 1)), remaining, np.zeros((rows, 1))])
    traded = path[:, :-1] - path[:, 1:]
    if terms.exponent == 1.0:
        impact = cp.sum(cp.multiply(cost, cp.square(traded)))
    else:
        impact = cp.sum(cp.multiply(cost, cp.power(traded, power, approx=not power_cone)))
    risk: cp.Expression = cp.Constant(0.0)
    if risk_factor.shape[1]:
        risk = risk + cp.sum_squares(risk_factor.T @ remaining)
    if np.any(risk_specific):
        risk = risk + cp.sum_squares(cp.multiply(risk_specific[:, None], remaining))
    risk_aversion = cp.Parameter(nonneg=True, name="risk_aversion", value=0.0)
    constraints = [traded >= 0]
    if cap is not None:
        constraints.append(traded <= cap)
    problem = cp.Problem(cp.Minimize(impact + risk_aversion * risk), constraints)
    return Program(
        problem, remaining, risk_aversion, cost, terms.exponent, risk_factor, risk_specific, cap
    )


def solve(programs: Programs, risk_aversion: float, solvers: Sequence[str]) -> Solution:
    """Solve at ``risk_aversion`` (1 / currency) with the first solver that gives a verified answer.

    Raises
    ------
    SolverError
        When no solver gives a verified answer, listing every attempt and its status.
    """
    attempts: list[tuple[str, str]] = []
    start = time.perf_counter()
    for solver in solvers:
        for label, program in programs.forms(solver):
            path, status, gap = _attempt(program, solver, risk_aversion)
            if path is None:
                attempts.append((label, status))
                continue
            attempts.append((label, f"{status}, certified gap {gap:.1e}"))
            verdict = "optimal" if status == cp.OPTIMAL else "certified"
            return Solution(
                path, solver, verdict, gap, tuple(attempts), time.perf_counter() - start
            )
    detail = "; ".join(f"{name}: {status}" for name, status in attempts)
    raise SolverError(
        f"no solver returned a verified schedule ({detail}); try another solver in `solvers`, "
        "or check the market data for extreme values",
        attempts=attempts,
    )


def _attempt(
    program: Program, solver: str, risk_aversion: float
) -> tuple[np.ndarray | None, str, float]:
    """One solve: the verified remaining fractions (or None), the status and the relative gap."""
    program.risk_aversion.value = risk_aversion
    try:
        with warnings.catch_warnings():
            # An inaccurate answer is checked below, and taken only when certified: the cvxpy
            # warning would only alarm a user who gets every attempt's status anyway.
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            # cvxpy evaluates the power at the answer, where solver noise of -1e-12 on a child
            # fraction gives NaN; the numpy objective below clips it and is the one checked.
            warnings.filterwarnings(
                "ignore", message="invalid value encountered in power", category=RuntimeWarning
            )
            program.problem.solve(solver=solver, **SOLVER_OPTIONS.get(solver, {}))
    except (cp.error.SolverError, ValueError) as exc:
        return None, f"error: {exc}", np.inf
    status = str(program.problem.status)
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or program.remaining.value is None:
        return None, status, np.inf
    rows = program.cost.shape[0]
    path = np.hstack([np.ones((rows, 1)), program.remaining.value, np.zeros((rows, 1))])
    residual = program.residual(path)
    value = program.objective(path, risk_aversion)
    size = max(1.0, abs(value))
    reported = float(program.problem.value)
    mismatch = abs(value - reported) / size if np.isfinite(reported) else 0.0
    gap = program.certificate(path, risk_aversion) / size
    # Written so that a NaN anywhere fails the check.
    if not (residual <= TOLERANCE and mismatch <= TOLERANCE and gap <= GAP_TOLERANCE):
        return (
            None,
            (
                f"{status} but unverified (residual {residual:.1e}, objective mismatch "
                f"{mismatch:.1e}, certified gap {gap:.1e})"
            ),
            gap,
        )
    return path, status, gap
