"""`solve(portfolio, policy)`: the one entry point from inputs to a verified `Result`.

Data flow (DESIGN section 2): problem data -> compiled program (cached by structure) -> parameters
bound -> solver chain -> same-solve wash-sale conflicts fixed and solved again -> orders below the
minimum dropped and solved again -> decode -> verify -> result frames.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from optirebal.decode import Trades, decode, wash_conflicts
from optirebal.errors import InfeasibleError, SolverError
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.compile import CompiledProgram, compiled_program
from optirebal.program.data import ProblemData, build_problem_data
from optirebal.program.infeasibility import diagnose
from optirebal.program.solve import (
    TOLERANCE,
    Infeasible,
    Solution,
    post_trade_weights,
    solve_program,
    trade_costs,
)
from optirebal.result import Diagnostics, Result


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
        notes = ("every class is inside its trigger band and no cash must move: no trade",)
        diag = Diagnostics(None, "not triggered", None, 0.0, 0.0, False, 0.0, notes=notes)
        return build_result(data, trades, diag, 0.0)

    cache_hit = compiled_program(data)[1]

    def program_for(solver: str) -> CompiledProgram:
        return compiled_program(data, "soc" if solver == "ECOS" else "power")[0]

    fixes: list[str] = []
    notes: list[str] = []
    attempts: list[tuple[str, str]] = []
    compile_seconds = solve_seconds = 0.0
    solves = 0

    def run(current: ProblemData) -> Solution:
        nonlocal compile_seconds, solve_seconds, solves
        try:
            solution = solve_program(program_for, current)
        except Infeasible:
            raise diagnose(current) from None
        compile_seconds += solution.compile_seconds
        solve_seconds += solution.solve_seconds
        solves += 1
        attempts.extend(solution.attempts)
        return solution

    solution = run(data)
    for _ in range(policy.solver.conflict_rounds):
        zero = TOLERANCE[solution.solver]
        conflicts = wash_conflicts(data, solution.buys, solution.sells, zero)
        if not conflicts:
            break
        data = _fix_wash_conflicts(data, conflicts, fixes)
        solution = run(data)

    for _ in range(policy.decode.repair_rounds):
        small = _small_orders(data, solution)
        if small is None:
            break
        fixed, dropped = small
        try:
            candidate = run(fixed)
        except InfeasibleError:
            notes.append(f"kept {dropped} orders below min_trade_value: the bands need them")
            break
        except SolverError as exc:
            notes.append(f"kept {dropped} orders below min_trade_value: re-solve failed ({exc})")
            break
        data, solution = fixed, candidate
        fixes.append(f"dropped {dropped} orders below min_trade_value and solved again")

    trades = decode(data, solution.buys, solution.sells, solution.solver)
    diag = Diagnostics(
        solver=solution.solver, status=solution.status, iterations=solution.iterations,
        compile_seconds=compile_seconds, solve_seconds=solve_seconds, cache_hit=cache_hit,
        residual=solution.residual, attempts=tuple(attempts), solves=solves, fixes=tuple(fixes),
        notes=tuple(notes))
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


def _fix_wash_conflicts(data: ProblemData, conflicts: list[tuple[str, float, float]],
                        fixes: list[str]) -> ProblemData:
    """Fix each conflicting group's direction: the larger side wins, the other is capped at 0."""
    group = data.portfolio.securities["group"].to_numpy()
    lot_security = data.pair_security[data.lot_pair]
    buy_cap, sell_cap = data.buy_cap.copy(), data.sell_cap.copy()
    reasons = dict(data.cap_reasons)
    for name, bought, lost in conflicts:
        members = np.flatnonzero(group == name)
        if lost >= bought:
            where = np.flatnonzero(np.isin(data.pair_security, members))
            buy_cap[where] = 0.0
            for p in where:
                reasons.setdefault(("buy", int(p)), f"wash sale: group {name!r} sold at a loss")
            fixes.append(f"group {name!r}: sold at a loss, so no buys (wash sale)")
        else:
            where = np.flatnonzero(data.taxable_lot & (data.gain_fraction < 0)
                                   & np.isin(lot_security, members))
            sell_cap[where] = 0.0
            for n in where:
                reasons.setdefault(("sell", int(n)), f"wash sale: group {name!r} bought")
            fixes.append(f"group {name!r}: bought, so its loss lots are not sold (wash sale)")
    return dataclasses.replace(data, buy_cap=buy_cap, sell_cap=sell_cap, cap_reasons=reasons)


def _small_orders(data: ProblemData, solution: Solution) -> tuple[ProblemData, int] | None:
    """Data with orders below ``min_trade_value`` capped at zero, or None when there are none."""
    minimum = data.policy.decode.min_trade_value / data.nav
    if minimum <= 0:
        return None
    zero = TOLERANCE[solution.solver]
    buys = solution.buys
    pair_sells = data.pair_sells(solution.sells)
    small_buy = (buys > zero) & (buys < minimum)
    small_sell = (pair_sells > zero) & (pair_sells < minimum)
    if not small_buy.any() and not small_sell.any():
        return None
    buy_cap, sell_cap = data.buy_cap.copy(), data.sell_cap.copy()
    reasons = dict(data.cap_reasons)
    buy_cap[small_buy] = 0.0
    for p in np.flatnonzero(small_buy):
        reasons.setdefault(("buy", int(p)), "below min_trade_value")
    lots = np.isin(data.lot_pair, np.flatnonzero(small_sell))
    sell_cap[lots] = 0.0
    for n in np.flatnonzero(lots):
        reasons.setdefault(("sell", int(n)), "below min_trade_value")
    fixed = dataclasses.replace(data, buy_cap=buy_cap, sell_cap=sell_cap, cap_reasons=reasons)
    return fixed, int(small_buy.sum() + small_sell.sum())


def build_result(data: ProblemData, trades: Trades, diagnostics: Diagnostics,
                 objective: float) -> Result:
    """Assemble the result frames from decoded trades (all money in currency)."""
    pf = data.portfolio
    nav = data.nav
    price = pf.securities["price"].to_numpy(dtype=float)
    costs = trade_costs(data, trades.buys, trades.sells)
    pair_cost = sum(costs.values())
    pair_sell_shares = np.bincount(data.lot_pair, weights=trades.sell_shares,
                                   minlength=data.n_pairs)
    net_shares = trades.buy_shares - pair_sell_shares

    w_before = data.exposure_before / data.scale
    w_after = post_trade_weights(data, trades.buys, trades.sells)
    outside = np.maximum(np.maximum(w_after - data.upper, data.lower - w_after), 0.0)
    weights = pd.DataFrame(
        {"before": w_before, "after": w_after, "target": data.target, "lower": data.lower,
         "upper": data.upper, "outside": outside},
        index=pd.Index(data.classes, name="class"))

    before_dev = pd.Series(w_before - data.target, index=data.classes)
    after_dev = pd.Series(w_after - data.target, index=data.classes)
    tracking = pd.Series({"before": pf.risk.tracking_error(before_dev),
                          "after": pf.risk.tracking_error(after_dev)}, name="tracking_error")

    lots_sold = _lots_sold(data, trades)
    tax = 0.0
    if data.policy.tax.model == "linear" and len(lots_sold):
        taxable = lots_sold["account"].map(pf.accounts["type"]) == "taxable"
        rate = np.where(lots_sold["term"] == "long", data.policy.tax.long_term_rate,
                        data.policy.tax.short_term_rate)
        tax = float((rate * lots_sold["gain"] * taxable).sum())
    values = {k: float(v.sum() * nav) for k, v in costs.items()}
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

    traded = np.flatnonzero(net_shares != 0)
    reasons = _reasons(data, traded, net_shares, trades)
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
                  objective=objective)


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
    # cash may sit a round-off below zero when it was spent to the last cent
    return moved.with_accounts(cash=result.cash["after"].clip(lower=0.0).to_dict(),
                               flow=dict.fromkeys(portfolio.accounts.index, 0.0))
