"""Carrying a portfolio forward: the portfolio after a result's trades."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from optirebal.portfolio import Portfolio
from optirebal.result import Result


def apply_trades(portfolio: Portfolio, result: Result) -> Portfolio:
    """The portfolio after ``result``'s trades: lots reduced, bought lots added, cash settled,
    the trades appended to the history.

    Sold shares leave their lots (a lot sold in full disappears, a partial sale keeps the basis per
    share); each buy becomes a new lot ``"<account>/<security>/<as_of>"`` acquired on ``as_of`` at
    cost ``shares x price``; account cash becomes ``result.cash["after"]`` and flows become zero.
    Every sale (with its lot and the basis of the shares sold) and every buy is appended to
    ``history`` on ``as_of``, so a later solve's wash-sale rules see them. Over many dates use
    :func:`optirebal.backtest`, whose book also carries the year's realized gains and moves a
    washed loss into the replacement shares' basis and holding period.
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
    moved = _with_history(moved, portfolio, result, new)
    if result.synthetic is not None and len(result.synthetic):
        moved = moved.with_contracts(result.synthetic["contracts_after"])
    # cash may sit a round-off below zero when it was spent to the last cent
    return moved.with_accounts(cash=result.cash["after"].clip(lower=0.0).to_dict(),
                               flow=dict.fromkeys(portfolio.accounts.index, 0.0))


def _with_history(moved: Portfolio, before: Portfolio, result: Result,
                  bought: pd.DataFrame) -> Portfolio:
    """``moved`` with ``result``'s trades appended to ``before``'s history (dated ``as_of``)."""
    from optirebal.tax.exclusions import validate_history

    sold = result.lots_sold
    rows = pd.DataFrame({
        "date": pd.Timestamp(before.as_of), "account": sold["account"].to_numpy(),
        "security": sold["security"].to_numpy(), "shares": -sold["shares"].to_numpy(),
        "price": (sold["proceeds"] / sold["shares"]).to_numpy(),
        "cost_basis": sold["basis"].to_numpy(), "lot_id": sold.index.to_numpy()})
    buys = pd.DataFrame({
        "date": pd.Timestamp(before.as_of), "account": bought["account"].to_numpy(),
        "security": bought["security"].to_numpy(), "shares": bought["quantity"].to_numpy(),
        "price": (bought["cost_basis"] / bought["quantity"]).to_numpy(), "cost_basis": np.nan,
        "lot_id": bought.index.to_numpy()})
    parts = [f for f in (before.history, rows, buys) if f is not None and len(f)]
    if not parts:
        return moved
    history = pd.concat(parts, ignore_index=True)
    return dataclasses.replace(moved, history=validate_history(
        history, moved.securities, moved.accounts, moved.lots, moved.as_of))
