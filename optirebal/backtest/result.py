"""`BacktestResult`: what a policy did over history, as tidy frames, statistics and plots.

Returns are time-weighted (a flow on a date does not count as return); statistics are annualized
with the data's own number of dates per year. The *target mix* is the portfolio held at its
targets every date, costlessly, each class earning the value-weighted return of the securities the
portfolio held in it the date before: the rebalancing alpha is the policy's return over it, so
it measures what the drift a policy allowed (and its costs and taxes) earned.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.backtest.book import Book
from optirebal.decode.frames import Decision, restrictions_in_force
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.terms import cost_values
from optirebal.program.terms.base import Point
from optirebal.tax.netting import exact_tax

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from optirebal.rebalance import Rebalancer

COST_KINDS = ("spread", "commission", "impact")
EVENT_COLUMNS = ("date", "kind", "account", "security", "value", "message")


class Recorder:
    """Collects a backtest's dates, trades and events as they happen (numpy lists; the frames
    are built once, by :meth:`result`)."""

    def __init__(self, portfolio: Portfolio, policy: Policy, dates: pd.DatetimeIndex,
                 name: str, exposure: np.ndarray) -> None:
        """``exposure``: risky classes x securities, the value each security adds to each."""
        self.policy, self.dates, self.name = policy, dates, name
        self.portfolio = portfolio
        classes = portfolio.classes
        self.classes = classes + ([policy.cash_class] if policy.cash_class not in classes
                                  else [])
        self.exposure = exposure
        n = len(dates)
        self.nav = np.zeros(n)
        self.flow = np.zeros(n)
        self.weights = np.zeros((n, len(self.classes)))
        self.held = np.zeros((n, len(portfolio.securities)))  # value per security, currency
        self.prices = np.zeros((n, len(portfolio.securities)))
        self.tax_to_date = np.zeros(n)
        self.events: list[tuple[object, ...]] = []
        self.orders: list[tuple[pd.Timestamp, np.ndarray, np.ndarray, np.ndarray,
                                np.ndarray]] = []
        self.costs: list[dict[str, object]] = []
        self.solves = self.compiles = 0
        self.solver_seconds = 0.0
        self._tax_key: tuple[int, int] | None = None
        self._tax_value = 0.0
        tax = policy.tax
        rates = tax.rates(carry_value=False)
        # the tax of gains realized before the start is sunk: the backtest's taxes are above it
        self._sunk = float(exact_tax(tax.realized_short, tax.realized_long, rates).tax)

    def event(self, day: pd.Timestamp, kind: str, message: str, account: str = "",
              security: str = "", value: float = np.nan) -> None:
        self.events.append((day, kind, account, security, value, message))

    def income(self, day: pd.Timestamp, amount: float) -> None:
        self.event(day, "income", f"income of {amount:,.2f} "
                   f"{'reinvested' if self.policy.schedule.income == 'reinvest' else 'to cash'}",
                   value=amount)

    def year_end(self, day: pd.Timestamp, year: int, row: pd.Series) -> None:
        self.event(day, "year_end", f"{year}: net short {row['net_short']:,.2f}, net long "
                   f"{row['net_long']:,.2f}, tax {row['tax']:,.2f}, carryover "
                   f"{row['carryover_short'] + row['carryover_long']:,.2f}",
                   value=float(row["tax"]))

    def trade(self, day: pd.Timestamp, decision: Decision, washes: int) -> None:
        """Record a look's decision: its orders, costs by kind and events, and the wash-sale
        matches (``washes``) booking it added."""
        data, trades = decision.data, decision.trades
        self.solves += decision.diagnostics.solves
        self.compiles += decision.diagnostics.compiles
        self.solver_seconds += decision.diagnostics.solve_seconds
        net = decision.net_shares
        traded = np.flatnonzero(net)
        price = data.portfolio.securities["price"].to_numpy(dtype=float)[data.pair_security]
        value = net * price
        gross = float(np.abs(value).sum())
        if len(traded):
            self.orders.append((day, data.pair_account[traded], data.pair_security[traded],
                                net[traded], price[traded]))
            self.event(day, "trade", f"{len(traded)} orders, {gross:,.2f} traded", value=gross)
        costs = cost_values(data, Point.of(trades.buys, trades.sells, trades.derivatives))
        self.costs.append({"date": day, **{k: costs.get(k, 0.0) * data.nav for k in COST_KINDS},
                           "traded": gross, "nav": data.nav})
        if washes:
            self.event(day, "wash_sale", f"{washes} wash-sale match(es): losses disallowed and "
                       "added to the replacement shares' basis (see taxes)", value=float(washes))
        for e in (*decision.events, *restrictions_in_force(data)):
            if e.kind != "not_triggered":
                self.event(day, e.kind, e.message, e.account or "", e.security or "", e.value)

    def _orders_frame(self) -> pd.DataFrame:
        """Every order: date, account, security, side, shares (signed), price, value."""
        accounts = self.portfolio.accounts.index.to_numpy()
        securities = self.portfolio.securities.index.to_numpy()
        parts = [pd.DataFrame({"date": day, "account": accounts[a], "security": securities[i],
                               "side": np.where(n > 0, "buy", "sell"), "shares": n,
                               "price": p, "value": n * p})
                 for day, a, i, n, p in self.orders]
        if not parts:
            return pd.DataFrame(columns=["date", "account", "security", "side", "shares",
                                         "price", "value"])
        return pd.concat(parts, ignore_index=True)

    @property
    def periods_per_year(self) -> float:
        """Dates per year of the backtest's data."""
        years = (self.dates[-1] - self.dates[0]).days / 365.25
        return (len(self.dates) - 1) / years if years > 0 else 252.0

    def returns_until(self, t: int) -> np.ndarray:
        """Time-weighted returns of the dates before ``t`` (fractions)."""
        nav, flow = self.nav[:t], self.flow[:t]
        return (nav[1:] - flow[1:]) / nav[:-1] - 1 if t > 1 else np.zeros(0)

    def close(self, t: int, day: pd.Timestamp, book: Book, prices: np.ndarray,
              flow: np.ndarray) -> None:
        """Record the end of date ``t``: NAV, weights, holdings and taxes to date."""
        held = book.shares.sum(axis=0) * prices
        nav = float(held.sum() + book.cash.sum())
        self.nav[t], self.flow[t], self.held[t], self.prices[t] = nav, flow.sum(), held, prices
        self.weights[t] = np.append(self.exposure @ held, book.cash.sum()) / nav
        if book.taxable:
            key = (day.year, len(book.trades))
            if key != self._tax_key:
                self._tax_key = key
                self._tax_value = float(book.taxes_by_year(day.year)["tax"].sum()) - self._sunk
            self.tax_to_date[t] = self._tax_value

    def result(self, book: Book, rebalancer: Rebalancer) -> BacktestResult:
        dates = self.dates
        weights = pd.DataFrame(self.weights, index=dates, columns=self.classes)
        nav = pd.DataFrame({"nav": self.nav, "flow": self.flow, "taxes": self.tax_to_date,
                            "nav_after_tax": self.nav - self.tax_to_date}, index=dates)
        trades = self._orders_frame()
        costs = pd.DataFrame(self.costs, columns=["date", *COST_KINDS, "traded", "nav"])
        events = pd.DataFrame(self.events, columns=list(EVENT_COLUMNS))
        taxes = (book.taxes_by_year(dates[-1].year) if book.taxable else
                 pd.DataFrame(columns=["realized_short", "realized_long", "net_short",
                                       "net_long", "tax", "carryover_short", "carryover_long",
                                       "disallowed_loss"]).rename_axis("year"))
        liquidation = book.unrealized_tax(self.prices[-1], dates[-1].date()) \
            if book.taxable else 0.0
        benchmark = _target_mix_returns(self.held, self.prices, self.exposure,
                                        [self.policy.targets.get(k, 0.0) for k in self.classes])
        return BacktestResult(
            name=self.name, policy=self.policy, nav=nav, weights=weights, trades=trades,
            costs=costs, events=events, taxes=taxes, target_returns=benchmark,
            liquidation_tax=liquidation, lots=book.lots.copy(), compiles=self.compiles,
            solves=self.solves, solver_seconds=self.solver_seconds)


def _target_mix_returns(held: np.ndarray, prices: np.ndarray, exposure: np.ndarray,
                        targets: list[float]) -> pd.Series:
    """Return of the target mix on each date after the first (fraction): each risky class
    earns the value-weighted return of the securities held in it at the close before (equal
    weights when none was held), cash nothing.

    ``held`` and ``prices`` are dates x securities (currency, currency per share),
    ``exposure`` classes x securities, ``targets`` per class with the cash class last.
    """
    growth = np.ones_like(prices)
    growth[1:] = prices[1:] / prices[:-1]
    loads = exposure[None, :, :] * held[:-1, None, :]  # dates-1 x classes x securities
    empty = loads.sum(axis=2, keepdims=True) <= 0
    loads = np.where(empty, exposure[None, :, :], loads)
    class_return = ((loads * (growth[1:, None, :] - 1)).sum(axis=2)
                    / np.maximum(loads.sum(axis=2), 1e-300))
    out = np.zeros(len(prices))
    out[1:] = class_return @ np.asarray(targets[: exposure.shape[0]], dtype=float)
    return pd.Series(out, name="target_mix")


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """A policy over history.

    Attributes
    ----------
    name : str
        Label for comparisons.
    policy : Policy
    nav : DataFrame
        Index date: ``nav`` (currency, before tax), ``flow`` (external flow that date),
        ``taxes`` (taxes of the backtest's realized gains to date, exact US netting, the current
        year accrued; currency), ``nav_after_tax`` (``nav - taxes``).
    weights : DataFrame
        Index date, a column per class (and the cash class): weights at the close (fractions).
    trades : DataFrame
        One row per order: ``date``, ``account``, ``security``, ``side``, ``shares`` (signed),
        ``price``, ``value`` (signed currency).
    costs : DataFrame
        One row per trade date: ``spread``, ``commission``, ``impact`` (currency), ``traded``
        (gross value, currency), ``nav`` (pre-trade, currency).
    events : DataFrame
        ``date``, ``kind`` (``look``, ``trigger``, ``trade``, ``wash_sale``, ``year_end``,
        ``income``, ``momentum`` (a look a deferred winner left quiet), ``velocity`` (the
        fraction a look closed), and the events of each trade's decision), ``account``,
        ``security``, ``value``, ``message``.
    taxes : DataFrame
        Index year: realized short- and long-term gains, the nets with carryovers, the tax, the
        carryovers out and the losses disallowed by wash sales (currency).
    target_returns : Series
        The target mix's return each date (fraction; 0 on the first).
    liquidation_tax : float
        Tax if the taxable lots were sold at the last date (currency).
    lots : DataFrame
        The lots held at the end (columns of :attr:`optirebal.Portfolio.lots`; a wash sale's
        replacement shares with their adjusted basis and holding period).
    compiles, solves : int
        Program shapes met and programs solved over the backtest.
    solver_seconds : float
        Time spent inside the solvers (seconds).
    """

    name: str
    policy: Policy
    nav: pd.DataFrame
    weights: pd.DataFrame
    trades: pd.DataFrame
    costs: pd.DataFrame
    events: pd.DataFrame
    taxes: pd.DataFrame
    target_returns: pd.Series
    liquidation_tax: float
    lots: pd.DataFrame
    compiles: int
    solves: int
    solver_seconds: float = 0.0

    @property
    def returns(self) -> pd.Series:
        """Time-weighted return each date (fraction; 0 on the first): flows excluded."""
        nav, flow = self.nav["nav"].to_numpy(), self.nav["flow"].to_numpy()
        out = np.zeros(len(nav))
        out[1:] = (nav[1:] - flow[1:]) / nav[:-1] - 1
        return pd.Series(out, index=self.nav.index, name="return")

    @property
    def periods_per_year(self) -> float:
        """Dates per year in the data (12 for month ends, about 252 for trading days)."""
        index = self.nav.index
        years = (index[-1] - index[0]).days / 365.25
        return (len(index) - 1) / years if years > 0 else float("nan")

    @property
    def drift(self) -> pd.DataFrame:
        """Tidy weights against the destination bands: ``date``, ``class``, ``weight``,
        ``target``, ``lower``, ``upper``, ``outside`` (weight beyond the band, 0 inside)."""
        frame = self.weights.rename_axis("date").reset_index().melt(
            id_vars="date", var_name="class", value_name="weight")
        edges = {k: self._edges(k) for k in self.weights.columns}
        frame["target"] = frame["class"].map(lambda k: self.policy.targets.get(k, 0.0))
        frame["lower"] = frame["class"].map(lambda k: edges[k][0])
        frame["upper"] = frame["class"].map(lambda k: edges[k][1])
        frame["outside"] = (np.maximum(frame["lower"] - frame["weight"], 0.0)
                            + np.maximum(frame["weight"] - frame["upper"], 0.0))
        return frame

    def _edges(self, name: str) -> tuple[float, float]:
        policy = self.policy
        if name not in policy.targets:
            return 0.0, 1.0
        band = policy.trigger_of(name) or policy.band_of(name)
        return band.edges(policy.targets[name])

    def summary(self) -> pd.Series:
        """Statistics of the backtest (one value each; fractions unless the name says bp).

        ``looks``, ``trades`` (dates with orders), ``wash_sales``; ``avg_weight_<class>``;
        ``annual_return`` (geometric, time-weighted), ``volatility``, ``max_drawdown``;
        ``tracking_error`` (annualized, against the target mix), ``rebalancing_alpha``
        (annualized mean excess return over the target mix), ``information_ratio``;
        ``turnover_per_year`` (half of buys plus sells over NAV, per year); ``costs_bp_per_year``
        and ``taxes_bp_per_year`` (of the average NAV); ``terminal_wealth`` (NAV),
        ``after_tax_terminal_wealth`` (NAV less the backtest's taxes and the liquidation tax).
        """
        r = self.returns.to_numpy()[1:]
        per_year = self.periods_per_year
        years = len(r) / per_year if per_year > 0 else float("nan")
        growth = float(np.prod(1 + r))
        excess = r - self.target_returns.to_numpy()[1:]
        wealth = np.cumprod(1 + r)
        drawdown = float((1 - wealth / np.maximum.accumulate(np.append(1.0, wealth))[1:]).max()) \
            if len(r) else 0.0
        kinds = self.events["kind"]
        avg_nav = float(self.nav["nav"].mean())
        cost_total = float(self.costs[list(COST_KINDS)].to_numpy().sum()) if len(self.costs) \
            else 0.0
        turnover = float((self.costs["traded"] / (2 * self.costs["nav"])).sum()) \
            if len(self.costs) else 0.0
        tax_total = float(self.nav["taxes"].iloc[-1])
        te = float(np.std(excess, ddof=1) * np.sqrt(per_year)) if len(r) > 1 else 0.0
        alpha = float(np.mean(excess) * per_year) if len(r) else 0.0
        out = {
            "looks": int((kinds == "look").sum()),
            "trades": int(self.trades["date"].nunique()) if len(self.trades) else 0,
            "wash_sales": int((kinds == "wash_sale").sum()),
            **{f"avg_weight_{k}": float(self.weights[k].mean()) for k in self.weights.columns},
            "annual_return": growth ** (1 / years) - 1 if years > 0 else float("nan"),
            "volatility": float(np.std(r, ddof=1) * np.sqrt(per_year)) if len(r) > 1 else 0.0,
            "max_drawdown": drawdown,
            "tracking_error": te,
            "rebalancing_alpha": alpha,
            "information_ratio": alpha / te if te > 0 else float("nan"),
            "turnover_per_year": turnover / years if years > 0 else float("nan"),
            "costs_bp_per_year": 1e4 * cost_total / avg_nav / years if years > 0 else 0.0,
            "taxes_bp_per_year": 1e4 * tax_total / avg_nav / years if years > 0 else 0.0,
            "terminal_wealth": float(self.nav["nav"].iloc[-1]),
            "after_tax_terminal_wealth": float(self.nav["nav_after_tax"].iloc[-1]
                                               - self.liquidation_tax),
        }
        return pd.Series(out, name=self.name)

    def plot(self) -> Figure:
        """Weights inside their bands over time, cumulative costs and taxes, and NAV."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
        for k in self.weights.columns:
            if k not in self.policy.targets:
                continue
            line, = axes[0].plot(self.weights.index, self.weights[k], label=k, lw=1)
            lo, hi = self._edges(k)
            axes[0].axhspan(lo, hi, color=line.get_color(), alpha=0.12)
        axes[0].set_ylabel("weight")
        axes[0].legend(loc="upper left", fontsize="small")
        costs = self.costs.set_index("date")[list(COST_KINDS)].sum(axis=1).cumsum() \
            if len(self.costs) else pd.Series(dtype=float)
        axes[1].step(costs.index, costs.to_numpy(), where="post", label="trading costs")
        axes[1].plot(self.nav.index, self.nav["taxes"], label="taxes")
        axes[1].set_ylabel("cumulative (currency)")
        axes[1].legend(loc="upper left", fontsize="small")
        axes[2].plot(self.nav.index, self.nav["nav"], label="before tax")
        axes[2].plot(self.nav.index, self.nav["nav_after_tax"], label="after tax", lw=1)
        axes[2].set_ylabel("NAV")
        axes[2].legend(loc="upper left", fontsize="small")
        fig.suptitle(self.name)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        stats = self.summary().to_frame().to_html(float_format=lambda x: f"{x:,.4g}")
        taxes = self.taxes.to_html(float_format=lambda x: f"{x:,.2f}") if len(self.taxes) \
            else "<p>No taxable account.</p>"
        return (f"<h4>Backtest: {html.escape(self.name)}</h4>"
                f"<p>{self.nav.index[0].date()} to {self.nav.index[-1].date()}, "
                f"{self.compiles} compile(s), {self.solves} solve(s)</p>{stats}"
                f"<h5>Taxes by year</h5>{taxes}")


def compare(results: dict[str, BacktestResult] | list[BacktestResult]) -> pd.DataFrame:
    """Summaries side by side: one column per backtest (its name, or the mapping's key)."""
    items = results.items() if isinstance(results, dict) else ((r.name, r) for r in results)
    return pd.DataFrame({name: result.summary() for name, result in items})
