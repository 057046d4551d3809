"""The program's terms: one module per objective term or constraint family.

:data:`TERMS` lists them in build order (a term may use what earlier ones put on the
:class:`~optirebal.program.terms.base.Context`). :func:`build_program` assembles the conic program
from them; the numpy functions below loop over the same terms, so verification, the cost table
and the diagnosis read each formula from one place. Adding a cost (a borrow fee, say) is one new
module with a :class:`~optirebal.program.terms.base.BaseTerm` subclass and one entry here
(``docs/architecture.md`` walks through it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optirebal.program.conic import Builder, ConicProgram
from optirebal.program.terms.bands import Bands
from optirebal.program.terms.base import BaseTerm, Context, Point, Term
from optirebal.program.terms.cash import Cash
from optirebal.program.terms.impact import Impact
from optirebal.program.terms.overlay import Overlay, overlay_cash, overlay_immediate_cost
from optirebal.program.terms.relief import LotRelief
from optirebal.program.terms.routing import Routing
from optirebal.program.terms.tax import Tax
from optirebal.program.terms.tracking import Tracking
from optirebal.program.terms.trades import Trades
from optirebal.program.terms.turnover import Turnover

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

__all__ = ["TERMS", "BaseTerm", "Context", "Point", "Term", "account_cash", "build_program",
           "constraint_residual", "cost_values", "immediate_cost", "objective_value",
           "pair_costs", "post_trade_weights", "terms_for"]

TRADES, IMPACT, OVERLAY = Trades(), Impact(), Overlay()
TERMS: tuple[Term, ...] = (TRADES, IMPACT, OVERLAY, Routing(), Tax(), LotRelief(), Tracking(),
                           Bands(), Cash(), Turnover())
"""The program's own terms, in build order."""


def terms_for(data: ProblemData) -> tuple[Term, ...]:
    """The terms of ``data``'s program: :data:`TERMS` with the policy's ``extra_terms`` after
    the overlay (so their costs can reach the cash, the bands and the totals)."""
    extra = tuple(data.policy.extra_terms)
    if not extra:
        return TERMS
    at = TERMS.index(OVERLAY) + 1
    return (*TERMS[:at], *extra, *TERMS[at:])


def build_program(data: ProblemData, elastic: bool = False,
                  slack_costs: dict[str, np.ndarray] | None = None, *, quadratic: bool = False
                  ) -> tuple[ConicProgram, Context]:
    """The conic program of ``data`` built from its terms (the elastic form when asked, with
    ``slack_costs`` per relaxable block; the ``quadratic`` form of :class:`Context`), and the
    build context, whose ``buys``, ``sells`` map a solution back to trades."""
    builder = Builder(elastic=elastic, slack_costs=dict(slack_costs or {}))
    ctx = Context(builder, data, quadratic=quadratic)
    for term in terms_for(data):
        if term.applies(data):
            term.build(ctx)
        if term is IMPACT:
            # what the trades move, now that they and their costs exist
            assert ctx.buys is not None and ctx.sells is not None and ctx.pair_cost is not None
            ctx.exposure_change = data.exposure_by_pairs @ ctx.buys \
                - data.exposure_by_lots @ ctx.sells
            ctx.immediate_cost = ctx.pair_cost.sum()
    return builder.assemble(), ctx


def pair_costs(data: ProblemData, x: Point) -> np.ndarray:
    """Per pair, every trading cost paid now (weights): spread, commission and impact."""
    from optirebal.program.terms.impact import impact_cost
    from optirebal.program.terms.trades import gross

    g = gross(data, x)
    return data.linear_cost[data.pair_security] * g \
        + impact_cost(data.impact_cost[data.pair_security], g, data.impact_model)


def immediate_cost(data: ProblemData, x: Point) -> float:
    """Every cost paid now (weights): trading costs and the derivative spread."""
    return float(pair_costs(data, x).sum()) + overlay_immediate_cost(data, x.derivatives)


def account_cash(data: ProblemData, x: Point) -> np.ndarray:
    """Per account, cash used besides trades and their costs (weights): the overlay's."""
    return overlay_cash(data, x.derivatives)


def cost_values(data: ProblemData, x: Point) -> dict[str, float]:
    """Every money cost at ``x`` (fractions of NAV) by component, in term order."""
    out: dict[str, float] = {}
    for term in terms_for(data):
        if term.applies(data):
            out.update(term.costs(data, x))
    return out


def objective_value(data: ProblemData, x: Point) -> float:
    """The program's objective at ``x`` (fractions of NAV), term by term in numpy."""
    return float(sum(term.objective(data, x) for term in terms_for(data) if term.applies(data)))


def constraint_residual(data: ProblemData, x: Point) -> float:
    """Largest violation (weights) of any term's hard constraints at ``x``."""
    return float(max(term.residual(data, x) for term in terms_for(data) if term.applies(data)))


def post_trade_weights(data: ProblemData, x: Point) -> np.ndarray:
    """Weights by class after trades and the costs paid now (they leave the cash and the NAV).

    Derivative exposure counts; carry accrues over the horizon and is not paid now.
    """
    cost = immediate_cost(data, x)
    exposure = x.deviation(data) + data.target * data.scale
    if data.policy.cash_class in data.classes:
        exposure[-1] -= cost
    return exposure / (data.scale - cost)
