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
shares. :math:`d \ge 0` keeps every child order on the side of its parent (no round trips).

The program is assembled directly as conic data by the layer the rebalancing program uses
(:class:`optirebal.program.conic.Builder`) and solved by its solvers
(:func:`optirebal.program.solvers.solve_conic`): one solver chain for both. The covariance enters
as squares of the factor exposures :math:`u_k = F^\top (w \circ y_k)`, variables tied to
:math:`y` by equalities, never as a dense quadratic form (DESIGN section 12); the specific risk is
a diagonal square of :math:`y`. Assembly takes milliseconds, so a frontier sweep assembles afresh
at each risk aversion (the numbers that do not depend on it are computed once per plan).

The power :math:`d^{1+\beta}` has two exact forms: one 3D power cone per child order,
``(t, 1, c^{1/p} d)`` with ``c`` its cost coefficient, :math:`p = 1 + \beta` and
:math:`\alpha = 1 / p` (Clarabel only), and, for a rational power such as 3/2 or 8/5, a chain of
rotated second-order cones. Clarabel gets the power cones first (fewer cones and rows), then the
second-order cones; ECOS takes the second-order cones only, and a power without an exact
second-order-cone form is ``skipped`` for it. The linear model is a QP (a square of each child
fraction) and has one form.

An interior-point answer is then *polished* (:meth:`Program.polish`): Newton's method on the
optimality conditions, from the bounds the answer holds, gives the optimal fractions to machine
precision in a few cheap steps. The solver's gap pins the objective, not the fractions (to about
its square root), and whole-share rounding needs the fractions: without it two programs of one
schedule could round a child order differently.

Every answer is checked in numpy, whatever the solver says: constraints within
:data:`TOLERANCE`, the solver's objective equal to numpy's at its answer, and a *certificate* of
optimality (:meth:`Program.certificate`) within :data:`GAP_TOLERANCE`. Orders of very different
sizes in one program (objective weights ten orders of magnitude apart) can leave an
interior-point solver just short of its own tolerance while the answer is already optimal to
1e-8: such an answer is taken when it is certified, and reported as ``certified`` rather than
``optimal``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse as sp

from optirebal.errors import SolverError
from optirebal.execution._inputs import Plan
from optirebal.execution.impact import power_cost
from optirebal.program.conic import Affine, Builder, ConicProgram
from optirebal.program.solvers import INACCURATE, OPTIMAL, Answer, solve_conic

SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9},
    "ECOS": {"abstol": 1e-8, "reltol": 1e-8, "feastol": 1e-8, "max_iters": 200},
}
"""Settings passed to each solver as they are (its own defaults elsewhere; a solver without an
entry gets those of :data:`optirebal.program.solvers.SOLVER_OPTIONS`). Tight tolerances: a
fraction off by 1e-9 is a thousandth of a share of a million-share order. ECOS, the fallback,
stops short of 1e-9 on these programs and is held to its default 1e-8."""

SOLVERS = ("CLARABEL", "ECOS", "OSQP")
"""The solvers of :mod:`optirebal.program.solvers`; OSQP takes the linear model (a QP) only."""

POWER_CONE_SOLVERS = frozenset({"CLARABEL"})
"""Solvers that take the 3D power cone; the others get the second-order-cone form of a power."""

POWER_CONES, SECOND_ORDER_CONES, QUADRATIC = "power cones", "second-order cones", "quadratic"
"""The forms of the program: how the impact power is written."""

MAX_DENOMINATOR = 1024
"""Largest denominator of ``1 / (1 + beta)`` written with second-order cones (ten levels of
rotated cones per child order); another power has no exact second-order-cone form."""

TOLERANCE = 1e-7
"""Largest accepted violation of a bound or cap (fraction of the order), and relative difference
between the solver's objective and the numpy objective at its answer."""

MAX_NEWTON = 200
"""Most Newton steps of :meth:`Program.polish`. From an interior-point answer it takes 5 to 15,
more when the answer holds many bounds wrongly (a step adds the bounds it reaches)."""

POLISH_EXPOSURES = 600
"""Most factor exposures (factors x (intervals - 1)) for :meth:`Program.polish`, whose steps
solve a dense system of that size: 600 (a 50-factor model over 13 intervals) takes about 20 ms a
step with 500 orders. A larger program (a full covariance of hundreds of securities) is left as
the solver answered it: verified, but with its fractions only as accurate as its gap allows."""

NEWTON_STEP = 1e-12
"""A Newton step this small (in fractions of the order) ends :meth:`Program.polish`."""

GAP_TOLERANCE = 1e-7
"""Largest accepted certified gap to the optimum, relative to ``max(1, objective)``; the objective
is in units of the even-slicing cost, so 1e-7 is a ten-millionth of that cost."""


@dataclass(eq=False)
class Program:
    """One form of the schedule program of a plan: its numbers, its conic data at any risk
    aversion (:meth:`conic`) and its numpy twins (:meth:`objective`, :meth:`residual`,
    :meth:`certificate`). Holds no solver state, so it may be shared between threads.

    Attributes
    ----------
    cost : ndarray, shape (active, intervals)
        :math:`a_{ik} / c_0`, the impact coefficient of each child fraction.
    exponent : float
        :math:`\\beta`: a child fraction costs ``cost * d ** (1 + exponent)``.
    risk_factor : ndarray, shape (active, factors)
        :math:`F` scaled by the order values and :math:`\\sqrt{\\tau / c_0}`.
    risk_specific : ndarray, shape (active,)
        :math:`s` scaled likewise.
    cap : ndarray, shape (active, intervals), optional
        Largest child fraction of each order (participation cap), or None.
    form : str
        :data:`POWER_CONES`, :data:`SECOND_ORDER_CONES` or :data:`QUADRATIC`.
    """

    cost: np.ndarray
    exponent: float
    risk_factor: np.ndarray
    risk_specific: np.ndarray
    cap: np.ndarray | None
    form: str

    @property
    def power(self) -> float:
        """:math:`1 + \\beta`."""
        return 1.0 + self.exponent

    # --- the conic program -------------------------------------------------------------------

    def conic(self, risk_aversion: float) -> ConicProgram:
        """The conic data at ``risk_aversion`` (1 / currency), assembled afresh.

        Variables: ``remaining`` (:math:`y`, by security then interval), ``traded`` (:math:`d`,
        in the quadratic form only; an affine expression of :math:`y` elsewhere), ``impact``
        (the epigraph :math:`t \\ge c\\, d^{1+\\beta}`, ``c`` the :attr:`cost`) with the means of
        its second-order-cone chain, and ``exposure`` (:math:`u`, when the risk counts).
        """
        rows, count = self.cost.shape
        bld = Builder()
        remaining = bld.variable("remaining", rows * (count - 1))
        steps, offset = _differences(rows, count)
        traded = steps @ remaining + offset
        cost = self.cost.ravel()
        if self.form == QUADRATIC:
            # A variable of its own, so that the squares stay on the diagonal of P.
            variable = bld.variable("traded", rows * count)
            bld.equal("traded", variable - traded)
            traded = variable
            bld.minimize_squares("traded", cost)
        else:
            # The cone holds c^(1/p) d, so that the epigraph t >= c d^p is the cost itself: with
            # t >= d^p weighted by c, coefficients ten orders of magnitude apart leave Clarabel
            # short of full accuracy more often (the 3/2 power of bench_execution.py among them).
            impact = bld.variable("impact", rows * count)
            scaled = traded * cost ** (1.0 / self.power)
            if self.form == POWER_CONES:
                bld.power_at_least("impact cone", impact, scaled, 1.0 / self.power)
            else:
                _geometric_chain(bld, impact, scaled, _root(self.power))
            bld.minimize(impact)
        bld.at_most("no reversal", -traded)
        if self.cap is not None:
            bld.at_most("participation cap", traded, self.cap.ravel())
        if risk_aversion > 0:
            if self.risk_factor.shape[1]:
                factors = self.risk_factor.shape[1]
                exposure = bld.variable("exposure", factors * (count - 1))
                loading = sp.kron(sp.csr_matrix(self.risk_factor.T), sp.eye(count - 1))
                bld.equal("exposure", exposure - loading @ bld.select("remaining"))
                bld.minimize_squares("exposure", risk_aversion)
            if np.any(self.risk_specific):
                specific = np.repeat(self.risk_specific**2, count - 1)
                bld.minimize_squares("remaining", risk_aversion * specific)
        return bld.assemble()

    def path(self, program: ConicProgram, x: np.ndarray) -> np.ndarray:
        """Remaining fractions (active, N + 1) of the solution ``x`` of ``program``."""
        rows, count = self.cost.shape
        inner = x[program.variables["remaining"]].reshape(rows, count - 1)
        return np.hstack([np.ones((rows, 1)), inner, np.zeros((rows, 1))])

    def lift(self, program: ConicProgram, path: np.ndarray) -> np.ndarray:
        """The point of ``program`` at remaining fractions ``path``: every variable at the
        smallest value its constraints allow (the epigraphs tight), so its objective there is
        :meth:`objective`."""
        x = np.zeros(program.n)
        traded = np.maximum(path[:, :-1] - path[:, 1:], 0.0).ravel()
        x[program.variables["remaining"]] = path[:, 1:-1].ravel()
        if "traded" in program.variables:
            x[program.variables["traded"]] = traded
        scaled = traded * self.cost.ravel() ** (1.0 / self.power)
        if "impact" in program.variables:
            x[program.variables["impact"]] = scaled**self.power
        if self.form == SECOND_ORDER_CONES:
            for name, value in _chain_values(scaled, _root(self.power)).items():
                x[program.variables[name]] = value
        if "exposure" in program.variables:
            x[program.variables["exposure"]] = (self.risk_factor.T @ path[:, 1:-1]).ravel()
        return x

    # --- polish ------------------------------------------------------------------------------

    def bounds_held(
        self, program: ConicProgram, duals: np.ndarray | None, path: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The child fractions an answer holds at 0 and at the cap (each of shape (active,
        intervals)): the rows whose dual exceeds their slack, the usual interior-point guess."""
        traded = (path[:, :-1] - path[:, 1:]).ravel()
        cap = np.full_like(traded, np.inf) if self.cap is None else self.cap.ravel()

        def held(block: str, slack: np.ndarray) -> np.ndarray:
            rows = program.blocks.get(block)
            if duals is None or rows is None:
                return slack <= 0.0
            return np.abs(duals[rows]) > slack

        low = held("no reversal", traded)
        high = held("participation cap", cap - traded) & ~low
        shape = self.cost.shape
        return low.reshape(shape), high.reshape(shape)

    def polish(
        self, path: np.ndarray, risk_aversion: float, low: np.ndarray, high: np.ndarray
    ) -> np.ndarray:
        r"""The optimum near ``path`` to machine precision, or ``path`` when that fails.

        An interior-point answer within a gap ``g`` of the optimum has its fractions only within
        about :math:`\sqrt{g}` of the optimal ones (the objective is flat at the optimum): at
        the gaps Clarabel reaches, a few tenths of a share of a 50,000-share order, so two
        programs of one schedule (a risk model and its covariance) could round their cumulative
        shares to different whole numbers. Newton's method on the optimality conditions in the
        child fractions :math:`d_i` (each security's summing to one), with the fractions ``low``
        held at 0 and ``high`` at their cap, converges from there in a few steps. A fraction that
        a step takes across a bound is held there from then on, and a held one whose multiplier
        has the wrong sign is released, so the end point satisfies the optimality conditions of
        the (strictly convex) program: it is its optimum. It is taken only when it is also
        feasible and its certificate (:meth:`certificate`) is no worse than that of ``path``,
        and it is verified like any answer.

        Each step solves one small system per security (its fractions and the multiplier of its
        sum), batched, plus one of the size of the factor exposures (factors x intervals) for the
        covariance that couples the securities (the Woodbury identity); a program whose exposures
        would make that too large is left as the solver answered it.
        """
        count = self.cost.shape[1]
        factor = self.risk_factor if risk_aversion > 0 else self.risk_factor[:, :0]
        if factor.shape[1] * (count - 1) > POLISH_EXPOSURES:
            return path
        power, cost = self.power, self.cost
        cap = np.full(cost.shape, np.inf) if self.cap is None else self.cap
        low, high = low.copy(), high.copy() & ~low
        for i in np.flatnonzero((low | high).sum(axis=1) >= count):
            # a security has count - 1 free fractions: keep one of them free
            extra = np.flatnonzero(low[i] | high[i])[count - 1 :]
            low[i, extra] = high[i, extra] = False
        # y_k = 1 - sum_{m <= k} d_m for the inner k: y = 1 - d C'
        cumulative = np.tril(np.ones((count - 1, count)))
        traded = path[:, :-1] - path[:, 1:]
        previous = np.inf
        for _ in range(MAX_NEWTON):
            traded = np.where(low, 0.0, np.where(high, cap, traded))
            remaining = 1.0 - traded @ cumulative.T
            risk_slope = -(
                2.0
                * risk_aversion
                * (
                    self.risk_factor @ (self.risk_factor.T @ remaining)
                    + self.risk_specific[:, None] ** 2 * remaining
                )
                @ cumulative
            )
            gradient = power * cost * np.maximum(traded, 0.0) ** (power - 1.0) + risk_slope
            # d^(p-2) is infinite at 0 for p < 2: a free fraction at 0 gets a large finite one
            curvature = power * (power - 1.0) * cost * np.maximum(traded, 1e-12) ** (power - 2.0)
            free = ~(low | high)
            step = _newton_step(
                gradient,
                curvature,
                traded.sum(axis=1),
                free,
                cumulative,
                2.0 * risk_aversion * self.risk_specific**2,
                math.sqrt(2.0 * risk_aversion) * factor,
            )
            if step is None:
                return path
            move, sums = step[:, :count], step[:, count:]
            size = float(np.max(np.abs(move), initial=0.0))
            # converged, or stalled at rounding noise
            done = size <= NEWTON_STEP or (size <= 1e3 * NEWTON_STEP and size > 0.5 * previous)
            previous = size
            if not done:
                # The longest step that keeps the free fractions within their bounds; the
                # bounds that stop it are held from then on.
                reach = np.full(move.shape, np.inf)
                down, up = free & (move < 0.0), free & (move > 0.0)
                reach[down] = np.maximum(traded[down], 0.0) / -move[down]
                reach[up] = np.maximum(cap[up] - traded[up], 0.0) / move[up]
                length = min(1.0, float(np.min(reach, initial=np.inf)))
                traded = traded + length * move
                if length < 1.0:
                    stopped = reach <= length * (1.0 + 1e-9) + 1e-15
                    low |= stopped & down
                    high |= stopped & up
                    previous = np.inf
                continue
            traded = np.clip(traded + move, 0.0, cap)
            # Converged on these bounds: g + nu >= 0 holds a fraction at 0, <= 0 at its cap. A
            # security with every fraction held has no multiplier from the step: take the
            # smallest that suits its fractions at 0.
            pinned = ~free.any(axis=1)
            floor = np.max(np.where(low, -gradient, -np.inf), axis=1)
            ceiling = np.min(np.where(high, -gradient, np.inf), axis=1)
            fitted = np.where(np.isfinite(floor), floor, ceiling)
            sums = np.where(pinned[:, None], fitted[:, None], sums)
            multiplier = gradient + sums
            noise = 1e-12 * (1.0 + float(np.max(np.abs(gradient), initial=0.0)))
            wrong = (low & (multiplier < -noise)) | (high & (multiplier > noise))
            if not wrong.any():
                break
            low &= ~wrong
            high &= ~wrong
            previous = np.inf
            # Start a released fraction where its own terms balance the multiplier (Newton
            # from 0 would crawl up the steep d^(p-1)); the sums are restored by the next step.
            drive = np.maximum(-(sums + risk_slope), 0.0) / (power * cost)
            traded = np.where(wrong, np.clip(drive ** (1.0 / (power - 1.0)), 0.0, cap), traded)
        else:
            return path
        polished = np.zeros_like(path)
        polished[:, 0] = 1.0
        polished[:, 1:-1] = 1.0 - np.cumsum(traded, axis=1)[:, :-1]
        # The certificate, not the objective, compares them: the solver's answer may be a little
        # infeasible, and then below the optimum.
        if self.residual(polished) > 1e-12:
            return path
        after = self.certificate(polished, risk_aversion)
        noise = 1e-12 * max(1.0, abs(self.objective(polished, risk_aversion)))
        if after > noise and after > self.certificate(path, risk_aversion):
            return path
        return polished

    # --- numpy twins -------------------------------------------------------------------------

    def objective(self, path: np.ndarray, risk_aversion: float) -> float:
        """The program's objective in numpy at remaining fractions ``path`` (active, N + 1)."""
        traded = np.maximum(path[:, :-1] - path[:, 1:], 0.0)
        cost = np.sum(power_cost(self.cost, traded, self.power))
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
        power = self.power
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
            np.sum(
                power_cost(self.cost, inner_best, power) + (slope - nu[:, None]) * inner_best,
                axis=1,
            )
            + nu
        )
        primal = np.sum(power_cost(self.cost, traded, power) + slope * traded, axis=1)
        return float(max(np.sum(primal - dual), 0.0))


def _newton_step(
    gradient: np.ndarray,
    curvature: np.ndarray,
    sums: np.ndarray,
    free: np.ndarray,
    cumulative: np.ndarray,
    specific: np.ndarray,
    factor: np.ndarray,
) -> np.ndarray | None:
    r"""One Newton step of :meth:`Program.polish`: the move of every child fraction (0 where
    held) and the multiplier of each security's sum, shape (active, intervals + 1); None when
    the system is singular.

    Per security i the system is :math:`[H_i, 1; 1', 0]` on its free fractions, with
    :math:`H_i = \mathrm{diag}(h'') + s_i^2 C^	op C` (``specific`` :math:`= 2\lambda s^2`,
    ``C`` the ``cumulative`` sums); identity rows hold the rest. The factor risk adds
    :math:`U U^	op` with :math:`U_i = C^	op \otimes F_i` (``factor`` scaled by
    :math:`\sqrt{2\lambda}`), which couples the securities; the Woodbury identity solves it with
    the per-security systems and one dense system of size factors x (intervals - 1). Every
    block of it is a Kronecker product, so each security's system has intervals right-hand
    sides, not factors x intervals.
    """
    rows, count = curvature.shape
    inner_count, factors = count - 1, factor.shape[1]
    both = free[:, :, None] & free[:, None, :]
    system = np.zeros((rows, count + 1, count + 1))
    hessian = specific[:, None, None] * (cumulative.T @ cumulative)[None]
    hessian[:, np.arange(count), np.arange(count)] += curvature
    system[:, :count, :count] = np.where(both, hessian, 0.0)
    system[:, np.arange(count), np.arange(count)] += ~free
    system[:, :count, count] = system[:, count, :count] = free
    pinned = ~free.any(axis=1)  # every fraction held: no sum to keep, no multiplier
    system[pinned, count, count] = 1.0
    right = np.zeros((rows, count + 1, 1 + inner_count))
    right[:, :count, 0] = np.where(free, -gradient, 0.0)
    right[:, count, 0] = np.where(pinned, 0.0, 1.0 - sums)
    # U_i = P_i (x) F_i with P_i = C' on the free rows (and 0 on the multiplier's row)
    right[:, :count, 1:] = free[:, :, None] * cumulative.T[None]
    try:
        solved = np.linalg.solve(system, right)
        step, spread = solved[:, :, 0], solved[:, :, 1:]  # K0^-1 f and Q_i = K0_i^-1 P_i
        if factors:
            placed = right[:, :, 1:]
            # U'K0^-1 U = sum_i (P_i'Q_i) (x) (F_i'F_i), indexed ((k, j), (l, h))
            blocks = np.einsum("imk,iml->ikl", placed, spread).reshape(rows, -1)
            pairs = np.einsum("ij,ih->ijh", factor, factor).reshape(rows, -1)
            coupled = (blocks.T @ pairs).reshape(inner_count, inner_count, factors, factors)
            width = inner_count * factors
            inner = np.eye(width) + coupled.transpose(0, 2, 1, 3).reshape(width, width)
            projected = np.einsum("imk,im->ik", placed, step).T @ factor
            weights = np.linalg.solve(inner, projected.reshape(width))
            step = step - np.einsum(
                "imk,ik->im", spread, factor @ weights.reshape(inner_count, factors).T
            )
    except np.linalg.LinAlgError:
        return None
    return step if np.all(np.isfinite(step)) else None


def _differences(rows: int, count: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``D, c`` with ``d = D y + c``: the child fractions (by security, then interval) from the
    remaining ones, :math:`d_{ik} = y_{i,k-1} - y_{ik}` with :math:`y_{i0} = 1, y_{iN} = 0`."""
    step = sp.eye(count, count - 1, k=-1) - sp.eye(count, count - 1)
    start = np.zeros((rows, count))
    start[:, 0] = 1.0
    return sp.csr_matrix(sp.kron(sp.eye(rows), step)), start.ravel()


def _root(power: float) -> Fraction | None:
    """``1 / power`` as an exact fraction of denominator at most :data:`MAX_DENOMINATOR`, or
    None: the exponent of the weighted geometric mean ``d <= t^alpha 1^(1 - alpha)``."""
    alpha = Fraction(1.0 / power).limit_denominator(MAX_DENOMINATOR)
    return alpha if abs(float(alpha) * power - 1.0) <= 1e-14 else None


def _chain(root: Fraction) -> list[tuple[str, str, str]]:
    r"""The rotated cones ``(a, b, c)``, meaning :math:`a b \ge c^2`, that write
    :math:`d \le t^{p/q}` (``root`` :math:`= p/q`), in the order to build them.

    With :math:`2^m \ge q`, the power is :math:`d^{2^m} \le t^p\, d^{2^m - q}\, 1^{q - p}`: ``d``
    bounded by the geometric mean of :math:`2^m` leaves. A binary tree of rotated cones writes the
    mean; equal leaves pair up free (:math:`\sqrt{x x} = x`), so each level needs a new mean only
    for the leaves left over, at most a few. For 3/2 this is ``d^2 <= t w, w^2 <= d`` (the form
    of :mod:`optirebal.program.terms.impact`); for 8/5, ``d^2 <= t w2, w2^2 <= w1, w1^2 <= t``.
    """
    q, p = root.denominator, root.numerator
    leaves = 1 << max(1, math.ceil(math.log2(q)))
    counts = {"impact": p, "traded": leaves - q, "one": q - p}
    cones: list[tuple[str, str, str]] = []
    while sum(counts.values()) > 2:
        odd = [name for name, number in counts.items() if number % 2]
        counts = {name: number // 2 for name, number in counts.items() if number // 2}
        for left, right in zip(odd[::2], odd[1::2], strict=True):
            mean = f"impact mean {len(cones)}"
            cones.append((left, right, mean))
            counts[mean] = 1
    last = [name for name, number in counts.items() for _ in range(number)]
    cones.append((last[0], last[1], "traded"))
    return cones


def _geometric_chain(bld: Builder, impact: Affine, traded: Affine, root: Fraction | None) -> None:
    """``impact >= traded ** (1 / root)`` with the rotated cones of :func:`_chain`."""
    if root is None:
        raise ValueError("the power has no exact second-order-cone form")
    size = impact.size
    terms = {"impact": impact, "traded": traded, "one": Affine.ones(size, bld.n)}
    for left, right, mean in _chain(root):
        if mean not in terms:
            terms[mean] = bld.variable(mean, size)
        bld.product_at_least(f"{mean} cone", terms[left], terms[right], terms[mean])


def _chain_values(traded: np.ndarray, root: Fraction | None) -> dict[str, np.ndarray]:
    """The means of :func:`_chain` at ``traded``, each at the geometric mean of its leaves."""
    assert root is not None
    values = {
        "impact": traded ** (1.0 / float(root)),
        "traded": traded,
        "one": np.ones_like(traded),
    }
    means: dict[str, np.ndarray] = {}
    for left, right, mean in _chain(root):
        if mean != "traded":
            values[mean] = means[mean] = np.sqrt(values[left] * values[right])
    return {name: np.broadcast_to(value, traded.shape) for name, value in means.items()}


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
    """The program of one plan in each form its solvers need, each made once on first use."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._built: dict[str, Program] = {}

    def forms(self, solver: str) -> list[tuple[str, Program]]:
        """The attempts for ``solver``: a label and a program, in the order to try them."""
        if self.plan.impact.exponent == 1.0:
            return [(solver, self._form(QUADRATIC))]
        if solver not in POWER_CONE_SOLVERS:
            return [(solver, self._form(SECOND_ORDER_CONES))]
        return [
            (f"{solver}, {POWER_CONES}", self._form(POWER_CONES)),
            (f"{solver}, {SECOND_ORDER_CONES}", self._form(SECOND_ORDER_CONES)),
        ]

    def _form(self, form: str) -> Program:
        if form not in self._built:
            self._built[form] = build(self.plan, form=form)
        return self._built[form]


def build(plan: Plan, *, form: str) -> Program:
    """The program of ``plan`` (at least one active security and two intervals) in ``form``."""
    size = np.abs(plan.active_orders)
    count = plan.intervals
    terms = plan.impact
    power = 1.0 + terms.exponent
    cost = power_cost(terms.temporary, size[:, None], power)
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
    if form != QUADRATIC and terms.exponent == 1.0:
        form = QUADRATIC  # a square has no other form worth solving
    return Program(cost, terms.exponent, risk_factor, risk_specific, cap, form)


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
            verdict = "optimal" if status == OPTIMAL else "certified"
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
    if solver not in SOLVERS:
        return None, f"not installed: optirebal solves with {', '.join(SOLVERS)}", np.inf
    if program.form == SECOND_ORDER_CONES and _root(program.power) is None:
        return (
            None,
            f"skipped: the power {program.power:g} has no exact second-order-cone form",
            np.inf,
        )
    conic = program.conic(risk_aversion)
    try:
        answer: Answer = solve_conic(
            conic, solver, settings=SOLVER_OPTIONS.get(solver), qp_gap=None
        )
    except ImportError as exc:  # an optional solver package missing
        return None, f"not installed: {exc}", np.inf
    except (ValueError, ArithmeticError) as exc:
        return None, f"error: {exc}", np.inf
    status = answer.status
    if status not in (OPTIMAL, INACCURATE) or answer.x is None:
        return None, status, np.inf
    x = answer.x
    raw = program.path(conic, x)
    # The solver's objective at its answer against numpy's: a check of the data, so on the raw
    # answer; the polished one (no worse) is what the other checks and the schedule see.
    reported = float(0.5 * x @ (conic.P @ x) + conic.q @ x + conic.constant)
    value = program.objective(raw, risk_aversion)
    mismatch = abs(value - reported) / max(1.0, abs(value))
    low, high = program.bounds_held(conic, answer.duals, raw)
    path = program.polish(raw, risk_aversion, low, high)
    residual = program.residual(path)
    size = max(1.0, abs(program.objective(path, risk_aversion)))
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
