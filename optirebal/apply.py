"""Carrying a portfolio forward: the portfolio after a result's trades."""

from __future__ import annotations

import pandas as pd

from optirebal.portfolio import Portfolio
from optirebal.result import Result


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
