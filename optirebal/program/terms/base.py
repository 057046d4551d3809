"""What every term shares: the protocol, the trade point, and the build context.

A term is one objective term or one constraint family of the program. It writes its rows and
costs into a :class:`~optirebal.program.conic.Builder` (:meth:`Term.build`) and evaluates the
same formulas in numpy at any trade point (:meth:`Term.costs`, :meth:`Term.residual`), which is
what verification, the cost table and the decode's checks use. The elastic form of the
infeasibility diagnosis is the same build with the builder in elastic mode: rows a term marks
``relax=True`` get slacks (:mod:`optirebal.program.diagnose`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from optirebal.program.conic import Affine, Builder

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData


@dataclass(frozen=True)
class Point:
    """A trade vector in weights (fractions of pre-trade NAV): buys per account-security pair,
    sells per lot and the change of derivative notional per instrument (empty without an
    overlay)."""

    buys: np.ndarray
    sells: np.ndarray
    derivatives: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def deviation(self, data: ProblemData) -> np.ndarray:
        """``z``: post-trade class exposure less target (units of V, before costs)."""
        return data.deviation(self.buys, self.sells,
                              self.derivatives if len(self.derivatives) else None)

    @staticmethod
    def of(buys: np.ndarray, sells: np.ndarray, derivatives: np.ndarray | None = None) -> Point:
        """A point from arrays; ``derivatives`` None when there is no overlay change."""
        return Point(np.asarray(buys, dtype=float), np.asarray(sells, dtype=float),
                     np.zeros(0) if derivatives is None else np.asarray(derivatives, dtype=float))


@dataclass(eq=False)
class Context:
    """The expressions terms share while the program is built, in build order.

    ``buys`` (per pair) and ``sells`` (per lot) are set by the trades term; ``pair_cost`` (per
    pair: spread, commission, impact), ``linear_pair_cost`` (per pair: the part of it linear in
    the trades, spread and commission; :meth:`linear_cost` is its total as one variable),
    ``immediate_cost`` (one entry: every cost paid now),
    ``exposure_change`` (per class, units of V) and ``account_cash`` (per account, cash used
    besides buys, sells and their costs) grow as terms add to them.
    """

    builder: Builder
    data: ProblemData
    buys: Affine | None = None
    sells: Affine | None = None
    pair_cost: Affine | None = None
    linear_pair_cost: Affine | None = None
    immediate_cost: Affine | None = None
    exposure_change: Affine | None = None
    account_cash: Affine | None = None
    quadratic: bool = False
    """Build the quadratic form, without cones where a term has a choice (the tracking error
    divides by ``1 + F``, not the post-trade NAV): what solvers without cones (OSQP) read."""

    _pair_sells: tuple[Affine, Affine] | None = field(default=None, repr=False)

    def pair_sells(self) -> Affine:
        """``lots_to_pairs @ sells``, the sales per pair, made once for the terms that read it
        (again when ``sells`` is another expression)."""
        assert self.sells is not None
        if self._pair_sells is None or self._pair_sells[0] is not self.sells:
            self._pair_sells = (self.sells, self.data.lots_to_pairs @ self.sells)
        return self._pair_sells[1]

    def linear_cost(self) -> Affine:
        """The costs paid now that are linear in the trades (weights), as one variable defined
        by one row on first use, so that every row reading it has one entry for it, not one
        per pair and lot."""
        bld = self.builder
        if "linear cost" not in bld.variables:
            assert self.linear_pair_cost is not None
            total = bld.variable("linear cost", 1)
            bld.equal("linear cost", total - self.linear_pair_cost.sum())
        return bld.select("linear cost")


class Term(Protocol):
    """One objective term or constraint family (see the module docstring)."""

    name: str

    def applies(self, data: ProblemData) -> bool:
        """Whether the term is part of the program for ``data``."""

    def build(self, ctx: Context) -> None:
        """Add variables, objective terms and constraint blocks to ``ctx.builder``."""

    def costs(self, data: ProblemData, x: Point) -> dict[str, float]:
        """Costs the term charges at ``x`` (fractions of NAV), by component."""

    def residual(self, data: ProblemData, x: Point) -> float:
        """Largest violation (weights) of the term's hard constraints at ``x``; 0 when held."""

    def objective(self, data: ProblemData, x: Point) -> float:
        """The term's part of the program's objective at ``x`` (fractions of NAV)."""


class BaseTerm:
    """Defaults for a term: always applies, charges nothing, constrains nothing; its objective
    is its costs."""

    name = ""

    def applies(self, data: ProblemData) -> bool:
        return True

    def costs(self, data: ProblemData, x: Point) -> dict[str, float]:
        return {}

    def residual(self, data: ProblemData, x: Point) -> float:
        return 0.0

    def objective(self, data: ProblemData, x: Point) -> float:
        return float(sum(self.costs(data, x).values()))
