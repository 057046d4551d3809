"""The solver chain: Clarabel, then ECOS, then OSQP (QP forms only), every answer checked.

The program is assembled once per call from its terms (:func:`optirebal.program.terms.
build_program`); each solver reads the same conic data. An answer is taken only when the solver
says ``optimal`` *and* its primal solution satisfies every term's constraints in numpy within the
solver's tolerance (:data:`TOLERANCE`); anything else moves on to the next solver. When the
solvers that answered call the program infeasible, the caller runs the elastic diagnosis
(:mod:`optirebal.program.diagnose`), which names the conflicting constraints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from optirebal.errors import SolverError
from optirebal.events import Event
from optirebal.program.conic import NONNEG, SOC, ConicProgram
from optirebal.program.data import ProblemData
from optirebal.program.solvers import INACCURATE, INFEASIBLE, OPTIMAL, Answer, solve_conic
from optirebal.program.terms import Point, build_program, constraint_residual, objective_value
from optirebal.program.terms.base import Context

LOG = logging.getLogger(__name__)

TOLERANCE = {"CLARABEL": 1e-7, "ECOS": 1e-7, "OSQP": 1e-5}
"""Per-solver tolerance (weights) on constraint residuals; also the size below which a trade is
zero."""

CLARABEL_RETRY = {"max_step_fraction": 0.95}
"""Clarabel's second try when its first stalls without a verified answer (InsufficientProgress,
MaxIterations, a refused answer): shorter interior-point steps. The attempt is reported as one
entry with both outcomes. A verified ``AlmostSolved`` is taken at once (status
``optimal_inaccurate``, with a note on the result)."""

ALMOST_SOLVED_NOTE = ("{solver} stopped at reduced accuracy ({status}): its reduced tolerances "
                      "held, and the trades passed every numpy check")


@dataclass
class Solution:
    """A verified primal solution in weights, with what it took to get it."""

    buys: np.ndarray
    sells: np.ndarray
    objective: float
    solver: str
    status: str
    iterations: int | None
    solve_seconds: float
    build_seconds: float
    residual: float
    attempts: list[tuple[str, str]] = field(default_factory=list)
    derivatives: np.ndarray | None = None  # change of derivative notional (weights), if any
    duals: dict[str, np.ndarray] = field(default_factory=dict)  # per block, of the answer
    region: int | None = None  # the exact-netting region chosen, if any


class Infeasible(Exception):
    """Internal signal: the solvers that answered called the program infeasible."""


def solve_program(data: ProblemData) -> Solution:
    """Build ``data``'s program and run the solver chain; return the first verified answer.

    Raises
    ------
    Infeasible
        When a solver proves infeasibility and none finds a verified answer (the caller
        diagnoses which constraints conflict).
    SolverError
        When no solver returns a verified optimal answer; lists every attempt.
    """
    start = time.perf_counter()
    program, ctx = build_program(data)
    build_seconds = time.perf_counter() - start
    attempts: list[tuple[str, str]] = []
    infeasible = False
    solve_seconds = 0.0
    for solver in data.policy.solver.chain:
        tries = [{}] if solver != "CLARABEL" else [{}, CLARABEL_RETRY]
        notes: list[str] = []
        for n, options in enumerate(tries):
            try:
                answer = solve_conic(program, solver, options)
            except Exception as exc:  # any solver fault moves the chain on
                notes.append(f"error: {type(exc).__name__}: {exc}")
                break
            solve_seconds += answer.seconds
            outcome = _accept(program, ctx, data, solver, answer)
            LOG.info("%s%s: %s in %s iterations, %.3f s", solver, " (shorter steps)" if n else "",
                     outcome.status if isinstance(outcome, Solution) else outcome,
                     answer.iterations, answer.seconds)
            if isinstance(outcome, Solution):
                # optimal, or verified at reduced accuracy (within 5e-9 of NAV of the optimum:
                # a second full solve would cost more than it could gain)
                outcome.solve_seconds, outcome.build_seconds = solve_seconds, build_seconds
                attempts.append((solver, "; then ".join([*notes, outcome.status])))
                outcome.attempts = attempts
                return outcome
            notes.append(outcome if n == 0 else f"with shorter steps: {outcome}")
            if outcome.startswith((INFEASIBLE, "skipped")):
                infeasible = infeasible or outcome.startswith(INFEASIBLE)
                break
        attempts.append((solver, "; then ".join(notes)))
    if infeasible:
        raise Infeasible(attempts)
    detail = "; ".join(f"{s}: {m}" for s, m in attempts)
    raise SolverError(f"no solver returned a verified optimal answer ({detail})",
                      attempts=attempts)


def _accept(program: ConicProgram, ctx: Context, data: ProblemData, solver: str,
            answer: Answer) -> Solution | str:
    """A verified Solution from ``answer``, or why not."""
    if answer.status not in (OPTIMAL, INACCURATE) or answer.x is None:
        return answer.status
    x = answer.x
    if not np.all(np.isfinite(x)):
        return f"{answer.status} but the solution is not finite"
    assert ctx.buys is not None and ctx.sells is not None
    buys, sells = ctx.buys.value(x), ctx.sells.value(x)
    derivatives = x[program.variables["derivatives"]].copy() \
        if "derivatives" in program.variables else None
    point = Point(buys, sells, np.zeros(0) if derivatives is None else derivatives)
    residual = constraint_residual(data, point)
    if not residual <= TOLERANCE[solver]:
        return f"{answer.status} but residual {residual:.2e} > {TOLERANCE[solver]:.0e}"
    objective = float(0.5 * x @ (program.P @ x) + program.q @ x + program.constant)
    refused = _not_optimal(program, answer, data, point, solver)
    if refused:
        return f"{answer.status} but {refused}"
    duals = {} if answer.duals is None else \
        {name: answer.duals[rows] for name, rows in program.blocks.items()}
    return Solution(buys=buys, sells=sells, objective=objective, solver=solver,
                    status=answer.status, iterations=answer.iterations, solve_seconds=0.0,
                    build_seconds=0.0, residual=residual, derivatives=derivatives, duals=duals)


OPTIMALITY_TOLERANCE = 1e-6
"""Relative tolerance of the numpy optimality checks (dual residual, duality gap, complementary
cone membership): far looser than the solvers' own, since these checks catch wrong answers
(a garbage vector labelled optimal), not imprecise ones."""


def _not_optimal(program: ConicProgram, answer: Answer, data: ProblemData, point: Point,
                 solver: str) -> str:
    """Why a feasible answer is not optimal, or "" when it passes the numpy checks.

    - For Clarabel, whose duals are in the same cone form as its data, a certificate: the dual
      residual ``P x + q + A' z``, the duality gap ``x' P x + q' x + b' z`` and the dual cone
      membership of ``z`` within :data:`OPTIMALITY_TOLERANCE` (relative).
    - For the other solvers, never worse than doing nothing when doing nothing is feasible: the
      terms' numpy objective of the answer is at most that of no trade.
    """
    if solver != "CLARABEL" or answer.duals is None:
        none = Point(np.zeros_like(point.buys), np.zeros_like(point.sells),
                     np.zeros_like(point.derivatives))
        if constraint_residual(data, none) <= TOLERANCE[solver]:
            worse = objective_value(data, point) - objective_value(data, none)
            if worse > OPTIMALITY_TOLERANCE * 1e-3:  # a thousandth of a basis point of NAV
                return f"worse than no trade by {worse:.2e} of NAV"
        return ""
    x, z = answer.x, answer.duals
    assert x is not None
    scale = max(1.0, float(np.abs(program.q).max(initial=0.0)), float(np.abs(program.b).max(
        initial=0.0)))
    dual = np.abs(program.P @ x + program.q + program.A.T @ z).max(initial=0.0)
    gap = abs(float(x @ (program.P @ x) + program.q @ x + program.b @ z))
    outside = _dual_cone_violation(program, z)
    worst = max(dual, gap, outside) / scale
    if worst > OPTIMALITY_TOLERANCE:
        return (f"its certificate fails (dual residual {dual:.1e}, gap {gap:.1e}, dual cone "
                f"{outside:.1e})")
    return ""


def _dual_cone_violation(program: ConicProgram, z: np.ndarray) -> float:
    """How far ``z`` lies outside the dual of the program's cone (self-dual cones: zero cone's
    dual is free, non-negative and second-order cones are their own duals)."""
    kinds = np.array([kind for kind, _ in program.cones])
    sizes = np.array([size for _, size in program.cones], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
    worst = 0.0
    for kind, size, start in zip(kinds, sizes, starts, strict=True):
        if kind == NONNEG:  # a few blocks: one check each
            worst = max(worst, float(np.max(-z[start:start + size], initial=0.0)))
    for size in np.unique(sizes[kinds == SOC]):  # many small cones: one check per size
        rows = starts[(kinds == SOC) & (sizes == size)][:, None] + np.arange(size)
        cones = z[rows]
        worst = max(worst, float(np.max(np.linalg.norm(cones[:, 1:], axis=1) - cones[:, 0],
                                        initial=0.0)))
    return worst


def answer_events(solution: Solution, chain: tuple[str, ...],
                  region_note: str | None) -> list[Event]:
    """Events about an accepted answer: reduced accuracy, a fallback down the chain, and the
    exact-netting region chosen (``region_note``: the region driver's line)."""
    out = []
    if solution.status != OPTIMAL:
        out.append(Event("reduced_accuracy", ALMOST_SOLVED_NOTE.format(
            solver=solution.solver, status=solution.status)))
    if solution.solver != chain[0]:
        failed = len(solution.attempts) - 1
        out.append(Event("solver_fallback", f"answer from {solution.solver} after {failed} "
                         "failed attempts", value=float(failed)))
    if solution.region is not None and region_note is not None:
        out.append(Event("tax_region", region_note, value=float(solution.region)))
    return out
