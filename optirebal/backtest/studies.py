"""The two rebalancing studies of ``notebooks/rebalancing_study.ipynb``, built from the shipped
data (:mod:`optirebal.datasets`) so that the notebook and ``benchmarks/bench_backtest.py`` run
the same thing.

(a) :func:`stock_bond_study`: the classic institutional design, a 60/40 stock/bond fund on
monthly total returns from July 1926 to December 2009, no costs or taxes, monthly, quarterly and
annual looks with thresholds of 0, 1, 5 and 10 percentage points (0: calendar only), and never.

(b) :func:`taxable_study`: a taxable household (taxable account and IRA) holding the shipped daily
US stocks in sector classes through 2021 and 2022, with tax lots bought at the data's own prices
in 2018 to 2020, spreads and market impact, exact US tax and wash sales.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from optirebal.datasets import stocks_bonds_monthly, us_stocks_daily
from optirebal.market import Market
from optirebal.policy import Band, Costs, Momentum, Policy, Schedule, Tax, Velocity
from optirebal.portfolio import Portfolio
from optirebal.presets import opportunistic

THRESHOLDS = (0.0, 0.01, 0.05, 0.10)
LOOKS = ("monthly", "quarterly", "annual")
SECTORS = {
    "technology": ("AAPL", "AMD", "MSFT"),
    "financials": ("BAC", "JPM"),
    "consumer": ("BBY", "HD", "KO", "PEP", "PG", "WMT"),
    "health": ("JNJ", "LLY", "MRK", "PFE", "UNH"),
    "energy": ("CVX", "RRC", "XOM"),
    "industrials": ("GE",),
}


def stock_bond_study(start: str = "1926-07-31", end: str = "2009-12-31",
                     nav: float = 1_000_000.0) -> tuple[Portfolio, dict[str, Policy], Market]:
    """Study (a): the fund, its thirteen policies (named ``"<looks> <threshold>"``, and
    ``"never"``) and the market, stocks and bonds as two securities of unit start price."""
    returns = stocks_bonds_monthly().loc[start:end, ["stocks", "bonds"]]
    market = Market.from_returns(returns)
    first = market.dates[0]
    covariance = returns.cov() * 12
    securities = pd.DataFrame({"security": ["stocks", "bonds"], "price": [1.0, 1.0],
                               "asset_class": ["stocks", "bonds"]})
    accounts = pd.DataFrame({"account": ["fund"], "type": ["tax_exempt"], "cash": [0.0]})
    lots = pd.DataFrame({"lot": ["stocks", "bonds"], "account": ["fund", "fund"],
                         "security": ["stocks", "bonds"], "quantity": [0.6 * nav, 0.4 * nav],
                         "cost_basis": [0.6 * nav, 0.4 * nav],
                         "acquired": [first.date(), first.date()]})
    portfolio = Portfolio.from_frames(securities, accounts, lots, as_of=first.date(),
                                      risk=covariance)
    base = Policy(targets={"stocks": 0.6, "bonds": 0.4}, mode="to_target",
                  costs=Costs(impact="none"), tax=Tax(model="none"))
    policies = {}
    for looks in LOOKS:
        for threshold in THRESHOLDS:
            policies[f"{looks} {threshold:.0%}"] = dataclasses.replace(
                base, schedule=Schedule(looks=looks),
                trigger=Band.absolute(threshold) if threshold else None)
    policies["never"] = dataclasses.replace(base, schedule=Schedule(looks="never"))
    return portfolio, policies, market


def signal_study(start: str = "1926-07-31", end: str = "2009-12-31", *, taxable: bool = False,
                 nav: float = 1_000_000.0) -> tuple[Portfolio, dict[str, Policy], Market]:
    """The four signal policies of ``notebooks/signals.ipynb`` on the stock/bond fund of study (a)
    with a 5 bp half spread (and, when ``taxable``, in a taxable account with exact US tax):
    a plain threshold (monthly looks, trigger 5 points, back to target), the same with the
    momentum filter (12-1, equity capped at 70%), with volatility velocity (target volatility
    10%, realized over 12 months) and the opportunistic preset (every month, trigger 20% of
    the target, back to 10%)."""
    portfolio, _, market = stock_bond_study(start, end, nav)
    securities = portfolio.securities.assign(half_spread_bps=5.0)
    accounts = portfolio.accounts.assign(type="taxable" if taxable else "tax_exempt")
    portfolio = Portfolio.from_frames(securities, accounts, portfolio.lots,
                                      as_of=portfolio.as_of, risk=portfolio.risk)
    targets = {"stocks": 0.6, "bonds": 0.4}
    tax = Tax(model="exact") if taxable else Tax(model="none")
    costs = Costs(impact="none")
    plain = Policy(targets=targets, mode="to_target", target_tolerance=0.001,
                   trigger=Band.absolute(0.05), schedule=Schedule(looks="monthly"), tax=tax,
                   costs=costs)
    policies = {
        "threshold": plain,
        "momentum": dataclasses.replace(
            plain, momentum=Momentum(signal="12-1", hard_cap={"stocks": 0.7})),
        "velocity": dataclasses.replace(plain, velocity=Velocity(vol_target=0.10, window=12)),
        "opportunistic": opportunistic(targets, looks="monthly", tax=tax, costs=costs),
    }
    return portfolio, policies, market


def taxable_study(start: str = "2021-01-04", end: str = "2022-12-28",
                  nav: float = 2_000_000.0) -> tuple[Portfolio, Policy, Market]:
    """Study (b): the household, a monthly calendar policy with exact tax (vary its trigger and
    ``tax.lot_relief`` with :func:`dataclasses.replace`) and the daily market with volatility.

    Each stock is held in three taxable lots bought on 2018-06-01, 2019-09-03 and 2020-03-23 at
    that day's price (so some lots sit on losses, some on gains) and, for a tenth of its
    target, in the IRA; sector targets are the equal-weight stock mix.
    """
    prices = us_stocks_daily()
    tickers = [t for names in SECTORS.values() for t in names]
    window = prices.loc[start:end, tickers]
    first = window.index[0]
    returns = np.log(prices[tickers]).diff()
    volatility = returns.rolling(21).std().loc[start:end].bfill()
    sector = {t: s for s, names in SECTORS.items() for t in names}
    securities = pd.DataFrame({
        "security": tickers, "price": window.iloc[0].to_numpy(),
        "asset_class": [sector[t] for t in tickers], "half_spread_bps": 2.0,
        "daily_volatility": volatility.iloc[0].to_numpy(), "daily_traded_value": 5e8})
    accounts = pd.DataFrame({"account": ["taxable", "ira"], "type": ["taxable", "tax_deferred"],
                             "cash": [0.01 * nav, 0.0]})
    per_stock = 0.99 * nav / len(tickers)
    rows = []
    for ticker in tickers:
        rows.append(("ira", ticker, 0.1 * per_stock / window.iloc[0][ticker],
                     0.1 * per_stock, "2020-06-01", f"ira/{ticker}"))
        for day in ("2018-06-01", "2019-09-03", "2020-03-23"):
            price = float(prices[ticker].asof(pd.Timestamp(day)))
            shares = 0.3 * per_stock / window.iloc[0][ticker]
            rows.append(("taxable", ticker, shares, shares * price, day, f"{ticker}/{day}"))
    lots = pd.DataFrame(rows, columns=["account", "security", "quantity", "cost_basis",
                                       "acquired", "lot"])
    targets = {s: len(names) / len(tickers) for s, names in SECTORS.items()}
    covariance = (prices[tickers].loc[:start].pct_change().iloc[-756:]
                  .T.groupby(sector).mean().T.cov() * 252)
    portfolio = Portfolio.from_frames(securities, accounts, lots, as_of=first.date(),
                                      risk=covariance)
    # soft bands: a sector of one stock sold at a loss cannot be bought back for 31 days
    policy = Policy(targets=targets, band=Band.relative(0.1), schedule=Schedule(looks="monthly"),
                    risk_aversion=1.0, soft_bands=True, tax=Tax(model="exact"))
    market = Market.from_prices(window, volatility=volatility[tickers])
    return portfolio, policy, market
