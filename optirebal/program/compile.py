r"""The convex program of DESIGN section 4, compiled once per structure and re-solved by Parameters.

Variables (weights, fractions of pre-trade NAV ``V``): buys ``b[p] >= 0`` per account-security pair,
lot sells ``0 <= s[l] <= cap[l]``, the deviation ``z = x - t (1 + F)`` of post-trade class exposure
from target (units of ``V``), and band slacks.

.. math::

    \min\; &\|F_s^\top z\|^2 + \|\delta_s \circ z\|^2
           + c^\top g + \kappa^\top g^{3/2} + \tau^\top s
           + \phi_b^\top b + \phi_s^\top s + \epsilon\, 1^\top g + \mu\, 1^\top (u + v) \\
    \text{s.t. }\; & g = b + P s, \quad z = z_0 + E (B b - S s), \\
           & lo - v \le z \le hi + u, \quad 0 \le u, v \le \bar u, \\
           & b \le \bar b, \quad s \le \bar s, \quad 1^\top g \le \bar T, \\
           & A_b b - A_s s + A_b (c \circ g + \kappa \circ g^{3/2}) \le c_a + f_a - r_a .

``F_s = F \sqrt{\gamma H / 2} / (1 + F_{flow})`` folds risk aversion, horizon and the post-trade
NAV into the factor, which keeps the program DPP; ``g`` is gross traded value per pair. Impact is
charged per account order (each account's order is its own block), which keeps the account cash
constraint exact and convex.

With derivatives in the portfolio, :func:`optirebal.program.overlay.overlay_terms` adds the change
of notional ``u``, its exposure ``D u`` to ``z``, its spread to the cost epigraph and the margin
account's cash, margin, carry and basis risk, and the overlay's limits; without them nothing is
added.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from optirebal.program.data import SOFT_SLACK_CAP, TIE_BREAK, ProblemData, lot_aggregation
from optirebal.program.overlay import bind_overlay, overlay_terms
from optirebal.tax.program import bind as bind_tax
from optirebal.tax.program import program_terms as tax_terms

CACHE_SIZE = 32
OBJECTIVE_SCALE = 1e4
"""The objective is stated in basis points of NAV: costs of a few bp are then of order one, which
is where interior-point tolerances are meaningful."""

CAP_FLOOR = 1e-10
"""Smallest cap (weight) a buy or lot sell gets in the program. A cap of exactly zero leaves the
feasible set without an interior, where interior-point solvers stall; 1e-10 of NAV is far below
the size at which a trade counts (:data:`optirebal.program.solve.TOLERANCE`), and decode sets
every capped trade to exactly zero."""


@dataclass(eq=False)
class CompiledProgram:
    """A cvxpy problem with its variables and parameters; bind values, then solve.

    Not thread-safe: :func:`compiled_program` hands out one instance per structure with a lock
    that callers hold while binding and solving.
    """

    problem: cp.Problem
    variables: dict[str, cp.Variable]
    parameters: dict[str, cp.Parameter]
    impact_model: str
    lock: threading.Lock
    built_seconds: float
    solves: int = 0
    named: dict[str, object] = field(default_factory=dict)  # constraints read after solves

    def bind(self, data: ProblemData) -> None:
        """Fill every parameter from ``data`` (weights)."""
        p = self.parameters
        root = np.sqrt(data.risk_weight) / data.scale
        p["factor"].value = data.factor * root
        p["specific"].value = np.sqrt(data.specific_variance) * root
        p["gap"].value = data.exposure_before - data.target * data.scale
        p["lower_gap"].value = (data.lower - data.target) * data.scale
        p["upper_gap"].value = (data.upper - data.target) * data.scale
        # Costs C shrink the post-trade NAV to scale - C. A risky class stays under its upper edge
        # after costs iff x + hi C <= hi scale (exact, convex); its lower edge is held before
        # costs (x >= lo scale, conservative by lo C). Cash pays the costs: its lower edge is
        # exact, x - (1 - lo) C >= lo scale, and its upper edge is held before costs.
        # to_target collapses the band: it is held before costs (after them it cannot be both).
        upper_cost, lower_cost = band_cost_weights(data)
        p["upper_cost"].value = upper_cost
        p["lower_cost"].value = lower_cost
        p["slack_cap"].value = SOFT_SLACK_CAP if data.soft_bands else 0.0
        p["band_penalty"].value = data.band_penalty
        pair_cost = _without_negligible(data.linear_cost[data.pair_security])
        p["linear_cost"].value = pair_cost
        if "impact_cost" in p:
            p["impact_cost"].value = _without_negligible(data.impact_cost[data.pair_security])
        if "impact_bound" in p:
            p["impact_bound"].value = impact_bound(data)
        p["tax_rate"].value = data.tax_rate
        p["buy_counterflow"].value = data.buy_counterflow
        p["sell_counterflow"].value = data.sell_counterflow
        p["buy_cap"].value = np.maximum(data.buy_cap, CAP_FLOOR)
        p["sell_cap"].value = np.maximum(data.sell_cap, CAP_FLOOR)
        p["available"].value = data.cash + data.flow - data.reserve
        cap = data.turnover_cap
        # without a cap, every buy cap and lot together: a bound the trades can never reach
        p["turnover_cap"].value = cap if np.isfinite(cap) else \
            float(data.buy_cap.sum() + data.lot_weight.sum()) + 1.0
        if data.overlay is not None:
            bind_overlay(p, data)
        if data.tax is not None:
            bind_tax(p, data)


NEGLIGIBLE_COST = 1e-12
"""Cost coefficients (fraction of NAV per unit weight) below this are set to zero in the program:
they change no decision, and values near the floating-point floor (a daily volatility of 1e-300)
wreck the solver's scaling."""


def _without_negligible(coefficients: np.ndarray) -> np.ndarray:
    return np.where(np.abs(coefficients) < NEGLIGIBLE_COST, 0.0, coefficients)


def band_cost_weights(data: ProblemData) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the multipliers of the total cost in the upper and lower band constraints."""
    n_k = len(data.classes)
    if data.policy.mode == "to_target":
        return np.zeros(n_k), np.zeros(n_k)
    is_cash = np.array([k == data.policy.cash_class for k in data.classes])
    upper = np.where(is_cash, 0.0, np.clip(data.upper, 0.0, None))
    lower = np.where(is_cash, np.clip(1.0 - data.lower, 0.0, None), 0.0)
    return upper, lower


def _build(data: ProblemData, cone: str) -> CompiledProgram:
    start = time.perf_counter()
    n_a, n_p, n_l = len(data.accounts), data.n_pairs, len(data.lot_ids)
    n_k, n_m = len(data.classes), data.factor.shape[1]
    lots_to_pairs, pairs_to_securities = lot_aggregation(data)
    pairs_to_accounts = sp.csr_matrix((np.ones(n_p), (data.pair_account, np.arange(n_p))),
                                      shape=(n_a, n_p))
    lots_to_accounts = pairs_to_accounts @ lots_to_pairs
    lots_to_securities = pairs_to_securities @ lots_to_pairs
    exposure = sp.csr_matrix(data.exposure)

    b = cp.Variable(n_p, nonneg=True, name="buys")
    s = cp.Variable(n_l, nonneg=True, name="sells")
    z = cp.Variable(n_k, name="deviation")
    over = cp.Variable(n_k, nonneg=True, name="over")
    under = cp.Variable(n_k, nonneg=True, name="under")
    par = {
        "factor": cp.Parameter((n_k, n_m), name="factor"),
        "specific": cp.Parameter(n_k, nonneg=True, name="specific"),
        "gap": cp.Parameter(n_k, name="gap"),
        "lower_gap": cp.Parameter(n_k, name="lower_gap"),
        "upper_gap": cp.Parameter(n_k, name="upper_gap"),
        "upper_cost": cp.Parameter(n_k, nonneg=True, name="upper_cost"),
        "lower_cost": cp.Parameter(n_k, nonneg=True, name="lower_cost"),
        "slack_cap": cp.Parameter(nonneg=True, name="slack_cap"),
        "band_penalty": cp.Parameter(nonneg=True, name="band_penalty"),
        "linear_cost": cp.Parameter(n_p, nonneg=True, name="linear_cost"),
        "tax_rate": cp.Parameter(n_l, name="tax_rate"),
        "buy_counterflow": cp.Parameter(n_p, nonneg=True, name="buy_counterflow"),
        "sell_counterflow": cp.Parameter(n_l, nonneg=True, name="sell_counterflow"),
        "buy_cap": cp.Parameter(n_p, nonneg=True, name="buy_cap"),
        "sell_cap": cp.Parameter(n_l, nonneg=True, name="sell_cap"),
        "available": cp.Parameter(n_a, name="available"),
        "turnover_cap": cp.Parameter(nonneg=True, name="turnover_cap"),
    }
    gross = b + lots_to_pairs @ s
    account_cost = cp.multiply(par["linear_cost"], gross)
    objective = [
        cp.sum_squares(par["factor"].T @ z) + cp.sum_squares(cp.multiply(par["specific"], z)),
        par["linear_cost"] @ gross,
        par["tax_rate"] @ s,
        par["buy_counterflow"] @ b + par["sell_counterflow"] @ s,
        TIE_BREAK * cp.sum(gross),
        par["band_penalty"] * cp.sum(over + under),
    ]
    if data.impact_model != "none":
        par["impact_cost"] = cp.Parameter(n_p, nonneg=True, name="impact_cost")
        par["impact_bound"] = cp.Parameter(n_p, nonneg=True, name="impact_bound")
        shape, impact_cones = impact_shape(gross, data.impact_model, cone, par["impact_bound"])
        impact = cp.multiply(par["impact_cost"], shape)
        objective.append(cp.sum(impact))
        account_cost = account_cost + impact
    spent_cost = cp.sum(account_cost)
    traded_exposure = exposure @ (pairs_to_securities @ b - lots_to_securities @ s)
    cash_used = pairs_to_accounts @ b - lots_to_accounts @ s + pairs_to_accounts @ account_cost
    # the derivative overlay (optirebal.program.overlay); without one the program is unchanged
    synthetic = overlay_terms(data, TIE_BREAK) if data.overlay is not None else None
    if synthetic is not None:
        par.update(synthetic.parameters)
        objective += synthetic.objective
        spent_cost = spent_cost + synthetic.immediate_cost
        traded_exposure = traded_exposure + synthetic.exposure
        cash_used = cash_used + synthetic.account_cash
    # epigraph of the total cost keeps the band constraints DPP (parameter times variable)
    total_cost = cp.Variable(nonneg=True, name="total_cost")
    constraints = [
        spent_cost <= total_cost,
        z == par["gap"] + traded_exposure,
        # bands on post-cost weights: exact on the binding side (see bind), conservative otherwise
        z + par["upper_cost"] * total_cost <= par["upper_gap"] + over,
        z - par["lower_cost"] * total_cost >= par["lower_gap"] - under,
        over <= par["slack_cap"],
        under <= par["slack_cap"],
        b <= par["buy_cap"],
        s <= par["sell_cap"],
        cp.sum(gross) <= par["turnover_cap"],
        cash_used <= par["available"],
    ]
    if data.impact_model != "none":
        constraints += impact_cones
    if synthetic is not None:
        constraints += synthetic.constraints
    # exact-netting regions and a gain budget (optirebal.tax.program); none for linear alone
    named: dict[str, object] = {}
    if data.tax is not None and any(data.tax.structure):
        tax_objective, tax_constraints, named = tax_terms(data, s, par)
        objective += tax_objective
        constraints += tax_constraints
    problem = cp.Problem(cp.Minimize(OBJECTIVE_SCALE * sum(objective)), constraints)
    variables = {"total_cost": total_cost, "buys": b, "sells": s, "deviation": z, "over": over,
                 "under": under}
    if synthetic is not None:
        variables["derivatives"] = synthetic.change
    return CompiledProgram(problem, variables, par, data.impact_model, threading.Lock(),
                           time.perf_counter() - start, named=named)


def impact_bound(data: ProblemData) -> np.ndarray:
    """Per pair, an upper end for the 3/2-power epigraph: no pair trades more than its buy cap
    plus its lots (weights)."""
    most = data.buy_cap + np.bincount(data.lot_pair, weights=data.sell_cap,
                                      minlength=data.n_pairs)
    return most**1.5 + 1.0


def impact_shape(gross: cp.Expression, model: str, cone: str,
                 bound: cp.Parameter | np.ndarray) -> tuple[cp.Expression, list[cp.Constraint]]:
    """``|g|^{3/2}`` (power) or ``g^2`` (quadratic) per pair, with the cones that define it.

    For Clarabel the 3/2 power is the epigraph ``t^{2/3} 1^{1/3} >= |g|``: one 3-D power cone
    per pair. (cvxpy's ``power(g, 1.5)`` spends two cones per pair, and with most pairs untraded,
    at the cones' apex, Clarabel then stalls short of its tolerances.) ``t`` is bounded above by
    ``bound`` (:func:`impact_bound`): where a pair's impact coefficient is zero nothing else
    bounds it, and an unbounded optimal face drives an interior-point solver to huge, inaccurate
    iterates. ECOS takes the second-order-cone representation.
    """
    if model == "quadratic":
        return cp.square(gross), []
    if cone == "soc":
        return cp.power(gross, 1.5, approx=True), []
    n = gross.shape[0]
    epigraph = cp.Variable(n, nonneg=True, name="impact_epigraph")
    return epigraph, [cp.constraints.PowCone3D(epigraph, np.ones(n), gross, 2.0 / 3.0),
                      epigraph <= bound]


_CACHE: OrderedDict[tuple[object, ...], CompiledProgram] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def compiled_program(data: ProblemData, cone: str = "power") -> tuple[CompiledProgram, bool]:
    """The program for ``data``'s structure, from the cache when it is there.

    ``cone`` is ``"power"`` (3/2-power impact as a power cone, for Clarabel) or ``"soc"`` (its
    second-order-cone representation, for ECOS); it matters only for the ``power`` impact model.

    Returns
    -------
    program, cache_hit
    """
    cone = cone if data.impact_model == "power" else "any"
    key = (*data.structure_key, cone)
    with _CACHE_LOCK:
        program = _CACHE.get(key)
        if program is not None:
            _CACHE.move_to_end(key)
            return program, True
    program = _build(data, cone)
    with _CACHE_LOCK:
        _CACHE[key] = program
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return program, False


def clear_cache() -> None:
    """Forget every compiled program (the next solve of each structure compiles again)."""
    with _CACHE_LOCK:
        _CACHE.clear()
