"""`backtest(portfolio, policy, market)`: a policy stepped through history.

On each market date: income is booked, the day's flows land, and on a look date (the policy's
:class:`~optirebal.policy.Schedule`, or any date cash must move) the trigger decides whether to
trade and :class:`~optirebal.Rebalancer` decides how, at that date's prices and costs, with the
year's realized gains and carryovers; the :class:`~optirebal.backtest.book.Book` carries the
trades forward with their lots, cash and taxes. One rebalancer serves every date, so a backtest
compiles once per shape (``BacktestResult.compiles``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from optirebal.backtest.book import Book
from optirebal.backtest.result import BacktestResult, Recorder
from optirebal.backtest.schedule import look_mask
from optirebal.errors import InputError, OptirebalError
from optirebal.market import Market, as_market
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.data import deferred_winners, risk_arrays
from optirebal.rebalance import Rebalancer
from optirebal.schema import number
from optirebal.signals import above_moving_average, momentum_12_1, vol_target_scale
from optirebal.signals import velocity as velocity_ramp
from optirebal.triggers import weights_trigger

FLOW_COLUMNS = ("date", "account", "amount")


def backtest(portfolio: Portfolio, policy: Policy, market: Market | pd.DataFrame,
             start: object = None, end: object = None, *,
             flows: pd.DataFrame | None = None, name: str | None = None,
             rebalancer: Rebalancer | None = None) -> BacktestResult:
    """Step ``portfolio`` through ``market`` under ``policy``.

    Parameters
    ----------
    portfolio : Portfolio
        The household on the first date (its ``as_of`` may be any date up to ``start``); its
        prices are replaced by the market's. Not modified.
    policy : Policy
        Targets, bands, triggers, costs and tax, with ``policy.schedule`` saying when to look.
    market : Market or DataFrame
        Prices (or total returns) per security by date; a wide frame is read as prices, a tidy
        one (``date``, ``security``, ``price`` or ``return``, ...) with
        :meth:`Market.from_frame`. ``volatility`` and ``traded_value`` replace the portfolio's
        ``daily_volatility`` and ``daily_traded_value`` on each date they are given.
    start, end : date or ISO string, optional
        The first and last date (inclusive); default the market's.
    flows : DataFrame, optional
        External cash flows: ``date`` (a market date), ``account``, ``amount`` (currency,
        contribution > 0, withdrawal < 0). A flow date is always a look: the program routes the
        flow (cash-flow-first), whatever the schedule.
    name : str, optional
        A label for comparisons (default: the schedule and trigger).
    rebalancer : Rebalancer, optional
        One to re-use (a sweep shares one); by default a new one for ``policy``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    InputError
        Naming the column and date: market data with gaps, NaN or non-positive prices,
        unsorted or duplicate dates, a security missing from the market, a look date or flow
        outside the data; a portfolio with derivatives (their prices are not part of a market)
        or scheduled buys (a backtest books income and flows as they happen).
    """
    market = as_market(market)
    if portfolio.derivatives is not None:
        raise InputError("backtests hold securities only: the derivative overlay needs "
                         "contract prices by date, which a Market does not carry",
                         field="derivatives")
    if portfolio.scheduled is not None:
        raise InputError("a backtest books what happens on each date: give scheduled buys as "
                         "reinvested income (Market.income with Schedule(income='reinvest')) or "
                         "as flows, not as Portfolio.scheduled", field="scheduled")
    market.covering(portfolio.securities.index)
    first = pd.Timestamp(portfolio.as_of)
    market = market.between(start if start is not None else max(first, market.dates[0]), end)
    dates = market.dates
    if dates[0] < first:
        raise InputError(f"start {dates[0].date()} is before the portfolio's as_of "
                         f"{portfolio.as_of}", field="start")
    securities = portfolio.securities.index
    prices = market.prices[securities].to_numpy()
    flow_table = _flows(flows, dates, portfolio.accounts.index)
    looks = look_mask(policy.schedule, dates)
    rebalancer = rebalancer or Rebalancer(policy)
    classes, exposure = _class_exposure(portfolio, policy)
    signals = Signals(policy, market, portfolio, exposure)
    book = Book(portfolio, policy)
    recorder = Recorder(portfolio, policy, dates, name or policy_label(policy), exposure)
    factor, specific = risk_arrays(portfolio, classes)
    target = np.array([policy.targets[k] for k in classes])
    reserve = portfolio.accounts["cash_reserve"].to_numpy(dtype=float)
    income = None if market.income is None else market.income.reindex(
        columns=securities, fill_value=0.0).to_numpy()
    tax_year = None
    for t, day in enumerate(dates):
        if tax_year is not None and day.year != tax_year and book.taxable:
            recorder.year_end(day, tax_year, book.taxes_by_year(tax_year).loc[tax_year])
        tax_year = day.year
        if income is not None and income[t].any():
            _book_income(book, policy, day, income[t], prices[t], recorder)
        flow = flow_table[t]
        must_move = flow.any() or (book.cash < reserve - 1e-9).any()
        if looks[t] or must_move:
            recorder.event(day, "look", "scheduled look" if looks[t] else "cash must move")
            nav = float(book.value(prices[t]).sum())
            weights = _class_weights(book, prices[t], exposure, nav + flow.sum(), flow,
                                     len(classes) > len(exposure))
            momentum = signals.momentum_at(t, book, prices[t])
            winners = deferred_winners(policy, classes, weights, momentum)
            if must_move or not policy.has_trigger or weights_trigger(
                    policy, classes, weights, target, factor, specific, winners):
                recorder.event(day, "trigger", "cash must move" if must_move
                               else "a trigger fired" if policy.has_trigger else "calendar")
                _trade(book, rebalancer, signals.policy_at(t, recorder), market, t, day, flow,
                       recorder, momentum)
            elif winners.any():
                recorder.event(day, "momentum", "momentum: trim deferred ("
                               + ", ".join(np.array(classes)[winners]) + "), no other class "
                               "outside its trigger band")
        recorder.close(t, day, book, prices[t], flow)
    return recorder.result(book, rebalancer)


def _trade(book: Book, rebalancer: Rebalancer, policy: Policy, market: Market, t: int,
           day: pd.Timestamp, flow: np.ndarray, recorder: Recorder,
           momentum: pd.DataFrame | None) -> None:
    """Solve the look of ``day`` (with the class ``momentum`` signals, if any) and book its
    trades."""
    securities = book.template.securities.copy()
    securities["price"] = market.prices.iloc[t][securities.index].to_numpy()
    for table, column in ((market.volatility, "daily_volatility"),
                          (market.traded_value, "daily_traded_value")):
        if table is not None:
            given = table.iloc[t].reindex(securities.index)
            securities[column] = given.fillna(securities[column]).to_numpy()
    portfolio = book.portfolio(day, securities, flow)
    if momentum is not None:
        portfolio = dataclasses.replace(portfolio, signals=momentum)
    if book.taxable:
        short, long_ = book.year_to_date(day.year)
        tax = dataclasses.replace(policy.tax, realized_short=short, realized_long=long_)
        policy = dataclasses.replace(policy, tax=tax)
    solver = rebalancer if policy is rebalancer.policy else rebalancer.with_policy(policy)
    try:
        decision = solver.decide(portfolio)
    except OptirebalError as error:
        error.add_note(f"backtest date {day.date()}")
        raise
    recorder.trade(day, decision, book.apply(decision, day))


class Signals:
    """What a signal policy reads at each look: class momentum (:class:`~optirebal.policy.
    Momentum`) and the fraction of the gap to close (:class:`~optirebal.policy.Velocity`),
    from data up to the look date only."""

    def __init__(self, policy: Policy, market: Market, portfolio: Portfolio,
                 exposure: np.ndarray) -> None:
        """``exposure``: risky classes x securities (:func:`_class_exposure`)."""
        self.policy, self.market = policy, market
        self.classes = portfolio.classes
        self.exposure = exposure
        securities = portfolio.securities.index
        self.security_momentum: np.ndarray | None = None
        self.given = portfolio.signals
        momentum = policy.momentum
        if momentum is not None and momentum.signal != "given":
            prices = market.prices[securities]
            frame = (momentum_12_1(prices) if momentum.signal == "12-1"
                     else above_moving_average(prices, int(momentum.signal[2:])))
            self.security_momentum = frame.to_numpy()
        velocity = policy.velocity
        self.indicator: np.ndarray | None = None
        if velocity is not None and velocity.vol_target is None:
            signals = market.signals
            columns = [] if signals is None else list(signals.columns)
            if signals is None or velocity.indicator not in columns:
                raise InputError(f"the velocity indicator {velocity.indicator!r} is not a "
                                 f"column of the market's signals ({columns})",
                                 field="velocity.indicator")
            self.indicator = signals[velocity.indicator].ffill().to_numpy()

    def momentum_at(self, t: int, book: Book, prices: np.ndarray) -> pd.DataFrame | None:
        """Class momentum on date ``t``: value-weighted over the securities held in each class
        (NaN, too short a history, counts as none)."""
        momentum = self.policy.momentum
        if momentum is None:
            return None
        if momentum.signal == "given":
            signals = self.market.signals
            if signals is not None and set(self.classes) & set(signals.columns):
                row = signals.iloc[t].reindex(self.classes)
                return pd.DataFrame({"momentum": row.fillna(0.0).to_numpy()},
                                    index=pd.Index(self.classes, name="asset_class"))
            return self.given
        assert self.security_momentum is not None
        signal = np.nan_to_num(self.security_momentum[t])
        value = book.shares.sum(axis=0) * prices
        loads = self.exposure * value
        weight = loads.sum(axis=1)
        mean = np.divide(loads @ signal, weight, out=np.zeros(len(weight)), where=weight > 0)
        return pd.DataFrame({"momentum": mean}, index=pd.Index(self.classes, name="asset_class"))

    def policy_at(self, t: int, recorder: Recorder) -> Policy:
        """The policy of the look on date ``t``: its ``fraction`` set by the velocity rule."""
        velocity = self.policy.velocity
        if velocity is None:
            return self.policy
        if velocity.vol_target is not None:
            returns = recorder.returns_until(t)[-velocity.window:]
            estimate = (float(np.std(returns, ddof=1) * np.sqrt(recorder.periods_per_year))
                        if len(returns) >= 2 else float("nan"))
            fraction = (1.0 if not estimate > 0 else
                        float(vol_target_scale(velocity.vol_target, estimate,
                                               velocity.max_scale)))
        else:
            assert self.indicator is not None
            x = self.indicator[t]
            fraction = 1.0 if np.isnan(x) else float(velocity_ramp(
                x, velocity.v_min, velocity.v_max, velocity.low, velocity.high))
        fraction = min(max(fraction, 1e-6), 1.0)
        recorder.event(self.market.dates[t], "velocity", f"fraction of the gap closed: "
                       f"{fraction:.3f}", value=fraction)
        return dataclasses.replace(self.policy, fraction=fraction)


def _book_income(book: Book, policy: Policy, day: pd.Timestamp, income: np.ndarray,
                 prices: np.ndarray, recorder: Recorder) -> None:
    """Credit the day's income to cash, and buy it back when the schedule reinvests it."""
    paid = book.shares * income  # accounts x securities, currency
    book.credit(paid.sum(axis=1))
    recorder.income(day, float(paid.sum()))
    if policy.schedule.income != "reinvest":
        return
    for a, i in zip(*np.nonzero(paid > 0), strict=True):
        book.reinvest(day, book.securities[i], book.accounts[a], paid[a, i] / prices[i],
                      float(prices[i]))


def _flows(flows: pd.DataFrame | None, dates: pd.DatetimeIndex,
           accounts: pd.Index) -> np.ndarray:
    """Flows as a dates x accounts array (currency)."""
    out = np.zeros((len(dates), len(accounts)))
    if flows is None:
        return out
    if not isinstance(flows, pd.DataFrame):
        raise InputError("flows must be a DataFrame with date, account and amount columns",
                         field="flows")
    for column in FLOW_COLUMNS:
        if column not in flows.columns:
            raise InputError(f"flows need a {column!r} column", field=f"flows.{column}")
    for n, (day, account, amount) in enumerate(zip(flows["date"], flows["account"],
                                                   flows["amount"], strict=True)):
        where = dates.get_indexer([pd.Timestamp(day)])[0]
        if where < 0:
            raise InputError(f"{day} is not a date of the market data between "
                             f"{dates[0].date()} and {dates[-1].date()}",
                             field="flows.date", row=str(n))
        if account not in accounts:
            raise InputError(f"unknown account {account!r}", field="flows.account", row=str(n))
        out[where, accounts.get_loc(account)] += number("flows.amount", amount, row=str(n))
    return out


def _class_exposure(portfolio: Portfolio, policy: Policy) -> tuple[list[str], np.ndarray]:
    """The program's classes (the cash class last when it has a target) and the exposure of
    each security's value to the risky ones (risky classes x securities), as
    :func:`optirebal.program.data.base_problem_data` builds them."""
    risky = portfolio.classes
    classes = risky + ([policy.cash_class] if policy.cash_class in policy.targets else [])
    return classes, portfolio.exposures.reindex(index=risky).to_numpy(dtype=float)


def _class_weights(book: Book, prices: np.ndarray, exposure: np.ndarray, nav: float,
                   flow: np.ndarray, cash_class: bool) -> np.ndarray:
    """Class weights of the book at ``prices`` (fractions of ``nav``, the NAV after flows), the
    cash class's last when ``cash_class``."""
    held = book.shares.sum(axis=0) * prices
    weights = exposure @ held / nav
    if cash_class:
        weights = np.append(weights, (book.cash.sum() + flow.sum()) / nav)
    return weights


def policy_label(policy: Policy) -> str:
    """A short name: the schedule and the trigger."""
    schedule = policy.schedule
    when = "explicit dates" if schedule.dates else schedule.looks
    if policy.trigger is not None:
        lo, hi = policy.trigger.below, policy.trigger.above
        width = f"{lo:g}" if lo == hi else f"{lo:g}/{hi:g}"
        return f"{when}, trigger {policy.trigger.kind} {width}"
    return when
