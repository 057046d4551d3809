"""`solve(portfolio, policy)`: the one entry point from inputs to a verified `Result`.

Data flow (DESIGN section 2): problem data -> compiled program (cached by structure) -> parameters
bound -> solver chain -> same-solve wash-sale conflicts fixed and solved again -> orders below the
minimum dropped and solved again -> decode -> verify -> result frames.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from optirebal.decode import Trades, decode, group_flows, wash_conflicts
from optirebal.errors import InfeasibleError, SolverError
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.compile import CompiledProgram, compiled_program
from optirebal.program.data import ProblemData, build_problem_data
from optirebal.program.infeasibility import diagnose
from optirebal.program.solve import (
    ALMOST_SOLVED_GAP,
    TOLERANCE,
    Infeasible,
    Solution,
    post_trade_weights,
    trade_costs,
)
from optirebal.result import Diagnostics, Result
from optirebal.synthetic import (
    overlay_cash_frame,
    overlay_cost_values,
    residual_note,
    synthetic_frame,
    with_basis_risk,
)
from optirebal.tax.exact import solve_tax_program
from optirebal.tax.report import refine_reasons, tax_report


def solve(portfolio: Portfolio, policy: Policy) -> Result:
    """Rebalance ``portfolio`` as ``policy`` asks, and return verified trades.

    Parameters
    ----------
    portfolio : Portfolio
        Holdings by lot, accounts, market data and risk model. Never modified.
    policy : Policy
        Targets, bands, mode, costs, tax and restrictions.

    Returns
    -------
    Result
        Orders, lots sold, weights, costs, cash, tracking error and diagnostics.

    Raises
    ------
    InputError
        When the policy and portfolio do not fit (a target for an unknown class, ...).
    InfeasibleError
        Naming the constraints that conflict.
    SolverError
        When no solver returns a verified answer.
    """
    data = build_problem_data(portfolio, policy)
    if not _triggered(data):
        zeros = (np.zeros(data.n_pairs), np.zeros(len(data.lot_ids)))
        trades = Trades(zeros[0], zeros[1], zeros[0], zeros[1], np.zeros(len(data.classes)))
        quiet = "every class is inside its trigger band and no cash must move: no trade"
        diag = Diagnostics(None, "not triggered", None, 0.0, 0.0, False, 0.0, notes=(quiet,))
        return build_result(data, trades, diag, 0.0)

    cache_hit = compiled_program(data)[1]

    def program_for(solver: str) -> CompiledProgram:
        return compiled_program(data, "soc" if solver == "ECOS" else "power")[0]

    fixes: list[str] = []
    notes: list[str] = []
    attempts: list[tuple[str, str]] = []
    compile_seconds = solve_seconds = 0.0
    solves = 0
    region_log: list[str] = []  # the exact tax model's region choice per solve

    def run(current: ProblemData) -> Solution:
        nonlocal compile_seconds, solve_seconds, solves
        try:
            solution = solve_tax_program(program_for, current, region_log)
        except Infeasible:
            raise diagnose(current) from None
        except SolverError as failure:
            # a solver can call an infeasible program "optimal" and return garbage (the numpy
            # check refuses it); the elastic program tells whether the policy is infeasible
            verdict = diagnose(current)
            if verdict.conflicts:
                raise verdict from failure
            raise
        compile_seconds += solution.compile_seconds
        solve_seconds += solution.solve_seconds
        solves += 1
        attempts.extend(solution.attempts)
        return solution

    data = _prefix_wash_directions(data, fixes)
    solution = run(data)
    for _ in range(policy.solver.conflict_rounds):
        zero = TOLERANCE[solution.solver]
        conflicts = wash_conflicts(data, solution.buys, solution.sells, zero)
        if not conflicts:
            break
        data = _fix_wash_conflicts(data, solution, conflicts, fixes)
        solution = run(data)

    for _ in range(policy.decode.repair_rounds):
        # drop every small order; if the bands need some, drop those on classes inside them
        attempt, kept = None, ""
        for spare_breaches in (False, True):
            small = _small_orders(data, solution, spare_breaches)
            if small is None:
                break
            fixed, dropped = small
            try:
                attempt = (fixed, run(fixed), dropped)
                break
            except InfeasibleError:
                kept = f"kept {dropped} orders below min_trade_value: the bands need them"
            except SolverError as exc:
                kept = f"kept {dropped} orders below min_trade_value: re-solve failed ({exc})"
                break
        if attempt is None:
            if kept:
                notes.append(kept)
            break
        data, solution, dropped = attempt
        fixes.append(f"dropped {dropped} orders below min_trade_value and solved again")

    trades = decode(data, solution.buys, solution.sells, solution.solver, solution.derivatives)
    if solution.status != "optimal":
        notes.append(f"{solution.solver} stopped at reduced accuracy ({solution.status}): the "
                     f"duality gap is within {ALMOST_SOLVED_GAP:.0e} of the objective, and the "
                     "trades passed every numpy check")
    diag = Diagnostics(
        solver=solution.solver, status=solution.status, iterations=solution.iterations,
        compile_seconds=compile_seconds, solve_seconds=solve_seconds, cache_hit=cache_hit,
        residual=solution.residual, attempts=tuple(attempts), solves=solves, fixes=tuple(fixes),
        notes=tuple(notes + region_log[-1:]))
    return build_result(data, trades, diag, solution.objective)


def _triggered(data: ProblemData) -> bool:
    """False when a trigger policy says to leave the portfolio alone."""
    policy = data.policy
    if policy.trigger is None and not policy.class_triggers:
        return True
    if (data.flow != 0).any() or (data.cash < data.reserve).any():
        return True
    weights = data.exposure_before / data.scale
    for k, name in enumerate(data.classes):
        band = policy.trigger_of(name)
        if band is None:
            continue
        lo, hi = band.edges(policy.targets[name])
        if weights[k] < lo - 1e-12 or weights[k] > hi + 1e-12:
            return True
    return False


def _fix_wash_conflicts(data: ProblemData, solution: Solution,
                        conflicts: list[tuple[str, float, float]],
                        fixes: list[str]) -> ProblemData:
    """Fix the direction of each group the solution trades, so that solving again ends it.

    A conflicting group keeps its larger side (the other is capped at zero). A group the
    solution only buys, or only sells at a loss, keeps that side too: without it, the next
    solve could move such a group into a new conflict and cost another round.
    """
    zero = TOLERANCE[solution.solver]
    bought, lost = group_flows(data, solution.buys, solution.sells)
    no_buy = lost > np.maximum(bought, zero)
    no_loss_sale = (bought > zero) & ~no_buy
    for name, bought_weight, lost_weight in conflicts:
        side = ("sold at a loss, so no buys" if lost_weight >= bought_weight
                else "bought, so its loss lots are not sold")
        fixes.append(f"group {name!r}: {side} (wash sale)")
    return _block_groups(data, no_buy, no_loss_sale, "wash sale: group {} sold at a loss",
                         "wash sale: group {} bought")


def _prefix_wash_directions(data: ProblemData, fixes: list[str]) -> ProblemData:
    """Fix before the solve the direction of groups whose bands already decide it.

    A group with taxable loss lots whose every class is above its band must be sold, so it is
    not bought anywhere; one whose every class is below its band must be bought, so its loss
    lots are not sold. These are the choices the conflict loop would make after a solve; making
    them first saves its re-solves. Groups inside their bands are left to the loop.
    """
    codes, names = data.group_codes
    n_g = len(names)
    lot_security = data.pair_security[data.lot_pair]
    loss_lot = data.taxable_lot & (data.gain_fraction < 0) & (data.sell_cap > 0)
    has_loss = np.bincount(codes[lot_security], weights=loss_lot, minlength=n_g) > 0
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
    fixes.append(f"wash sales prevented before the solve: {int(no_buy.sum())} groups above "
                 f"their bands are not bought, {int(no_loss_sale.sum())} below their bands do "
                 "not sell loss lots")
    return _block_groups(data, no_buy, no_loss_sale, "wash sale: group {} above its band",
                         "wash sale: group {} below its band")


def _block_groups(data: ProblemData, no_buy: np.ndarray, no_loss_sale: np.ndarray,
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


def _small_orders(data: ProblemData, solution: Solution,
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


def build_result(data: ProblemData, trades: Trades, diagnostics: Diagnostics,
                 objective: float) -> Result:
    """Assemble the result frames from decoded trades (all money in currency)."""
    pf = data.portfolio
    nav = data.nav
    price = pf.securities["price"].to_numpy(dtype=float)
    costs = trade_costs(data, trades.buys, trades.sells)
    pair_cost = np.sum(list(costs.values()), axis=0)
    pair_sell_shares = np.bincount(data.lot_pair, weights=trades.sell_shares,
                                   minlength=data.n_pairs)
    net_shares = trades.buy_shares - pair_sell_shares

    w_before = data.exposure_before / data.scale
    w_after = post_trade_weights(data, trades.buys, trades.sells, trades.derivatives)
    outside = np.maximum(np.maximum(w_after - data.upper, data.lower - w_after), 0.0)
    weights = pd.DataFrame(
        {"before": w_before, "after": w_after, "target": data.target, "lower": data.lower,
         "upper": data.upper, "outside": outside},
        index=pd.Index(data.classes, name="class"))

    notes = list(diagnostics.notes)  # what the result adds is appended below, in this order
    breached = [f"{name!r} by {gap * 1e4:.2f} bp" for name, gap in zip(data.classes, outside,
                                                                        strict=True) if gap > 1e-6]
    if breached:
        notes.append(f"classes outside their bands after rounding and costs: "
                     f"{', '.join(breached)} (decode allows one lot-size unit per order; see "
                     "weights['outside'])")
    in_force = _restrictions_in_force(data)
    if in_force:
        notes.append(in_force)

    before_dev = pd.Series(w_before - data.target, index=data.classes)
    after_dev = pd.Series(w_after - data.target, index=data.classes)
    tracking = pd.Series({"before": pf.risk.tracking_error(before_dev),
                          "after": pf.risk.tracking_error(after_dev)}, name="tracking_error")
    # derivative overlay (optirebal.overlay): basis risk, costs, cash and the synthetic trades
    tracking = with_basis_risk(data, tracking, trades)
    synthetic = synthetic_frame(data, trades.contracts, trades.derivatives,
                                trades.derivative_solution)
    notes += [*residual_note(data, synthetic), *trades.repairs]

    lots_sold = _lots_sold(data, trades)
    # wash-sale flags and the exact tax of the final trades, whichever model chose them
    lots_sold, tax_frame, tax, tax_notes = tax_report(data, lots_sold, trades.sell_shares,
                                                      trades.buy_shares)
    diagnostics = dataclasses.replace(diagnostics, notes=(*notes, *tax_notes))
    values = {k: float(v.sum() * nav) for k, v in costs.items()}
    values.update(overlay_cost_values(data, trades.derivatives))
    values["tax"] = tax
    values["total"] = sum(values.values())
    cost_frame = pd.DataFrame({"value": values}).rename_axis("component")
    cost_frame["bps"] = cost_frame["value"] / nav * 1e4

    n_a = len(data.accounts)
    acc = pf.accounts
    proceeds = np.bincount(data.pair_account, weights=(pair_sell_shares - trades.buy_shares)
                           * price[data.pair_security], minlength=n_a)
    account_cost = np.bincount(data.pair_account, weights=pair_cost * nav, minlength=n_a)
    cash = pd.DataFrame({
        "before": acc["cash"].to_numpy(), "flow": acc["flow"].to_numpy(), "traded": proceeds,
        "costs": account_cost,
        "after": acc["cash"].to_numpy() + acc["flow"].to_numpy() + proceeds - account_cost,
        "reserve": acc["cash_reserve"].to_numpy()}, index=pd.Index(data.accounts, name="account"))
    cash = overlay_cash_frame(data, cash, trades.derivatives)

    traded = np.flatnonzero(net_shares != 0)
    reasons = _reasons(data, traded, net_shares, trades)
    reasons = refine_reasons(data, traded, net_shares, trades.sell_shares, reasons)
    orders = pd.DataFrame({
        "account": [data.accounts[data.pair_account[p]] for p in traded],
        "security": [data.securities[data.pair_security[p]] for p in traded],
        "side": np.where(net_shares[traded] > 0, "buy", "sell"),
        "shares": net_shares[traded],
        "price": price[data.pair_security[traded]],
        "value": net_shares[traded] * price[data.pair_security[traded]],
        "reason": reasons,
    })
    orders = orders.sort_values(["account", "security"], kind="stable").reset_index(drop=True)
    return Result(orders=orders, lots_sold=lots_sold, weights=weights, costs=cost_frame,
                  cash=cash, tracking_error=tracking, diagnostics=diagnostics, nav=nav,
                  objective=objective, tax=tax_frame, synthetic=synthetic)


RESTRICTION_REASONS = ("no_buy ", "no_sell ", "no_trade ", "locked lot ", "mode ")


def _restrictions_in_force(data: ProblemData) -> str:
    """One note naming the policy's restrictions that held trades at zero, with counts."""
    counts: dict[tuple[str, str], int] = {}
    for (side, _), reason in data.cap_reasons.items():
        if reason.startswith(RESTRICTION_REASONS):
            counts[reason, side] = counts.get((reason, side), 0) + 1
    if not counts:
        return ""
    listed = "; ".join(f"{reason} ({n} {'buy' if side == 'buy' else 'lot'}{'s' * (n > 1)} "
                       "held at zero)" for (reason, side), n in counts.items())
    return f"restrictions in force: {listed}"


def _lots_sold(data: ProblemData, trades: Trades) -> pd.DataFrame:
    lots = data.portfolio.lots
    sold = np.flatnonzero(trades.sell_shares > 0)
    price = data.portfolio.securities["price"].reindex(lots["security"].iloc[sold]).to_numpy()
    shares = trades.sell_shares[sold]
    quantity = lots["quantity"].to_numpy(dtype=float)[sold]
    basis = lots["cost_basis"].to_numpy(dtype=float)[sold] * shares / quantity
    proceeds = shares * price
    frame = pd.DataFrame({
        "account": lots["account"].to_numpy()[sold],
        "security": lots["security"].to_numpy()[sold],
        "shares": shares, "proceeds": proceeds, "basis": basis, "gain": proceeds - basis,
        "term": np.where(data.long_term[sold], "long", "short"),
        "days_to_long_term": data.days_to_long_term[sold],
    }, index=pd.Index([data.lot_ids[n] for n in sold], name="lot"))
    return frame


def _reasons(data: ProblemData, traded: np.ndarray, net_shares: np.ndarray,
             trades: Trades) -> list[str]:
    """One reason per order: band breach, cash flow, cash reserve, tax-loss harvest, or risk."""
    weights = data.exposure_before / data.scale
    exposure = data.exposure
    available = data.cash + data.flow - data.reserve
    loss_sold = np.bincount(data.lot_pair, weights=trades.sells * (data.gain_fraction < 0)
                            * data.taxable_lot, minlength=data.n_pairs)
    out = []
    for p in traded:
        a, i = data.pair_account[p], data.pair_security[p]
        buy = net_shares[p] > 0
        reason = None
        for k in np.flatnonzero(exposure[:, i] != 0):
            name = data.classes[k]
            direction = np.sign(exposure[k, i]) * (1 if buy else -1)
            if weights[k] > data.upper[k] + 1e-12 and direction < 0:
                reason = f"band: {name} above upper edge"
            elif weights[k] < data.lower[k] - 1e-12 and direction > 0:
                reason = f"band: {name} below lower edge"
            if reason:
                break
        if reason is None and buy and data.flow[a] > 0:
            reason = "flow: deploy contribution"
        elif reason is None and not buy and data.flow[a] < 0:
            reason = "flow: raise withdrawal"
        elif reason is None and not buy and available[a] < 0:
            reason = "cash: restore reserve"
        elif reason is None and buy and available[a] > 0 and data.cash[a] > data.reserve[a]:
            reason = "cash: deploy excess cash"
        if reason is None and not buy and loss_sold[p] > 0:
            reason = "tax: loss harvest"
        out.append(reason or ("risk: reduce tracking error" if data.risk_weight > 0
                              else "rebalance: move toward target"))
    return out


def apply_trades(portfolio: Portfolio, result: Result) -> Portfolio:
    """The portfolio after ``result``'s trades: lots reduced, bought lots added, cash settled.

    Sold shares leave their lots (a lot sold in full disappears, a partial sale keeps the basis per
    share); each buy becomes a new lot ``"<account>/<security>/<as_of>"`` acquired on ``as_of`` at
    cost ``shares x price``; account cash becomes ``result.cash["after"]`` and flows become zero.
    """
    lots = portfolio.lots.copy()
    if len(result.lots_sold):
        sold = result.lots_sold["shares"].reindex(lots.index, fill_value=0.0)
        keep = lots["quantity"] - sold
        lots["cost_basis"] = lots["cost_basis"] * (keep / lots["quantity"])
        lots["quantity"] = keep
        lots = lots[lots["quantity"] > 0]
    buys = result.orders[result.orders["shares"] > 0]
    new = pd.DataFrame({
        "account": buys["account"].to_numpy(), "security": buys["security"].to_numpy(),
        "quantity": buys["shares"].to_numpy(), "cost_basis": buys["value"].to_numpy(),
        "acquired": portfolio.as_of,
    }, index=pd.Index([f"{a}/{s}/{portfolio.as_of}" for a, s in
                       zip(buys["account"], buys["security"], strict=True)], name="lot"))
    lots = pd.concat([lots, new]) if len(new) else lots
    moved = portfolio.with_lots(lots)
    if result.synthetic is not None and len(result.synthetic):
        moved = moved.with_contracts(result.synthetic["contracts_after"])
    # cash may sit a round-off below zero when it was spent to the last cent
    return moved.with_accounts(cash=result.cash["after"].clip(lower=0.0).to_dict(),
                               flow=dict.fromkeys(portfolio.accounts.index, 0.0))
