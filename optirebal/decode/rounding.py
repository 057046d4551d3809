"""From a solution in weights to orders in shares, lots sold, and a verification of both.

Rounding follows each security's ``lot_size`` (0 fractional, 1 whole shares, 100 round lots).
Sells are rounded per account and security and then given to lots: in the policy's fixed relief
order (``Tax.lot_relief`` ``hifo``, ``fifo``, ``lifo``; :mod:`optirebal.decode.relief`), or by
specific identification in the order the program preferred them (most of the lot sold first,
then the lowest tax per unit value). When rounding leaves an account short of its reserve, its
buys are cut, whole units at a time, until the cash holds. What cannot be held exactly after
rounding (a band edge) is held within a stated tolerance: one rounding unit of every order that
loads on the class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from optirebal.decode.contracts import (
    contract_allowance,
    contract_tolerance,
    decode_contracts,
    verify_contracts,
)
from optirebal.decode.relief import order_breach, ordered_lots
from optirebal.decode.trades import CASH_TOLERANCE, Trades
from optirebal.errors import DecodeError, InfeasibleError
from optirebal.events import Event
from optirebal.program.data import ProblemData
from optirebal.program.solve import TOLERANCE
from optirebal.program.terms import constraint_residual, objective_value
from optirebal.program.terms.bands import band_excess, band_rows
from optirebal.program.terms.base import Point
from optirebal.program.terms.cash import cash_shortfall

BAND_FLOOR = 1e-6
"""Weight a band may be missed by after rounding beyond one unit of every order on its class:
the solver's and the rounding's floating-point noise (0.01 bp)."""


def decode(data: ProblemData, buys: np.ndarray, sells: np.ndarray, solver: str,
           derivatives: np.ndarray | None = None) -> Trades:
    """Round a solution (weights) into shares, repair cash, and verify the outcome.

    ``derivatives`` (change of derivative notional, weights) is rounded into whole contracts and
    repaired against the bands and the margin cash
    (:func:`optirebal.decode.contracts.decode_contracts`).

    Raises
    ------
    DecodeError
        If the rounded trades break a lot, a cap, the cash or a band beyond its tolerance.
    """
    zero = TOLERANCE[solver]
    price = data.portfolio.security_columns.floats("price")
    unit = data.portfolio.security_columns.floats("lot_size")
    lot_security = data.pair_security[data.lot_pair]
    cap_shares = sellable_shares(data)

    buys = np.where(buys > zero, buys, 0.0)
    sells = np.where(sells > zero, sells, 0.0)
    # a pair bought and sold at once is solver noise (or a wash the loop forbids): trade the net
    pair_sell = data.pair_sells(sells)
    both = np.minimum(buys, pair_sell)
    net_buys = np.where(buys - both > zero, buys - both, 0.0)
    pair_sell = np.where(pair_sell - both > zero, pair_sell - both, 0.0) * data.nav
    buy_shares = _round(net_buys * data.nav / price[data.pair_security],
                        unit[data.pair_security])
    buy_shares[data.buy_cap <= 0] = 0.0

    by_pair = np.argsort(data.lot_pair, kind="stable")
    bounds = np.searchsorted(data.lot_pair[by_pair], np.arange(data.n_pairs + 1))

    fixed_order = ordered_lots(data)

    def lots_in_order(p: int) -> np.ndarray:
        """Lots of pair ``p`` in the order a sale takes them: the fixed relief order of the
        policy, or by specific identification the lots the program sold most of, then the
        cheapest in tax."""
        if fixed_order is not None:
            return fixed_order(p)
        lots = by_pair[bounds[p]:bounds[p + 1]]
        return lots[np.lexsort((data.tax_rate[lots], -sells[lots] / data.lot_weight[lots]))]

    sell_shares = np.zeros(len(data.lot_ids))
    for p in np.flatnonzero(pair_sell > 0):
        lots = lots_in_order(int(p))
        i = data.pair_security[p]
        sellable = cap_shares[lots].sum()
        wanted = pair_sell[p] / price[i]
        total = min(wanted, sellable)
        if unit[i] > 0:
            in_units = min(np.round(wanted / unit[i]), np.floor(sellable / unit[i])) * unit[i]
            # the whole position, odd remainder included, when that is nearer to the program's
            total = sellable if abs(sellable - wanted) < abs(in_units - wanted) else in_units
        _add_sells(sell_shares, lots, cap_shares, total)

    contracts = change = None
    ordered = (buys > 0, sells > 0)
    if data.overlay is not None:
        contracts, change = decode_contracts(
            data, derivatives, zero, buy_shares * price[data.pair_security] / data.nav,
            sell_shares * price[lot_security] / data.nav,
            _band_tolerance(data, buy_shares, sell_shares, ordered, price, unit))
    rounded = buy_shares.copy(), sell_shares.copy()
    buy_shares, sell_shares = _repair_cash(data, buy_shares, sell_shares, cap_shares,
                                           pair_sell > 0, lots_in_order, price, unit, change)

    def tolerance(buy_now: np.ndarray, sell_now: np.ndarray) -> np.ndarray:
        """Per class, one rounding unit of every order kept that loads on it (weights): an order
        rounded away to nothing earns no allowance."""
        return _band_tolerance(data, buy_now, sell_now, (buy_now > 0, sell_now > 0), price, unit)

    # what whole contracts moved is allowed from the start (no security trade should chase it
    # at another class's expense)
    allowance = 0.0 if contracts is None else contract_allowance(data, contracts)
    buy_shares, sell_shares = _repair_bands(
        data, buy_shares, sell_shares, cap_shares, lots_in_order, price, unit, change,
        lambda b, s: tolerance(b, s) + allowance)
    # what the repairs moved, per security (value, weights), reported as events
    repaired = (np.bincount(data.pair_security, minlength=len(data.securities),
                            weights=np.abs(buy_shares - rounded[0]) * price[data.pair_security])
                + np.bincount(lot_security, minlength=len(data.securities),
                              weights=np.abs(sell_shares - rounded[1]) * price[lot_security])
                ) / data.nav
    repairs = tuple(Event("cash_repair", f"cash and band repair after rounding moved "
                                         f"{repaired[i] * data.nav:,.2f} of {data.securities[i]}",
                          security=data.securities[i], value=float(repaired[i] * data.nav))
                    for i in np.flatnonzero(repaired > 0))
    trades = Trades(
        buy_shares=buy_shares, sell_shares=sell_shares,
        buys=buy_shares * price[data.pair_security] / data.nav,
        sells=sell_shares * price[lot_security] / data.nav,
        # the lot-size tolerance and nothing more: a band the repairs could not hold within it
        # is a DecodeError naming the class and the distance (verify), never a success
        band_tolerance=tolerance(buy_shares, sell_shares), repairs=repairs,
        contracts=contracts, derivatives=change, derivative_solution=derivatives)
    if contracts is not None:
        extra = contract_tolerance(data, trades.buys, trades.sells, contracts,
                                   trades.band_tolerance)
        trades = dataclasses.replace(trades, band_tolerance=trades.band_tolerance + extra)
    verify(data, trades)
    return trades


NO_TRADE_GAIN = 1e-12
"""Least improvement on no trade (fraction of NAV, 1e-8 bp) that makes decoded trades worth
placing: ten times the tightest duality gap the solvers are held to
(:data:`optirebal.program.solvers.QP_GAP`). Where the optimum is to trade nothing (a portfolio
at its no-trade edge, such as one just rebalanced) a solver stopping within its gap returns
trades of about 1e-6 of NAV that are no better than none."""


def no_trade_is_as_good(data: ProblemData, trades: Trades, solver: str) -> bool:
    """Whether no trade at all holds every constraint of the program and the decoded ``trades``
    improve the objective (the terms' numpy twins) by less than :data:`NO_TRADE_GAIN`."""
    derivatives = trades.derivatives
    if not (trades.buy_shares.any() or trades.sell_shares.any()
            or (derivatives is not None and np.any(derivatives))):
        return False
    zero = None if derivatives is None else np.zeros_like(derivatives)
    none = Point.of(np.zeros_like(trades.buys), np.zeros_like(trades.sells), zero)
    if not constraint_residual(data, none) <= TOLERANCE[solver]:
        return False
    gain = objective_value(data, none) - objective_value(
        data, Point.of(trades.buys, trades.sells, derivatives))
    return gain < NO_TRADE_GAIN


def sellable_shares(data: ProblemData) -> np.ndarray:
    """Per lot, the shares that may be sold: its sell cap in shares, at most the lot."""
    price = data.portfolio.security_columns.floats("price")
    lot_security = data.pair_security[data.lot_pair]
    lot_shares = data.portfolio.lot_columns.floats("quantity")
    cap_shares = np.minimum(data.sell_cap * data.nav / price[lot_security], lot_shares)
    # a cap equal to the lot (to round-off) is the lot: no crumbs of shares left for other lots
    return np.where(np.isclose(cap_shares, lot_shares, rtol=1e-12, atol=0.0), lot_shares,
                    cap_shares)


def _round(shares: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Nearest multiple of ``unit`` (unchanged where the unit is 0: fractional shares)."""
    safe = np.where(unit > 0, unit, 1.0)
    return np.where(unit > 0, np.round(shares / safe) * safe, shares)


def _add_sells(sell_shares: np.ndarray, lots: np.ndarray, cap_shares: np.ndarray,
               total: float) -> None:
    """Add ``total`` shares to the sells of ``lots``, in their order, each up to its cap."""
    for lot in lots:
        if total <= 1e-9 * max(cap_shares[lots].max(), 1.0):
            return
        take = min(total, cap_shares[lot] - sell_shares[lot])
        sell_shares[lot] += take
        total -= take


def _repair_cash(data: ProblemData, buy_shares: np.ndarray, sell_shares: np.ndarray,
                 cap_shares: np.ndarray, selling: np.ndarray,
                 lots_in_order: Callable[[int], np.ndarray], price: np.ndarray, unit: np.ndarray,
                 derivatives: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Restore the cash of accounts left short of their reserve by rounding.

    Each round, per short account, takes the smaller of two moves: cut its largest buy, or sell
    more of a position the program sells there (``selling``, per pair), each by whole units
    covering the shortfall. A sale rounded down to nothing is thus rounded up when the account
    needs its cash, and a fractional position tops up the cash before a round lot is cut. When
    neither exists (a shortfall of the program's own round-off, with nothing bought or sold in
    the account), the smallest sale of another position there that covers it.
    """
    buy_shares, sell_shares = buy_shares.copy(), sell_shares.copy()
    lot_security = data.pair_security[data.lot_pair]
    held = np.bincount(data.lot_pair, weights=cap_shares, minlength=data.n_pairs)
    for _ in range(len(buy_shares) + len(sell_shares) + 1):
        buys = buy_shares * price[data.pair_security] / data.nav
        sells = sell_shares * price[lot_security] / data.nav
        short = cash_shortfall(data, Point.of(buys, sells, derivatives))
        accounts = np.flatnonzero(short > CASH_TOLERANCE)
        if len(accounts) == 0:
            return buy_shares, sell_shares
        room = held - np.bincount(data.lot_pair, weights=sell_shares, minlength=data.n_pairs)
        for a in accounts:
            # the value that covers the shortfall, with up to 100% slack for its own costs
            need = short[a] * data.nav * 1.01
            moves = []  # (value moved, side, pair, shares)
            bought = np.flatnonzero((data.pair_account == a) & (buy_shares > 0))
            if len(bought):
                p = int(bought[np.argmax(buys[bought])])
                shares = _whole_units(need / price[data.pair_security[p]],
                                      unit[data.pair_security[p]])
                shares = min(shares, buy_shares[p])
                moves.append((shares * price[data.pair_security[p]], "cut", p, shares))
            for only_sold in (True, False):
                # never a sale of a pair the account buys (cutting the buy is the move)
                candidates = (data.pair_account == a) & (buy_shares == 0) \
                    & (selling if only_sold else room > 0)
                for p in map(int, np.flatnonzero(candidates)):
                    i = data.pair_security[p]
                    shares = _whole_units(need / price[i], unit[i])
                    if shares <= room[p] * (1 + 1e-12):  # a sale that covers the shortfall
                        moves.append((shares * price[i], "sell", p, shares))
                if moves:
                    break
            if not moves and not len(bought) and not (room[data.pair_account == a] > 0).any():
                # nothing to cut and nothing that may be sold: the policy cannot pay the
                # account's withdrawal or reserve (the program was within its round-off of it)
                reasons = sorted({why for (side, n), why in data.cap_reasons.items()
                                  if side == "sell" and data.pair_account[data.lot_pair[n]] == a})
                name = data.accounts[a]
                raise InfeasibleError(
                    f"account {name!r} is {short[a] * data.nav:,.2f} short of its reserve and "
                    f"nothing in it may be sold ({'; '.join(reasons) or 'no holdings'})",
                    conflicts=(f"cash reserve of account {name!r}", *reasons))
            if not moves:
                continue
            # the smallest move in weights (rounded: equal ones keep the first, at any NAV)
            _, side, p, shares = min(moves, key=lambda move: _rounded(move[0] / data.nav))
            if side == "cut":
                buy_shares[p] -= shares
            else:
                _add_sells(sell_shares, lots_in_order(p), cap_shares, shares)
    raise DecodeError("could not repair the cash of accounts after rounding")


def _remove_sells(sell_shares: np.ndarray, lots: np.ndarray, total: float) -> None:
    """Take ``total`` shares off the sells of ``lots``, the last in their order first."""
    for lot in lots[::-1]:
        take = min(total, sell_shares[lot])
        sell_shares[lot] -= take
        total -= take
        if total <= 0:
            return


def _repair_bands(data: ProblemData, buy_shares: np.ndarray, sell_shares: np.ndarray,
                  cap_shares: np.ndarray, lots_in_order: Callable[[int], np.ndarray],
                  price: np.ndarray, unit: np.ndarray, derivatives: np.ndarray | None,
                  tolerance: Callable[[np.ndarray, np.ndarray], np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Bring every class back inside its hard band after rounding and cash repair.

    While a class lies outside its band by more than its rounding tolerance, try every order
    that moves it back: more or fewer whole units of a security loading on it, in any account
    where the trade is open (buy cap, lots to sell), without a same-solve wash sale, and bought
    with cash the account has, or funded by selling whole units of another of its positions;
    take the one that leaves the least total excess; a class no move improves is set aside while
    the others are repaired. What cannot be repaired is left to :func:`verify`, which names the
    class and the distance.
    """
    if data.soft_bands:
        return buy_shares, sell_shares
    buy_shares, sell_shares = buy_shares.copy(), sell_shares.copy()
    lot_security = data.pair_security[data.lot_pair]
    held = np.bincount(data.lot_pair, weights=cap_shares, minlength=data.n_pairs)

    def point_of(buy_now: np.ndarray, sell_now: np.ndarray) -> Point:
        return Point.of(buy_now * price[data.pair_security] / data.nav,
                        sell_now * price[lot_security] / data.nav, derivatives)

    def gaps(buy_now: np.ndarray, sell_now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per class, how far the upper and the lower band rows are broken beyond the
        tolerance (units of V; negative inside)."""
        upper, lower = band_rows(data, point_of(buy_now, sell_now))
        slack = tolerance(buy_now, sell_now) * data.scale
        return upper - slack, lower - slack

    def state(buy_now: np.ndarray, sell_now: np.ndarray) -> tuple[float, np.ndarray, bool]:
        """Total excess over the tolerances, cash shortfall per account, no wash conflict."""
        point = point_of(buy_now, sell_now)
        excess = np.maximum(np.maximum(*gaps(buy_now, sell_now)), 0.0)
        washes = bool(wash_conflicts(data, point.buys, point.sells, 0.0))
        return float(excess.sum()), cash_shortfall(data, point), not washes

    def funded(new_buy: np.ndarray, new_sell: np.ndarray, short: np.ndarray,
               a: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The same trades with account ``a``'s shortfall covered by selling whole units of one
        of its positions (each candidate position once)."""
        out = []
        need = short[a] * data.nav * 1.01
        sold_now = np.bincount(data.lot_pair, weights=new_sell, minlength=data.n_pairs)
        for q in map(int, np.flatnonzero((data.pair_account == a) & (held - sold_now > 0)
                                          & (new_buy == 0))):
            j = data.pair_security[q]
            count = _whole_units(need / price[j], unit[j])
            if count <= held[q] - sold_now[q] + 1e-9:
                sell_more = new_sell.copy()
                _add_sells(sell_more, lots_in_order(q), cap_shares, count)
                out.append((new_buy, sell_more))
        return out

    stuck = np.zeros(len(data.classes), dtype=bool)  # classes no single move improves
    for _ in range(4 * len(data.classes) + 8):
        upper, lower = gaps(buy_shares, sell_shares)
        excess = np.maximum(upper, lower)
        total = float(np.maximum(excess, 0.0).sum())
        if total <= 0 or (stuck | (excess <= 0)).all():
            break
        # the class furthest out among those a move may still help (one that none can, such as
        # a class moved by whole contracts with its securities locked, does not stop the rest)
        k = int(np.argmax(np.where(stuck, -np.inf, excess)))
        wanted = -1.0 if upper[k] >= lower[k] else 1.0  # less or more exposure to class k
        # currency of exposure to move: back inside the tolerance by half its floor, so that a
        # fractional security does not land on the tolerance's edge to the last bit
        amount = (float(max(upper[k], lower[k])) + BAND_FLOOR / 2 * data.scale) * data.nav
        sold_in = np.bincount(data.lot_pair, weights=sell_shares, minlength=data.n_pairs)
        best: tuple[float, float, np.ndarray, np.ndarray] | None = None
        for i in map(int, np.flatnonzero(data.exposure[k] != 0)):
            buy_side = np.sign(data.exposure[k, i]) == wanted  # buying i moves k the right way
            shares = amount / (price[i] * abs(data.exposure[k, i]))
            shares = _whole_units(shares * (1 + 1e-9), unit[i])
            for p in map(int, np.flatnonzero(data.pair_security == i)):
                sold = sold_in[p]
                trials = []
                # a pair is bought or sold, never both (no round trip in one account)
                if buy_side:
                    if sold > 0:
                        trials.append(("sell less", min(shares, sold)))
                    elif data.buy_cap[p] > 0:
                        trials.append(("buy more", shares))
                else:
                    if buy_shares[p] > 0:
                        trials.append(("buy less", min(shares, buy_shares[p])))
                    elif held[p] - sold > 0:
                        trials.append(("sell more", min(shares, held[p] - sold)))
                for how, count in trials:
                    new_buy, new_sell = buy_shares.copy(), sell_shares.copy()
                    if how == "buy more":
                        new_buy[p] += count
                    elif how == "buy less":
                        new_buy[p] -= count
                    elif how == "sell more":
                        _add_sells(new_sell, lots_in_order(p), cap_shares, count)
                    else:
                        _remove_sells(new_sell, lots_in_order(p), count)
                    after, short, clean = state(new_buy, new_sell)
                    options = [(new_buy, new_sell, after, short, clean)]
                    a = int(data.pair_account[p])
                    if clean and short[a] > CASH_TOLERANCE and how in ("buy more", "sell less"):
                        for fb, fs in funded(new_buy, new_sell, short, a):
                            options.append((fb, fs, *state(fb, fs)))
                    value = count * price[i] / data.nav
                    for fb, fs, after, short, clean in options:
                        # ranked in weights, rounded below the solver's noise: equal moves
                        # (two securities of one class) keep the first, at any NAV
                        key = (_rounded(after), _rounded(value))
                        if clean and (short <= CASH_TOLERANCE).all() and after < total - 1e-15 \
                                and (best is None or key < (best[0], best[1])):
                            best = (*key, fb, fs)
        if best is None:
            stuck[k] = True
            continue
        buy_shares, sell_shares = best[2], best[3]
        stuck[:] = False  # a move changes every class's costs: each may be helped again
    return buy_shares, sell_shares


def _rounded(weight: float) -> float:
    """``weight`` to 1e-12: choices that differ by less are ties, whatever the NAV."""
    return round(weight, 12)


def _whole_units(shares: float, unit: float) -> float:
    """``shares`` rounded up to whole units (unchanged for fractional securities)."""
    return unit * np.ceil(shares / unit) if unit > 0 else shares


def _band_tolerance(data: ProblemData, buy_shares: np.ndarray, sell_shares: np.ndarray,
                    ordered: tuple[np.ndarray, np.ndarray], price: np.ndarray,
                    unit: np.ndarray) -> np.ndarray:
    """Per class, the weight that rounding may move: one unit of every order loading on it.

    An order counts when rounding kept it or the program asked for it (``ordered``: pairs
    bought, lots sold): one rounded away to nothing still moved its class by up to a unit.
    """
    # a sale is rounded once per account and security (then given to lots): one order a pair
    sold = np.bincount(data.lot_pair, weights=((sell_shares > 0) | ordered[1]).astype(float),
                       minlength=data.n_pairs) > 0
    traded = np.zeros(len(data.securities))
    np.add.at(traded, data.pair_security[(buy_shares > 0) | ordered[0]], 1)
    np.add.at(traded, data.pair_security[sold], 1)
    unit_weight = traded * unit * price / data.nav
    tolerance = abs(data.exposure_sparse) @ unit_weight / data.scale
    return tolerance + BAND_FLOOR


def verify(data: ProblemData, trades: Trades) -> None:
    """Check decoded trades in numpy: lots, caps, the relief order, cash, bands and same-solve
    wash sales.

    Raises
    ------
    InfeasibleError
        A class below its band that no whole number of units of its one security can bring
        inside (:func:`_beyond_whole_units`).
    DecodeError
        Naming the first check that fails.
    """
    if trades.contracts is not None:
        verify_contracts(data, trades.contracts)
    lot_shares = data.portfolio.lot_columns.floats("quantity")
    if (trades.sell_shares > lot_shares * (1 + 1e-12)).any():
        lot = data.lot_ids[int(np.argmax(trades.sell_shares - lot_shares))]
        raise DecodeError(f"lot {lot!r} sells more shares than it holds")
    if (trades.buy_shares < 0).any() or (trades.sell_shares < 0).any():
        raise DecodeError("negative order size")
    if ((data.buy_cap <= 0) & (trades.buy_shares > 0)).any():
        p = int(np.argmax((data.buy_cap <= 0) & (trades.buy_shares > 0)))
        raise DecodeError(f"buy of a restricted pair: {data.cap_reasons.get(('buy', p))}")
    if ((data.sell_cap <= 0) & (trades.sell_shares > 0)).any():
        n = int(np.argmax((data.sell_cap <= 0) & (trades.sell_shares > 0)))
        raise DecodeError(f"sale of a restricted lot: {data.cap_reasons.get(('sell', n))}")
    breach = order_breach(data, trades.sell_shares, sellable_shares(data))
    if breach is not None:
        raise DecodeError(breach)
    short = cash_shortfall(data, Point.of(trades.buys, trades.sells, trades.derivatives))
    if (short > CASH_TOLERANCE).any():
        a = data.accounts[int(np.argmax(short))]
        raise DecodeError(f"account {a!r} ends {short.max() * data.nav:,.2f} below its reserve")
    # the bands as the program states them (post-cost on the binding side, see terms.bands)
    point = Point.of(trades.buys, trades.sells, trades.derivatives)
    over = band_excess(data, point)
    if (over > trades.band_tolerance).any():
        k = int(np.argmax(over - trades.band_tolerance))
        beyond_units = _beyond_whole_units(data, point, k, float(over[k]))
        if beyond_units is not None:
            raise beyond_units
        raise DecodeError(f"class {data.classes[k]!r} is {over[k]:.3g} outside its band after "
                          f"rounding (tolerance {trades.band_tolerance[k]:.3g})")
    groups = wash_conflicts(data, trades.buys, trades.sells, 0.0)
    if groups:
        raise DecodeError(f"group {groups[0][0]!r} is bought and sold at a loss in one rebalance "
                          "(a wash sale)")


def _beyond_whole_units(data: ProblemData, point: Point, k: int, excess: float
                        ) -> InfeasibleError | None:
    """The policy's conflict when class ``k``, below its band by ``excess`` after rounding,
    cannot be brought inside it in whole units: one security loads on it, and one unit of that
    security (its lot size) moves the class past the far edge of the band, so no whole number
    of units lands inside. The convex program, blind to lot sizes, bought a fraction of a unit;
    the policy itself cannot be met. None in every other case (the band may be reachable)."""
    upper_row, lower_row = band_rows(data, point)
    loads = np.flatnonzero(data.exposure[k] != 0)
    if not lower_row[k] > upper_row[k] or len(loads) != 1 or data.overlay is not None:
        return None
    i = int(loads[0])
    securities = data.portfolio.securities
    unit = float(securities["lot_size"].iloc[i])
    value = unit * float(securities["price"].iloc[i])
    step = value * abs(float(data.exposure[k, i])) / data.nav / data.scale
    width = float(data.upper[k] - data.lower[k])
    if not (unit > 0 and step > excess + width):
        return None
    name, security = data.classes[k], data.securities[i]
    return InfeasibleError(
        f"class {name!r} cannot be brought inside its band [{data.lower[k]:.2%}, "
        f"{data.upper[k]:.2%}] in whole units: its only security {security!r} trades in units "
        f"of {unit:g} shares ({value:,.2f}, {step:.1%} of NAV), which overshoot the band; "
        "lower the lot size, widen the band, or make it soft",
        conflicts=(f"band lower {name!r}", f"lot size {security!r}"))


def group_flows(data: ProblemData, buys: np.ndarray,
                sells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per substantially-identical group (``data.group_codes``): the weight bought anywhere in
    the household, and the weight of taxable loss lots sold."""
    codes, names = data.group_codes
    loss_lot = data.taxable_lot & (data.gain_fraction < 0)
    bought = np.bincount(codes[data.pair_security], weights=buys, minlength=len(names))
    lot_security = data.pair_security[data.lot_pair]
    lost = np.bincount(codes[lot_security], weights=np.where(loss_lot, sells, 0.0),
                       minlength=len(names))
    return bought, lost


def wash_conflicts(data: ProblemData, buys: np.ndarray, sells: np.ndarray,
                   zero: float) -> list[tuple[str, float, float]]:
    """Groups bought anywhere in the household and sold at a loss in a taxable account.

    Returns
    -------
    list of (group, bought weight, loss-lot sold weight)
    """
    names = data.group_codes[1]
    bought, lost = group_flows(data, buys, sells)
    both = np.flatnonzero((bought > zero) & (lost > zero))
    return [(str(names[g]), float(bought[g]), float(lost[g])) for g in both]
