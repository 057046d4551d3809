"""`Rebalancer(policy)` and `solve(portfolio, policy)`: from inputs to a verified `Result`.

Orchestration only (DESIGN section 2): problem data -> wash-sale directions known for its shape
-> program built from its terms and solved by the chain (region by region for exact tax) ->
same-solve wash-sale conflicts fixed and solved again -> orders below the minimum dropped and
solved again (:mod:`optirebal.program.fixes`) -> decode and verify -> result frames. What each
step repaired or fixed is an :class:`~optirebal.events.Event`.
"""

from __future__ import annotations

from optirebal.decode import Trades, decode, no_trade_is_as_good, wash_conflicts
from optirebal.decode.frames import Decision, build_result
from optirebal.decode.relief import relief_event
from optirebal.errors import InfeasibleError, SolverError
from optirebal.events import Event
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.conic import ConicProgram
from optirebal.program.data import ProblemData
from optirebal.program.diagnose import diagnose
from optirebal.program.fixes import (
    conflict_sides,
    credit_pass,
    drop_small_orders,
    fix_wash_conflicts,
    prefix_wash_directions,
    stale_wash_exclusions,
)
from optirebal.program.patch import closes_only, without_closed
from optirebal.program.pooling import pooled
from optirebal.program.prepare import build_problem_data
from optirebal.program.regions import solve_tax_program
from optirebal.program.solve import (
    TOLERANCE,
    Infeasible,
    Solution,
    answer_events,
    solve_program,
)
from optirebal.program.terms.base import Context
from optirebal.program.workspace import Workspace
from optirebal.result import Diagnostics, Result
from optirebal.triggers import quiet_reason, triggered


class Rebalancer:
    """One policy, solved for portfolio after portfolio (a backtest, a batch, a sweep).

    What is re-used between calls is held per *shape* (:attr:`ProblemData.shape_key`: accounts,
    securities, classes, exposures, factors, impact model, overlay and tax structure), which a
    lot bought or sold does not change: a :class:`~optirebal.program.workspace.Workspace` with
    the wash-sale directions learned on earlier calls. ``result.diagnostics.compiles`` is 1 when
    a call met a new shape.

    Parameters
    ----------
    policy : Policy
        Used for every call. Never modified.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._workspaces: dict[tuple[object, ...], Workspace] = {}

    def with_policy(self, policy: Policy) -> Rebalancer:
        """A rebalancer for ``policy`` sharing this one's workspaces: a sweep over risk
        aversion, bands or penalties starts each point from what its neighbours learned."""
        other = Rebalancer(policy)
        other._workspaces = self._workspaces
        return other

    def forget(self) -> None:
        """Drop what earlier calls learned (wash-sale directions) but keep the shapes met: the
        next call solves as a fresh rebalancer would, and still counts as a known shape
        (``diagnostics.compiles`` 0). A batch of unrelated portfolios calls it between
        portfolios, since one household's trades say nothing about the next one's."""
        for workspace in self._workspaces.values():
            workspace.forget()

    def solve(self, portfolio: Portfolio) -> Result:
        """Rebalance ``portfolio`` as the policy asks, and return verified trades.

        ``build_result(self.decide(portfolio))``: the decision and its frames.

        Raises
        ------
        InputError
            When the policy and portfolio do not fit (a target for an unknown class, ...).
        InfeasibleError
            Naming the constraints that conflict.
        SolverError
            When no solver returns a verified answer.
        """
        return build_result(self.decide(portfolio))

    def decide(self, portfolio: Portfolio) -> Decision:
        """The verified trades of :meth:`solve` as arrays, before any frame is built (what a
        backtest books at every date). Raises as :meth:`solve` does."""
        data = build_problem_data(portfolio, self.policy)
        compiles = int(data.shape_key not in self._workspaces)
        workspace = self._workspaces.setdefault(data.shape_key, Workspace())
        if not triggered(data):
            quiet = Event("not_triggered", quiet_reason(data))
            diag = Diagnostics(None, "not triggered", None, 0.0, 0.0, not compiles, 0.0,
                               compiles=compiles)
            return Decision(data, Trades.none(data), diag, 0.0, (quiet,))
        run = _Runs()
        data = prefix_wash_directions(data, run.events)
        primed = workspace.known_directions(data, run.events)
        try:
            solution, data = run(primed), primed
        except InfeasibleError:
            if primed is data:
                raise
            run.events.append(Event("wash_directions_dropped", "wash-sale directions of the "
                                    "last call made the policy infeasible: solved without them"))
            solution = run(data)
        sides: dict[str, str] = {}
        for _ in range(self.policy.solver.conflict_rounds):
            conflicts = wash_conflicts(data, solution.buys, solution.sells,
                                       TOLERANCE[solution.solver])
            if not conflicts:
                break
            sides.update(conflict_sides(conflicts))
            data = fix_wash_conflicts(data, solution, conflicts, run.events)
            solution = run(data)
        workspace.learn_directions(data, solution, sides)
        data, solution = credit_pass(data, solution, run, run.events)
        data, solution = drop_small_orders(data, solution, run, run.events)
        trades = decode(data, solution.buys, solution.sells, solution.solver, solution.derivatives)
        if no_trade_is_as_good(data, trades, solution.solver):
            run.events.append(Event("no_trade_preferred", "no trade holds every constraint and "
                                    "the trades found improve on it by less than the solver's "
                                    "accuracy: nothing is traded", value=0.0))
            trades = Trades.none(data)
        diag = Diagnostics(
            solver=solution.solver, status=solution.status, iterations=solution.iterations,
            compile_seconds=run.build_seconds, solve_seconds=run.solve_seconds,
            cache_hit=not compiles, residual=solution.residual, attempts=tuple(run.attempts),
            solves=run.solves, compiles=compiles)
        stale = stale_wash_exclusions(data, trades.sell_shares)
        if stale is not None:
            run.events.append(stale)
        region = run.regions[-1] if run.regions else None
        # a fixed relief order whose tax the program could only bound from below
        relief = relief_event(data, solution.sells)
        return Decision(data, trades, diag, solution.objective,
                        (*run.events, *answer_events(solution, self.policy.solver.chain, region),
                         *filter(None, [relief])))


def solve(portfolio: Portfolio, policy: Policy) -> Result:
    """Rebalance ``portfolio`` as ``policy`` asks: ``Rebalancer(policy).solve(portfolio)``.

    Use a :class:`Rebalancer` to solve one policy many times (it re-uses work by shape).
    """
    return Rebalancer(policy).solve(portfolio)


class _Runs:
    """The solves of one call: what they cost, their attempts and their events."""

    def __init__(self) -> None:
        self.solves, self.build_seconds, self.solve_seconds = 0, 0.0, 0.0
        self.attempts: list[tuple[str, str]] = []
        self.events: list[Event] = []
        self.regions: list[str] = []  # the exact tax model's region choice per solve
        # the data of the last solve, the data its program was built from (the pooled view)
        # and that program with its context
        self.last: tuple[ProblemData, ProblemData, tuple[ConicProgram, Context]] | None = None

    def __call__(self, data: ProblemData) -> Solution:
        view = pooled(data)
        # lots the program cannot tell apart as one variable (then back to lots)
        program_data = data if view is None else view[0]
        built = None
        if self.last is not None and closes_only(self.last[0], data):
            # a re-solve that only closes trades: the last program without them
            built = without_closed(*self.last[2], self.last[1], program_data)
        try:
            solution = solve_tax_program(program_data, self.regions) if built is None else \
                solve_program(program_data, built)
            if view is not None:
                solution.sells = view[1].lot_sells(solution.sells)
        except Infeasible:
            raise diagnose(data) from None
        except SolverError as failure:
            # a solver can call an infeasible program "optimal" and return garbage (the numpy
            # check refuses it); the elastic program tells whether the policy is infeasible
            verdict = diagnose(data)
            if verdict.conflicts:
                raise verdict from failure
            raise
        self.build_seconds += solution.build_seconds
        self.solve_seconds += solution.solve_seconds
        self.solves += 1
        self.attempts.extend(solution.attempts)
        if solution.built is not None:
            self.last = (data, program_data, solution.built)
        return solution

