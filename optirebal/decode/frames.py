"""The result's tidy frames, assembled from decoded trades (all money in currency)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optirebal.decode.contracts import (
    overlay_cash_frame,
    residual_events,
    synthetic_frame,
    with_basis_risk,
)
from optirebal.decode.tax_report import refine_reasons, tax_report
from optirebal.decode.trades import Trades
from optirebal.events import Event, events_frame, messages
from optirebal.program.data import ProblemData
from optirebal.program.terms import cost_values, pair_costs, post_trade_weights
from optirebal.program.terms.base import Point
from optirebal.result import Diagnostics, Result


@dataclass(frozen=True, eq=False)
class Decision:
    """What a rebalance decided, as arrays: the problem data of the accepted solve, the decoded
    and verified trades, how they were found, the objective (weights) and the events of the
    solves. :func:`build_result` turns it into a :class:`~optirebal.result.Result`."""

    data: ProblemData
    trades: Trades
    diagnostics: Diagnostics
    objective: float
    events: tuple[Event, ...] = ()

    @property
    def net_shares(self) -> np.ndarray:
        """Shares bought (+) or sold (-) per pair (account x security)."""
        d, t = self.data, self.trades
        return t.buy_shares - np.bincount(d.lot_pair, weights=t.sell_shares, minlength=d.n_pairs)

    def cash_after(self) -> np.ndarray:
        """Cash per account after flows, trades and costs (currency)."""
        return account_cash_flows(self.data, self.trades)["after"]

    @property
    def nav(self) -> float:
        """Pre-trade net asset value (currency), as :attr:`Result.nav`."""
        return self.data.nav

    def order_pairs(self) -> np.ndarray:
        """The pairs traded, in the row order of :attr:`Result.orders` (by account name, then
        security name: the frame's stable sort)."""
        d = self.data
        traded = np.flatnonzero(self.net_shares != 0)
        accounts = np.asarray(d.accounts, dtype=object)[d.pair_account[traded]]
        securities = np.asarray(d.securities, dtype=object)[d.pair_security[traded]]
        return traded[np.lexsort((securities, accounts))]  # lexsort is stable, as the frame's

    @property
    def n_orders(self) -> int:
        """Number of orders, ``len(Result.orders)``, without building the frame."""
        return int(np.count_nonzero(self.net_shares))

    @property
    def turnover(self) -> float:
        """Gross traded value over pre-trade NAV (fraction), equal to :attr:`Result.turnover`:
        the same values summed in the same (order-frame) order, so the float is the same."""
        pairs = self.order_pairs()
        if not len(pairs):
            return 0.0
        price = self.data.portfolio.security_columns.floats("price")
        values = self.net_shares[pairs] * price[self.data.pair_security[pairs]]
        # numpy's pairwise sum, as pandas' sum of the orders' values (nansum) adds them
        return float(np.abs(values).sum() / self.data.nav)


def account_cash_flows(data: ProblemData, trades: Trades) -> dict[str, np.ndarray]:
    """Per account (currency): ``traded`` (net sale proceeds), ``costs`` and ``after``."""
    nav, pf = data.nav, data.portfolio
    price = pf.securities["price"].to_numpy(dtype=float)
    point = Point.of(trades.buys, trades.sells, trades.derivatives)
    n_a = len(data.accounts)
    pair_sell_shares = np.bincount(data.lot_pair, weights=trades.sell_shares,
                                   minlength=data.n_pairs)
    proceeds = np.bincount(data.pair_account, weights=(pair_sell_shares - trades.buy_shares)
                           * price[data.pair_security], minlength=n_a)
    costs = np.bincount(data.pair_account, weights=pair_costs(data, point) * nav, minlength=n_a)
    return {"traded": proceeds, "costs": costs,
            "after": (pf.accounts["cash"].to_numpy(dtype=float)
                      + pf.accounts["flow"].to_numpy(dtype=float) + proceeds - costs)}


def build_result(decision: Decision) -> Result:
    """Assemble the result frames from a decision (all money in currency).

    The decision's events are those of the solves; the result adds its own (band breaches,
    restrictions in force, contract residuals, cash repairs, tax) and builds the diagnostics'
    notes and fixes from all of them.
    """
    data, trades, diagnostics = decision.data, decision.trades, decision.diagnostics
    objective = decision.objective
    pf = data.portfolio
    nav = data.nav
    price = pf.securities["price"].to_numpy(dtype=float)
    point = Point.of(trades.buys, trades.sells, trades.derivatives)
    net_shares = decision.net_shares

    w_before = data.exposure_before / data.scale
    w_after = post_trade_weights(data, point)
    outside = np.maximum(np.maximum(w_after - data.upper, data.lower - w_after), 0.0)
    weights = pd.DataFrame(
        {"before": w_before, "after": w_after, "target": data.target, "lower": data.lower,
         "upper": data.upper, "outside": outside},
        index=pd.Index(data.classes, name="class"))

    events = list(decision.events)  # what the result adds is appended below, in this order
    solved = diagnostics.solver is not None  # not when a trigger said not to trade
    events += [Event("band_breach", f"class {name!r} is outside its band after rounding and "
                                    f"costs by {gap * 1e4:.2f} bp (decode allows one lot-size "
                                    "unit per order; see weights['outside'])",
                     asset_class=name, value=float(gap))
               for name, gap in zip(data.classes, outside, strict=True) if solved and gap > 1e-6]
    events += restrictions_in_force(data) if solved else []
    events += _defaulted_inputs(data)

    before_dev = pd.Series(w_before - data.target, index=data.classes)
    after_dev = pd.Series(w_after - data.target, index=data.classes)
    tracking = pd.Series({"before": pf.risk.tracking_error(before_dev),
                          "after": pf.risk.tracking_error(after_dev)}, name="tracking_error")
    # derivative overlay (optirebal.overlay): basis risk, costs, cash and the synthetic trades
    tracking = with_basis_risk(data, tracking, trades)
    synthetic = synthetic_frame(data, trades.contracts, trades.derivatives,
                                trades.derivative_solution)
    events += [*residual_events(data, synthetic), *trades.repairs]

    lots_sold = _lots_sold(data, trades)
    # wash-sale flags and the exact tax of the final trades, whichever model chose them
    lots_sold, tax_frame, tax, tax_events = tax_report(data, lots_sold, trades.sell_shares,
                                                       trades.buy_shares)
    events += tax_events
    diagnostics = dataclasses.replace(diagnostics, notes=messages(events, "note"),
                                      fixes=messages(events, "fix"))
    values = {k: v * nav for k, v in cost_values(data, point).items()}
    values["tax"] = tax
    values["total"] = sum(values.values())
    cost_frame = pd.DataFrame({"value": values}).rename_axis("component")
    cost_frame["bps"] = cost_frame["value"] / nav * 1e4

    acc = pf.accounts
    flows = account_cash_flows(data, trades)
    cash = pd.DataFrame({
        "before": acc["cash"].to_numpy(), "flow": acc["flow"].to_numpy(), **flows,
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
                  objective=objective, tax=tax_frame, synthetic=synthetic,
                  events=events_frame(events))


RESTRICTION_REASONS = ("no_buy ", "no_sell ", "no_trade ", "locked lot ", "mode ", "momentum: ")


def _defaulted_inputs(data: ProblemData) -> list[Event]:
    """One event per cost input that took its default for some securities (a missing column or
    an empty cell), saying what the default means for this policy."""
    impact = data.policy.costs.impact != "none"
    out = []
    for column, rows in data.portfolio.defaults.items():
        if column in ("daily_volatility", "daily_traded_value") and not impact:
            continue  # not used without impact
        means = ("no impact is charged on them" if column in ("daily_volatility",
                                                             "daily_traded_value")
                 else "taken as 0")
        listed = ", ".join(rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        out.append(Event("input_default", f"{column} not given for {len(rows)} securities "
                                          f"({listed}): {means}", security=rows[0],
                         value=float(len(rows))))
    return out


def restrictions_in_force(data: ProblemData) -> list[Event]:
    """One event per restriction of the policy that held trades at zero (value: how many)."""
    counts: dict[tuple[str, str], int] = {}
    for (side, _), reason in data.cap_reasons.items():
        if reason.startswith(RESTRICTION_REASONS):
            counts[reason, side] = counts.get((reason, side), 0) + 1
    noun = {"buy": "buy", "sell": "lot"}
    return [Event("restriction", f"restriction in force: {reason} ({n} {noun[side]}"
                                 f"{'s' * (n > 1)} held at zero)", value=float(n))
            for (reason, side), n in counts.items()]


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
    available = data.cash + data.flow - data.reserve
    loss_sold = np.bincount(data.lot_pair, weights=trades.sells * (data.gain_fraction < 0)
                            * data.taxable_lot, minlength=data.n_pairs)
    # per order, the first class (in class order) whose band the order moves back towards:
    # over the nonzero exposures only (a security loads on few classes)
    side = np.where(net_shares[traded] > 0, 1.0, -1.0)
    loads = data.exposure_sparse[:, data.pair_security[traded]].tocoo()
    k, n = loads.row, loads.col
    direction = np.sign(loads.data) * side[n]
    above = (weights[k] > data.upper[k] + 1e-12) & (direction < 0)
    below = (weights[k] < data.lower[k] - 1e-12) & (direction > 0)
    hit = above | below
    first = np.full(len(traded), len(data.classes))
    np.minimum.at(first, n[hit], k[hit])
    out = []
    for n_order, p in enumerate(traded):
        a = data.pair_account[p]
        buy = side[n_order] > 0
        reason = None
        k_first = first[n_order]
        if k_first < len(data.classes):
            moving_down = -side[n_order] * np.sign(data.exposure[k_first, data.pair_security[p]])
            edge = "above upper" if moving_down > 0 else "below lower"
            reason = f"band: {data.classes[k_first]} {edge} edge"
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
