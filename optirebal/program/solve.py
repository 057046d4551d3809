"""The solver chain: Clarabel, then ECOS, then OSQP (QP forms only), every answer checked.

An answer is taken only when the solver says ``optimal`` *and* its primal solution satisfies every
constraint in numpy within the solver's tolerance (:data:`TOLERANCE`); anything else moves on to
the next solver. An infeasible verdict is confirmed by the elastic diagnosis of
:mod:`optirebal.program.infeasibility`, which names the conflicting constraints.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import cvxpy as cp
import numpy as np

from optirebal.errors import SolverError
from optirebal.program.compile import OBJECTIVE_SCALE, CompiledProgram
from optirebal.program.data import SOFT_SLACK_CAP, ProblemData
from optirebal.program.overlay import (
    overlay_cash,
    overlay_exposure,
    overlay_immediate_cost,
    overlay_residual,
)
from optirebal.tax.program import residuals as tax_residuals

TOLERANCE = {"CLARABEL": 1e-7, "ECOS": 1e-7, "OSQP": 1e-5}
"""Per-solver tolerance (weights) on constraint residuals; also the size below which a trade is
zero."""

# OSQP 1.0 renamed its solution-polishing setting
_OSQP_POLISH = "polishing" if int(version("osqp").split(".")[0]) >= 1 else "polish"

ALMOST_SOLVED_GAP = 5e-5
"""Relative duality gap Clarabel certifies when it stops at ``AlmostSolved`` (its reduced
tolerances, set explicitly below). With 3/2-power impact and most pairs untraded (the power cones
sit at their apex) Clarabel can stall there; such an answer is taken only when its primal passes
the numpy checks, and the result says so (status ``optimal_inaccurate`` and a note)."""

CLARABEL_RETRY = {"max_step_fraction": 0.95}
"""Clarabel's second try when its first stalls (InsufficientProgress, AlmostSolved or a refused
answer): shorter interior-point steps, which get through the stalls seen with power cones at
their apex. The attempt is reported as one entry with both outcomes."""

# The objective is in bp of NAV, so the gaps below are in bp (absolute) or relative.
SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8, "max_iter": 200,
                 "reduced_tol_gap_abs": ALMOST_SOLVED_GAP,
                 "reduced_tol_gap_rel": ALMOST_SOLVED_GAP, "reduced_tol_feas": 1e-6,
                 "presolve_enable": False},  # lets a re-solve update the workspace
    "ECOS": {"abstol": 1e-8, "reltol": 1e-8, "feastol": 1e-8, "max_iters": 200},
    "OSQP": {"eps_abs": 1e-8, "eps_rel": 1e-8, _OSQP_POLISH: True, "max_iter": 200_000},
}


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
    compile_seconds: float
    residual: float
    attempts: list[tuple[str, str]] = field(default_factory=list)
    derivatives: np.ndarray | None = None  # change of derivative notional (weights), if any


class Infeasible(Exception):
    """Internal signal: every solver that answered called the program infeasible."""


def solve_program(program_for: Callable[[str], CompiledProgram], data: ProblemData) -> Solution:
    """Run the solver chain on ``data`` and return the first verified answer.

    ``program_for(solver)`` gives the compiled program a solver takes (Clarabel a power cone,
    ECOS its SOC form); its parameters are bound here.

    Raises
    ------
    Infeasible
        When a solver proves infeasibility (the caller diagnoses which constraints conflict).
    SolverError
        When no solver returns a verified optimal answer; lists every attempt.
    """
    attempts: list[tuple[str, str]] = []
    infeasible = False
    for solver in data.policy.solver.chain:
        if solver == "OSQP" and data.impact_model != "none":
            # impact is paid from cash: a quadratic or power constraint, which a QP solver lacks
            attempts.append((solver, f"skipped: OSQP takes QPs only, and {data.impact_model} "
                                      "impact puts a nonlinear cost in the cash constraints"))
            continue
        program = program_for(solver)
        tries = [SOLVER_OPTIONS[solver]]
        if solver == "CLARABEL":
            tries.append({**SOLVER_OPTIONS[solver], **CLARABEL_RETRY})
        notes: list[str] = []
        reduced: Solution | None = None  # a verified answer at reduced accuracy, kept in reserve
        for n, options in enumerate(tries):
            outcome = _try(program, solver, options, data)
            if isinstance(outcome, Solution) and (outcome.status == cp.OPTIMAL
                                                  or n == len(tries) - 1):
                attempts.append((solver, "; then ".join([*notes, outcome.status])))
                outcome.attempts = attempts
                return outcome
            if isinstance(outcome, Solution):
                reduced, outcome = outcome, outcome.status
            notes.append(outcome if n == 0 else f"with shorter steps: {outcome}")
            if outcome.startswith("infeasible"):
                infeasible = True
                break
        if reduced is not None:
            attempts.append((solver, "; then ".join([*notes, f"kept the first, {reduced.status}"])))
            reduced.attempts = attempts
            return reduced
        attempts.append((solver, "; then ".join(notes)))
        if notes[-1] == cp.INFEASIBLE:
            break
    if infeasible:
        raise Infeasible(attempts)
    detail = "; ".join(f"{s}: {m}" for s, m in attempts)
    raise SolverError(f"no solver returned a verified optimal answer ({detail})",
                      attempts=attempts)


def _try(program: CompiledProgram, solver: str, options: dict[str, object],
         data: ProblemData) -> Solution | str:
    """One solve of ``program`` bound to ``data``: a verified Solution, or why not."""
    with program.lock:
        program.bind(data)
        first_compile = program.solves == 0
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # cvxpy warns on inaccurate statuses; the chain handles and reports them
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                program.problem.solve(solver=solver, ignore_dpp=False, warm_start=True,
                                      **options)
        except cp.error.SolverError as exc:
            return f"error: {exc}"
        elapsed = time.perf_counter() - start
        program.solves += 1
        status = program.problem.status
        almost = solver == "CLARABEL" and status == cp.OPTIMAL_INACCURATE
        if status != cp.OPTIMAL and not almost:
            return str(status)
        buys = np.asarray(program.variables["buys"].value, dtype=float).copy()
        sells = np.asarray(program.variables["sells"].value, dtype=float).copy()
        derivatives = np.asarray(program.variables["derivatives"].value, dtype=float).copy() \
            if "derivatives" in program.variables else None
        residual = constraint_residual(data, buys, sells, derivatives)
        if not residual <= TOLERANCE[solver]:
            return f"optimal but residual {residual:.2e} > {TOLERANCE[solver]:.0e}"
        stats = program.problem.solver_stats
        compile_seconds = program.problem.compilation_time or 0.0
        if first_compile:
            compile_seconds += program.built_seconds
        return Solution(
            buys=buys, sells=sells, objective=float(program.problem.value) / OBJECTIVE_SCALE,
            solver=solver, status=status, iterations=stats.num_iters,
            solve_seconds=elapsed - compile_seconds if elapsed > compile_seconds else elapsed,
            compile_seconds=compile_seconds, residual=residual, derivatives=derivatives)


def constraint_residual(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                        derivatives: np.ndarray | None = None) -> float:
    """Largest violation (weights) of the program's hard constraints at a candidate solution.

    Costs in the cash constraint are evaluated exactly, so a solution that passes here is one the
    account can pay for. ``derivatives`` is the change of derivative notional (weights); its
    bounds, gross cap, margin and spread are checked too.
    """
    dev = data.deviation(buys, sells, derivatives)
    slack = SOFT_SLACK_CAP if data.soft_bands else 0.0
    upper = data.scale * (data.upper - data.target) + slack
    lower = data.scale * (data.lower - data.target) - slack
    gross = buys + data.pair_sells(sells)
    violations = [
        np.max(-buys, initial=0.0),
        np.max(-sells, initial=0.0),
        np.max(dev - upper, initial=0.0),
        np.max(lower - dev, initial=0.0),
        np.max(buys - data.buy_cap, initial=0.0),
        np.max(sells - data.sell_cap, initial=0.0),
        np.max(cash_shortfall(data, buys, sells, derivatives), initial=0.0),
        overlay_residual(data, derivatives),
    ]
    if np.isfinite(data.turnover_cap):
        violations.append(gross.sum() - data.turnover_cap)
    violations.extend(tax_residuals(data, sells))  # netting region, hard gain budget
    return float(max(violations))


def trade_costs(data: ProblemData, buys: np.ndarray, sells: np.ndarray) -> dict[str, np.ndarray]:
    """Cost per pair (weights) of each component: spread, commission, impact."""
    gross = np.abs(buys) + np.abs(data.pair_sells(sells))
    sec = data.portfolio.securities
    i = data.pair_security
    spread = sec["half_spread_bps"].to_numpy(dtype=float)[i] / 1e4 * gross
    commission = (data.linear_cost[i] - sec["half_spread_bps"].to_numpy(dtype=float)[i] / 1e4) \
        * gross
    power = 1.5 if data.impact_model == "power" else 2.0
    impact = data.impact_cost[i] * gross**power if data.impact_model != "none" \
        else np.zeros_like(gross)
    return {"spread": spread, "commission": commission, "impact": impact}


def pair_costs(data: ProblemData, buys: np.ndarray, sells: np.ndarray) -> np.ndarray:
    """Total cost per pair (weights): spread, commission and impact together."""
    return np.sum(list(trade_costs(data, buys, sells).values()), axis=0)


def cash_shortfall(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                   derivatives: np.ndarray | None = None) -> np.ndarray:
    """Per account, how far (weights) post-trade cash after costs falls below the reserve.

    With an overlay, the margin account also pays the derivative spread and option premiums and
    reserves the margin of the post-trade positions (``derivatives``: change of notional).
    """
    costs = pair_costs(data, buys, sells)
    n_a = len(data.accounts)
    spent = np.bincount(data.pair_account, weights=buys + costs, minlength=n_a)
    raised = np.bincount(data.pair_account, weights=data.pair_sells(sells), minlength=n_a)
    short = spent - raised - (data.cash + data.flow - data.reserve)
    if data.overlay is not None:
        short = short + overlay_cash(data, derivatives)
    return short


def post_trade_weights(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                       derivatives: np.ndarray | None = None) -> np.ndarray:
    """Weights by class after trades and their costs (costs leave the cash and the NAV).

    Derivative exposure (``derivatives``: change of notional) counts; their spread is a cost paid
    now, their carry accrues over the horizon and is not.
    """
    cost = float(pair_costs(data, buys, sells).sum()) \
        + overlay_immediate_cost(data, derivatives)
    exposure = data.exposure_before + data.exposure @ data.security_trades(buys, sells) \
        + overlay_exposure(data, derivatives)
    if data.policy.cash_class in data.classes:
        exposure[-1] -= cost
    return exposure / (data.scale - cost)
