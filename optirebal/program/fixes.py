"""What a second solve settles: wash-sale directions, orders below the minimum trade, and the
cost credit of soft bands whose penalty could pay for churn.

The first two are disjunctions a convex program cannot state (buy a group *or* sell its loss
lots; trade nothing *or* at least the minimum), settled by fixing one side (capping the other at
zero) and solving again. Directions learned on one call are remembered by the
:class:`~optirebal.rebalance.Rebalancer` and fixed before the next call's first solve, so a
warm call solves once unless a new conflict appears. The third needs the first solution's own
costs (:func:`credit_pass`). One disjunction is left to the next call and reported: a loss lot
washed by recent lots that the trades sell in full (:func:`stale_wash_exclusions`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from optirebal.decode import group_flows
from optirebal.errors import InfeasibleError, SolverError
from optirebal.events import Event
from optirebal.frame_checks import positions
from optirebal.program.data import ProblemData
from optirebal.program.solve import TOLERANCE, Solution
from optirebal.program.terms import Point, constraint_residual, objective_value
from optirebal.program.terms.bands import band_rows, churn_could_pay, loosening_weights
from optirebal.program.terms.trades import linear_immediate_cost
from optirebal.tax.ledger import WINDOW_DAYS


def fix_wash_conflicts(data: ProblemData, solution: Solution,
                       conflicts: list[tuple[str, float, float]],
                       events: list[Event]) -> ProblemData:
    """Fix the direction of each group the solution trades, so that solving again ends it.

    A conflicting group keeps its larger side (the other is capped at zero). A group the
    solution only buys, or only sells at a loss, keeps that side too: without it, the next
    solve could move such a group into a new conflict and cost another round.
    """
    zero = TOLERANCE[solution.solver]
    bought, lost = group_flows(data, solution.buys, solution.sells)
    no_buy = lost > np.maximum(bought, zero)
    no_loss_sale = (bought > zero) & ~no_buy
    sides = conflict_sides(conflicts)
    for name, bought_weight, lost_weight in conflicts:
        side = ("sold at a loss, so no buys" if sides[name] == "sold at a loss"
                else "bought, so its loss lots are not sold")
        events.append(Event("wash_conflict", f"group {name!r}: {side} (wash sale)",
                            security=name, value=bought_weight, limit=lost_weight))
    return block_groups(data, no_buy, no_loss_sale, "wash sale: group {} sold at a loss",
                         "wash sale: group {} bought")


def conflict_sides(conflicts: list[tuple[str, float, float]]) -> dict[str, str]:
    """Per conflicting group, the side it keeps: the larger of its buys and its loss sales."""
    return {name: "sold at a loss" if lost >= bought else "bought"
            for name, bought, lost in conflicts}


def prefix_wash_directions(data: ProblemData, events: list[Event]) -> ProblemData:
    """Fix before the solve the direction of groups whose bands already decide it.

    A group with taxable loss lots whose every class is above its band must be sold, so it is
    not bought anywhere; one whose every class is below its band must be bought, so its loss
    lots are not sold. These are the choices the conflict loop would make after a solve; making
    them first saves its re-solves. Groups inside their bands are left to the loop.
    """
    codes, names = data.group_codes
    n_g = len(names)
    has_loss = loss_groups(data, sellable=True)
    if not has_loss.any():
        return data
    n_risky = len(data.portfolio.classes)
    weights = data.exposure_before[:n_risky] / data.scale
    over = weights > data.upper[:n_risky] + 1e-12
    under = weights < data.lower[:n_risky] - 1e-12
    loads = data.exposure[:n_risky] > 0
    n_loads = loads.sum(axis=0)
    sells = (n_loads > 0) & ((loads & over[:, None]).sum(axis=0) == n_loads)
    buys = (n_loads > 0) & ((loads & under[:, None]).sum(axis=0) == n_loads)
    members = np.bincount(codes, minlength=n_g)
    no_buy = has_loss & (np.bincount(codes, weights=sells, minlength=n_g) == members)
    no_loss_sale = has_loss & (np.bincount(codes, weights=buys, minlength=n_g) == members)
    if not no_buy.any() and not no_loss_sale.any():
        return data
    events.append(Event("wash_prevented", f"wash sales prevented before the solve: "
                        f"{int(no_buy.sum())} groups above their bands are not bought, "
                        f"{int(no_loss_sale.sum())} below their bands do not sell loss lots",
                        value=float(no_buy.sum() + no_loss_sale.sum())))
    return block_groups(data, no_buy, no_loss_sale, "wash sale: group {} above its band",
                         "wash sale: group {} below its band")


def loss_groups(data: ProblemData, sellable: bool) -> np.ndarray:
    """Per substantially-identical group, whether it has taxable loss lots (that the caps let
    be sold, with ``sellable``): the groups a same-solve wash sale can touch."""
    codes, names = data.group_codes
    loss_lot = data.taxable_lot & (data.gain_fraction < 0)
    if sellable:
        loss_lot = loss_lot & (data.sell_cap > 0)
    return np.bincount(codes[data.pair_security[data.lot_pair]], weights=loss_lot,
                       minlength=len(names)) > 0


def block_groups(data: ProblemData, no_buy: np.ndarray, no_loss_sale: np.ndarray,
                  buy_reason: str, sell_reason: str) -> ProblemData:
    """Data with buys of the ``no_buy`` groups and taxable loss sales of ``no_loss_sale`` capped."""
    codes, names = data.group_codes
    pair_group = codes[data.pair_security]
    lot_group = pair_group[data.lot_pair]
    pairs = np.flatnonzero(no_buy[pair_group])
    loss_lot = data.taxable_lot & (data.gain_fraction < 0)
    lots = np.flatnonzero(no_loss_sale[lot_group] & loss_lot)
    return data.with_closed(pairs, lots,
                            [buy_reason.format(repr(names[pair_group[p]])) for p in pairs],
                            [sell_reason.format(repr(names[lot_group[n]])) for n in lots])


def small_orders(data: ProblemData, solution: Solution,
                  spare_breaches: bool = False) -> tuple[ProblemData, int] | None:
    """Data with orders below ``min_trade_value`` capped at zero, or None when there are none.

    With ``spare_breaches``, orders in securities loading on a class outside its band before
    the trades are kept: those are the ones a band may need.
    """
    minimum = data.policy.decode.min_trade_value / data.nav
    if minimum <= 0:
        return None
    zero = TOLERANCE[solution.solver]
    buys = solution.buys
    pair_sells = data.pair_sells(solution.sells)
    small_buy = (buys > zero) & (buys < minimum)
    small_sell = (pair_sells > zero) & (pair_sells < minimum)
    if spare_breaches:
        weights = data.exposure_before / data.scale
        outside = (weights > data.upper + 1e-12) | (weights < data.lower - 1e-12)
        needed = (np.abs(data.exposure[outside]) > 0).any(axis=0)[data.pair_security]
        small_buy &= ~needed
        small_sell &= ~needed
    if not small_buy.any() and not small_sell.any():
        return None
    lots = np.flatnonzero(small_sell[data.lot_pair])
    fixed = data.with_closed(np.flatnonzero(small_buy), lots, "below min_trade_value",
                             "below min_trade_value")
    return fixed, int(small_buy.sum() + small_sell.sum())


def without_small_orders(fixed: ProblemData, solution: Solution) -> Solution | None:
    """The solution with the orders that ``fixed`` closed set to zero and the rest as solved,
    when that still holds every constraint of the program (numpy check); else None.

    Dropping orders below the minimum trade moves each class by less than the minimum, which
    the bands and the cash usually absorb: then no second solve is needed. What it gives up is
    the re-optimization of the other trades around the dropped ones (their share of the
    objective is of the order of the orders dropped)."""
    buys = np.where(fixed.buy_cap <= 0, 0.0, solution.buys)
    sells = np.where(fixed.sell_cap <= 0, 0.0, solution.sells)
    point = Point.of(buys, sells, solution.derivatives)
    residual = constraint_residual(fixed, point)
    if not residual <= TOLERANCE[solution.solver]:
        return None
    return dataclasses.replace(solution, buys=buys, sells=sells, residual=residual,
                               objective=objective_value(fixed, point))


def drop_small_orders(data: ProblemData, solution: Solution,
                      run: Callable[[ProblemData], Solution],
                      events: list[Event]) -> tuple[ProblemData, Solution]:
    """Drop every order below ``min_trade_value``: in place when the rest still holds every
    constraint (:func:`without_small_orders`), else by solving again (``run``); if the bands
    need some, drop only those on classes inside their bands; keep them when even that fails."""
    small = small_orders(data, solution)
    if small is not None:
        dropped_in_place = without_small_orders(small[0], solution)
        if dropped_in_place is not None:
            events.append(Event("min_trade_dropped", f"dropped {small[1]} orders below "
                                "min_trade_value; the other trades hold every constraint as "
                                "solved", value=float(small[1])))
            return small[0], dropped_in_place
    for _ in range(data.policy.decode.repair_rounds):
        attempt, kept = None, None
        for spare_breaches in (False, True):
            small = small_orders(data, solution, spare_breaches)
            if small is None:
                break
            fixed, dropped = small
            try:
                attempt = (fixed, run(fixed), dropped)
                break
            except InfeasibleError:
                kept = Event("min_trade_kept", f"kept {dropped} orders below min_trade_value: "
                             "the bands need them", value=float(dropped))
            except SolverError as exc:
                kept = Event("min_trade_kept", f"kept {dropped} orders below min_trade_value: "
                             f"re-solve failed ({exc})", value=float(dropped))
                break
        if attempt is None:
            if kept is not None:
                events.append(kept)
            break
        data, solution, dropped = attempt
        events.append(Event("min_trade_dropped", f"dropped {dropped} orders below "
                            "min_trade_value and solved again", value=float(dropped)))
    return data, solution


def credit_pass(data: ProblemData, solution: Solution, run: Callable[[ProblemData], Solution],
                events: list[Event]) -> tuple[ProblemData, Solution]:
    """Solve again with the soft rows' cost credit capped at the solution's linear costs, when
    the first solve held a loosening edge before costs for want of it.

    Soft bands whose penalty could pay for churn (:func:`~optirebal.program.terms.bands.
    churn_could_pay`) take no credit, so a class the solve left at its lower edge (cash at its
    upper edge) sits inside it by ``lo C_1`` once the costs are paid, and the next call trades to
    the edge. Capped at ``C_1`` of the first solve, the credit is what those trades earn and no
    more: churn cannot buy a larger one, and the second solve leaves the class at its edge after
    its costs (to the cost of the few extra dollars it trades). Without such an edge, or when the
    second solve fails, the first solution stands.
    """
    if data.credit_cap is not None or not churn_could_pay(data):
        return data, solution
    point = Point.of(solution.buys, solution.sells, solution.derivatives)
    linear = linear_immediate_cost(data, point)
    zero = TOLERANCE[solution.solver]
    upper_linear, lower_linear = loosening_weights(data)
    upper, lower = band_rows(data, point)  # without credit: the rows as the solve held them
    at_edge = ((upper_linear > 0) & (np.abs(upper) <= zero * data.scale)) | (
        (lower_linear > 0) & (np.abs(lower) <= zero * data.scale))
    if not linear > zero or not at_edge.any():
        return data, solution
    capped = data.replaced(credit_cap=linear)
    try:
        again = run(capped)
    except (InfeasibleError, SolverError):
        return data, solution
    names = ", ".join(repr(data.classes[k]) for k in np.flatnonzero(at_edge))
    events.append(Event("cost_credit", f"solved again with the soft bands' cost credit capped at "
                        f"the first solve's linear costs, so that {names} end at their edges "
                        "after costs", value=linear * data.nav))
    return capped, again


def stale_wash_exclusions(data: ProblemData, sell_shares: np.ndarray) -> Event | None:
    """An event naming the loss lots kept out of loss sales as washed by recent lots of their
    group that the decoded trades sell in full (``sell_shares`` per lot), or None.

    Replacement shares bought before a sale count while still held (``docs/tax.md``): once
    this rebalance sells them, such a lot is no longer washed, and the next call may sell it at
    a loss. The program cannot know in advance (washed *or* its replacements sold in full is a
    disjunction); it keeps the exclusion, the conservative side, and says so.
    """
    if data.tax is None or not data.tax.exclusions.washed_lot.any():
        return None
    codes, names = data.group_codes
    lot_group = codes[data.pair_security[data.lot_pair]]
    recent = (data.days_held >= 0) & (data.days_held <= WINDOW_DAYS)
    held = data.portfolio.lot_columns.floats("quantity")
    sold_out = sell_shares >= held * (1 - 1e-12)
    scheduled = data.portfolio.scheduled
    scheduled_groups: set[int] = set()  # a scheduled buy washes them whatever is sold
    if scheduled is not None and len(scheduled):
        where = positions(pd.Index(data.securities), scheduled["security"].astype(str))
        scheduled_groups = set(codes[where].tolist())
    stale = []
    for n in map(int, np.flatnonzero(data.tax.exclusions.washed_lot & ~sold_out)):
        g = int(lot_group[n])
        others = np.flatnonzero(recent & (lot_group == g))
        others = others[others != n]
        if g not in scheduled_groups and len(others) and sold_out[others].all():
            stale.append(n)
    if not stale:
        return None
    lots = ", ".join(repr(data.lot_ids[n]) for n in stale)
    groups = ", ".join(sorted({repr(str(names[lot_group[n]])) for n in stale}))
    return Event("wash_exclusion_stale", f"loss lots {lots} were kept out of loss sales as washed "
                 f"by recent lots of group {groups} that these trades sell in full: no longer "
                 "washed once they are sold (replacement shares count while held), so the "
                 "next call may sell them at a loss", value=float(len(stale)))
