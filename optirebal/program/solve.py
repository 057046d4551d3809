"""The solver chain: Clarabel, then ECOS, then OSQP (QP forms only), every answer checked.

The program is assembled once per call from its terms (:func:`optirebal.program.terms.
build_program`); each solver reads the same conic data. An answer is taken only when the solver
says ``optimal`` *and* its primal solution satisfies every term's constraints in numpy within the
solver's tolerance (:data:`TOLERANCE`). A Clarabel answer at reduced accuracy is polished to the
exact optimum of its active set when that can be certified (:mod:`optirebal.program.polish`);
otherwise Clarabel tries again (:data:`CLARABEL_RETRIES`), and anything else moves on to the
next solver. When the solvers that answered call the program infeasible, the caller runs the
elastic diagnosis (:mod:`optirebal.program.diagnose`), which names the conflicting constraints.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from optirebal.errors import SolverError
from optirebal.events import Event
from optirebal.program.conic import NONNEG, SOC, ConicProgram
from optirebal.program.data import ProblemData
from optirebal.program.polish import polish
from optirebal.program.solvers import (
    INACCURATE,
    INFEASIBLE,
    OPTIMAL,
    QP_GAP,
    Answer,
    solve_conic,
)
from optirebal.program.terms import Point, build_program, constraint_residual, objective_value
from optirebal.program.terms.base import Context
from optirebal.program.terms.tracking import QUOTIENT_CONE

LOG = logging.getLogger(__name__)

TOLERANCE = {"CLARABEL": 1e-7, "ECOS": 1e-7, "OSQP": 1e-5}
"""Per-solver tolerance (weights) on constraint residuals; also the size below which a trade is
zero."""

REFINED: dict[str, object] = {"iterative_refinement_enable": True}
"""Clarabel's iterative refinement of its KKT solves: off in the first try of a program with
impact (:data:`~optirebal.program.solvers.SOLVER_OPTIONS`), on in that of a program without
impact and in every further try."""

CLARABEL_RETRIES: tuple[tuple[str, dict[str, object]], ...] = (
    ("iterative refinement", REFINED),
    ("lighter regularization", {"static_regularization_constant": 1e-9,
                                "static_regularization_proportional": 0.0, **REFINED}),
    ("shorter steps", {"max_step_fraction": 0.95, **REFINED}),
)
"""Clarabel's further tries when its answer is not verified optimal, after the polish of an
answer at reduced accuracy (:mod:`optirebal.program.polish`) was not certified, or when it
stalled (InsufficientProgress, MaxIterations) or the numpy checks refused it.

- *Iterative refinement* of the KKT solves, which the first try of a program with impact
  leaves out (it halves Clarabel's time there and rarely matters).
- *Lighter regularization* (a static constant of 1e-9 where Clarabel's default is 1e-8 plus a
  part proportional to the matrix): the KKT solves stay closer to the true system, which the
  last digits of a gap of 1e-12 need. On the fuzz cases that stalled it reached ``Solved``.
- *Shorter interior-point steps*, for a stall the first two share.

Each try is reported in the attempt's entry. The first verified optimal answer is taken (a
program Clarabel solves at once solves once); a verified ``AlmostSolved`` is returned (status
``optimal_inaccurate``, with a note on the result) only when no try is verified optimal."""

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
    polished: bool = False  # made exact on its active set (program.polish)
    # the program first built for the data and its context, which a re-solve that only closes
    # trades derives its own from (program.patch)
    built: tuple[ConicProgram, Context] | None = field(default=None, repr=False)


class Infeasible(Exception):
    """Internal signal: the solvers that answered called the program infeasible."""


def solve_program(data: ProblemData, built: tuple[ConicProgram, Context] | None = None
                  ) -> Solution:
    """Build ``data``'s program (or take ``built``, the program and context of ``data`` derived
    otherwise, :mod:`optirebal.program.patch`) and run the solver chain; return the first
    verified answer.

    Raises
    ------
    Infeasible
        When a solver proves infeasibility and none finds a verified answer (the caller
        diagnoses which constraints conflict).
    SolverError
        When no solver returns a verified optimal answer; lists every attempt.
    """
    start = time.perf_counter()
    program, ctx = build_program(data) if built is None else built
    build_seconds = time.perf_counter() - start
    attempts: list[tuple[str, str]] = []
    infeasible = False
    solve_seconds = 0.0
    conic = program, ctx
    for solver in data.policy.solver.chain:
        program, ctx = conic
        if solver == "OSQP" and QUOTIENT_CONE in program.blocks:
            # OSQP takes no cones: the tracking error over 1 + F (terms/tracking.py)
            start = time.perf_counter()
            program, ctx = build_program(data, quadratic=True)
            build_seconds += time.perf_counter() - start
        kept, notes, seconds, refused = _tries(program, ctx, data, solver)
        solve_seconds += seconds
        infeasible = infeasible or refused
        attempts.append((solver, "; then ".join(notes)))
        if kept is not None:
            # optimal, or verified at reduced accuracy (within 5e-9 of NAV of the optimum)
            kept.solve_seconds, kept.build_seconds = solve_seconds, build_seconds
            kept.attempts = attempts
            kept.built = conic
            return kept
    if infeasible:
        raise Infeasible(attempts)
    detail = "; ".join(f"{s}: {m}" for s, m in attempts)
    raise SolverError(f"no solver returned a verified optimal answer ({detail})",
                      attempts=attempts)


TIGHTER = "a quadratic program's gap"
"""The try that holds a program whose only cone is the tracking error's to :data:`QP_GAP`."""


def _tries(program: ConicProgram, ctx: Context, data: ProblemData, solver: str
           ) -> tuple[Solution | None, list[str], float, bool]:
    """One solver's tries on ``program`` (:data:`CLARABEL_RETRIES` for Clarabel): the best
    verified answer (optimal before reduced accuracy, polished before not), what each try gave,
    the seconds, and whether the solver called the program infeasible with no answer."""
    smooth = _smooth(program)
    # a program whose only cone is the tracking error's gets a quadratic program's gap, whose
    # answer the polish certifies where Clarabel's at 1e-12 leaves the active set unclear
    tighter = solver == "CLARABEL" and smooth and program.has_soc
    # the tight gaps of a program without impact need refined KKT solves (without them
    # Clarabel stalled on about one fuzz case in ten); impact's cones do not
    first = REFINED if solver == "CLARABEL" and smooth else {}
    tries: list[tuple[str, dict[str, object]]] = [("", first)]
    if tighter:
        tries.append((TIGHTER, {"tol_gap_abs": QP_GAP, "tol_gap_rel": QP_GAP, **REFINED}))
    if solver == "CLARABEL":  # the refined retry is no retry for a first try refined already
        tries += [(label, options) for label, options in CLARABEL_RETRIES if options is not first]

    def quality(outcome: Solution) -> tuple[bool, bool]:
        return outcome.status == OPTIMAL, outcome.polished or not smooth

    kept: Solution | None = None
    notes: list[str] = []
    seconds = 0.0
    for label, options in tries:
        try:
            answer = solve_conic(program, solver, options)
        except Exception as exc:  # any solver fault moves the chain on
            notes.append(f"error: {type(exc).__name__}: {exc}")
            break
        seconds += answer.seconds
        outcome = _accept(program, ctx, data, solver, answer)
        if isinstance(outcome, Solution) and (outcome.status == INACCURATE or smooth):
            outcome = _polished(program, ctx, data, solver, answer) or outcome
        LOG.info("%s%s: %s in %s iterations, %.3f s", solver, f" ({label})" if label else "",
                 outcome.status if isinstance(outcome, Solution) else outcome,
                 answer.iterations, answer.seconds)
        # a polish that lifts an answer at reduced accuracy is reported (a program without
        # impact has every answer polished, silently)
        status = outcome if isinstance(outcome, str) else \
            f"{INACCURATE}, polished to {OPTIMAL}" if outcome.polished \
            and answer.status == INACCURATE else outcome.status
        notes.append(f"with {label}: {status}" if label else status)
        if isinstance(outcome, Solution) and (kept is None or quality(outcome) > quality(kept)):
            kept = outcome
        # an optimal answer ends the tries, once polished or once the quadratic program's gap
        # was tried (the later tries are for stalls: on an answer the polish cannot certify
        # they rarely help, and each costs a solve)
        if kept is not None and kept.status == OPTIMAL and (
                kept.polished or not tighter or label == TIGHTER):
            break
        if isinstance(outcome, str) and outcome.startswith((INFEASIBLE, "skipped")):
            return kept, notes, seconds, kept is None and outcome.startswith(INFEASIBLE)
    return kept, notes, seconds, False


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


def _smooth(program: ConicProgram) -> bool:
    """Whether the program is a quadratic program, or one whose only cone is the tracking
    error's quotient (:mod:`optirebal.program.terms.tracking`): a program without impact. Every
    answer of it is polished. With the quotient that gives it a quadratic program's precision
    (Clarabel holds a cone to a gap of 1e-12, which pins the trades to about 3e-7 of NAV);
    and on an optimal face only the tie-break's squares decide (1e-8 of the squared
    positions), which even a gap of 1e-13 pins to no better than 1e-6, where the exact optimum
    of the polish is unique."""
    soc = sum(kind == SOC for kind, _ in program.cones)
    return not program.has_pow and (soc == 0 or (soc == 1 and QUOTIENT_CONE in program.blocks))


def _polished(program: ConicProgram, ctx: Context, data: ProblemData, solver: str,
              answer: Answer) -> Solution | None:
    """The verified Solution of the polished ``answer`` (:mod:`optirebal.program.polish`), with
    status ``optimal``, or None when the polish is not certified or fails the numpy checks."""
    if answer.x is None or answer.duals is None:
        return None
    polished = polish(program, answer.x, answer.duals)
    if polished is None:
        return None
    outcome = _accept(program, ctx, data, solver, dataclasses.replace(
        answer, x=polished[0], duals=polished[1], status=OPTIMAL))
    if not isinstance(outcome, Solution):
        return None
    outcome.polished = True
    return outcome


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
