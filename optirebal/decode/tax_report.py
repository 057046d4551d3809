"""Tax of the final trades, their wash-sale flags, and the reasons tax adds to orders.

Whatever model chose the trades (``linear``, ``exact`` or ``none``), the result reports the exact
US-netting tax of the year with and without them (:func:`~optirebal.tax.netting.exact_tax`).
Wash sales of the decoded trades are found by the ledger itself
(:func:`~optirebal.tax.ledger.wash_sale_ledger`), run over the lots held (as purchases on their
acquisition dates), today's sells and buys, and the scheduled buys: every loss sale it washes is
flagged in ``lots_sold`` with its disallowed loss, so no wash sale is left unflagged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optirebal.events import Event
from optirebal.tax.ledger import WINDOW_DAYS, ledger_of, realized_rows
from optirebal.tax.netting import exact_tax

if TYPE_CHECKING:
    from optirebal.program.data import ProblemData

__all__ = ["TAX_ITEMS", "refine_reasons", "tax_report", "wash_flags"]

TAX_ITEMS = (
    "realized_short_ytd", "realized_long_ytd", "realized_short", "realized_long", "net_short",
    "net_long", "region", "tax_before", "tax_after", "tax_exact", "tax_linear", "taxed_short",
    "taxed_long", "ordinary_offset_used", "carryover_short", "carryover_long", "disallowed_loss",
    "permanently_lost",
)
"""Rows of ``Result.tax`` (currency, except ``region``, 1 to 5)."""


def wash_flags(data: ProblemData, sell_shares: np.ndarray, buy_shares: np.ndarray
               ) -> pd.DataFrame:
    """Wash-sale flags of today's lot sales, by the ledger's rules.

    Parameters
    ----------
    data : ProblemData
        Problem data (portfolio, lots, accounts, scheduled buys).
    sell_shares : ndarray, per lot
        Shares sold today.
    buy_shares : ndarray, per pair
        Shares bought today.

    Returns
    -------
    DataFrame
        Index ``lot`` (lots sold at a loss in a taxable account in a group with replacement
        shares): ``disallowed_loss`` (currency, >= 0), ``wash_sale`` and ``permanent`` (bool).
    """
    pf = data.portfolio
    lots, sec, kinds = pf.lots, pf.securities, pf.accounts["type"]
    price = sec["price"]
    sold = np.flatnonzero(sell_shares > 0)
    columns = {"disallowed_loss": pd.Series(dtype=float), "wash_sale": pd.Series(dtype=bool),
               "permanent": pd.Series(dtype=bool)}
    empty = pd.DataFrame(columns).rename_axis("lot")
    if len(sold) == 0:
        return empty
    quantity = lots["quantity"].to_numpy(dtype=float)
    basis = lots["cost_basis"].to_numpy(dtype=float)
    lot_security = data.pair_security[data.lot_pair]
    lot_price = price.to_numpy(dtype=float)[lot_security]
    loss = (basis[sold] * sell_shares[sold] / quantity[sold] > sell_shares[sold] * lot_price[sold])
    loss &= data.taxable_lot[sold]
    if not loss.any():
        return empty
    codes, names = data.group_codes
    groups = set(names[codes[lot_security[sold[loss]]]])
    # only a group with a purchase within 30 days of today can wash a loss: lots acquired in the
    # last 30 days, today's buys, scheduled buys (the ledger then decides, share for share)
    today = pd.Timestamp(pf.as_of)
    recent = (data.days_held >= 0) & (data.days_held <= WINDOW_DAYS)
    replacing = set(names[codes[lot_security[recent]]])
    replacing |= set(names[codes[data.pair_security[buy_shares > 0]]])
    if pf.scheduled is not None:
        replacing |= set(pf.scheduled["security"].map(sec["group"]))
    groups &= replacing
    if not groups:
        return empty
    chosen = np.isin(names, list(groups))  # per group code
    in_group = chosen[codes[lot_security]]
    # the ledger needs the lots sold today and the candidates to replace them (bought in the
    # last 30 days); a lot neither sold nor recent can wash nothing today
    sold_today = np.zeros(len(lots), dtype=bool)
    sold_today[sold] = True
    # one frame for the ledger, column by column: the lots (as purchases on their dates, oldest
    # first), today's sales and buys, and the scheduled buys of these groups
    held = np.flatnonzero(in_group & (sold_today | recent))
    acquired = pd.to_datetime(lots["acquired"].iloc[held]).to_numpy()
    order = np.argsort(acquired, kind="stable")
    held, acquired = held[order], acquired[order]
    mine = sold[in_group[sold]]
    bought = np.flatnonzero((buy_shares > 0) & chosen[codes[data.pair_security]])
    quantity_held = quantity[held]

    def objects(values: object) -> np.ndarray:  # ids and names: object arrays concatenate
        return np.asarray(values, dtype=object)

    parts = {
        "date": [acquired, np.full(len(mine) + len(bought), today.to_datetime64())],
        "account": [objects(lots["account"].to_numpy()[held]),
                    objects(lots["account"].to_numpy()[mine]),
                    objects(data.accounts)[data.pair_account[bought]]],
        "security": [objects(lots["security"].to_numpy()[held]),
                     objects(lots["security"].to_numpy()[mine]),
                     objects(data.securities)[data.pair_security[bought]]],
        "shares": [quantity_held, -sell_shares[mine], buy_shares[bought]],
        "price": [basis[held] / quantity_held, lot_price[mine],
                  price.to_numpy(dtype=float)[data.pair_security[bought]]],
        "lot_id": [objects(lots.index.to_numpy()[held]), objects(lots.index.to_numpy()[mine]),
                   np.full(len(bought), None, dtype=object)],
    }
    if pf.scheduled is not None:
        later = pf.scheduled[pf.scheduled["security"].map(sec["group"]).isin(groups)]
        for column, values in (("date", later["date"].to_numpy()),
                               ("account", objects(later["account"].to_numpy())),
                               ("security", objects(later["security"].to_numpy())),
                               ("shares", later["shares"].to_numpy(dtype=float)),
                               ("price", price.reindex(later["security"]).to_numpy()),
                               ("lot_id", np.full(len(later), None, dtype=object))):
            parts[column].append(values)
    history = pd.DataFrame({column: np.concatenate(values) for column, values in parts.items()})
    history["group"] = history["security"].map(sec["group"])
    history["account_type"] = history["account"].map(kinds)
    # the realized pieces of today's sales, per lot: only the washed ones matter (read from
    # the ledger's rows, without building its four result frames)
    disallowed: dict[str, float] = {}
    permanent: dict[str, bool] = {}
    for piece in realized_rows(ledger_of(history)):
        if piece["date"] == today.date() and piece["wash_sale"]:
            lot = piece["lot"]
            disallowed[lot] = disallowed.get(lot, 0.0) + piece["disallowed_loss"]
            permanent[lot] = permanent.get(lot, False) or bool(piece["permanent"])
    if not disallowed:
        return empty
    washed = sorted(disallowed)  # as a groupby by lot orders them
    return pd.DataFrame({"disallowed_loss": [disallowed[k] for k in washed], "wash_sale": True,
                         "permanent": [permanent[k] for k in washed]},
                        index=pd.Index(washed, name="lot"))


def tax_report(data: ProblemData, lots_sold: pd.DataFrame, sell_shares: np.ndarray,
               buy_shares: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, float, list[Event]]:
    """Flag wash sales in ``lots_sold`` and compute the tax of the final trades.

    Parameters
    ----------
    data : ProblemData
        Problem data of the accepted solve.
    lots_sold : DataFrame
        One row per lot sold (``account``, ``security``, ``shares``, ``proceeds``, ``basis``,
        ``gain``, ``term``), currency.
    sell_shares, buy_shares : ndarray
        Decoded shares sold per lot and bought per pair.

    Returns
    -------
    lots_sold : DataFrame
        With ``wash_sale`` (bool), ``disallowed_loss`` and ``recognized_gain`` (currency; the
        gain that enters netting) and ``wash_permanent`` (bool: replaced in an IRA or Roth).
    tax : DataFrame
        Index ``item`` (:data:`TAX_ITEMS`), column ``value`` (currency; ``region`` 1 to 5).
    cost : float
        The model's tax of the trades (currency): per-lot linear for ``linear``, exact
        (after minus before) for ``exact``, 0 for ``none``.
    events : list of Event
        The tax notes of the problem data (kind ``tax``) and one ``wash_sale`` per sale flagged.
    """
    policy_tax = data.policy.tax
    flags = wash_flags(data, sell_shares, buy_shares)
    lots_sold = lots_sold.copy()
    lots_sold["wash_sale"] = flags["wash_sale"].reindex(lots_sold.index, fill_value=False) \
        .astype(bool)
    lots_sold["disallowed_loss"] = flags["disallowed_loss"].reindex(lots_sold.index,
                                                                    fill_value=0.0).astype(float)
    lots_sold["recognized_gain"] = lots_sold["gain"] + lots_sold["disallowed_loss"]
    lots_sold["wash_permanent"] = flags["permanent"].reindex(lots_sold.index, fill_value=False) \
        .astype(bool)
    kinds = data.portfolio.accounts["type"]
    taxable = (lots_sold["account"].map(kinds) == "taxable").to_numpy() if len(lots_sold) \
        else np.zeros(0, dtype=bool)
    recognized = lots_sold["recognized_gain"].to_numpy(dtype=float) * taxable
    long = (lots_sold["term"] == "long").to_numpy()
    short_t, long_t = float(recognized[~long].sum()), float(recognized[long].sum())
    rates = policy_tax.rates()
    s0, l0 = policy_tax.realized_short, policy_tax.realized_long
    before = exact_tax(s0, l0, rates)
    after = exact_tax(s0 + short_t, l0 + long_t, rates)
    linear = float((np.where(long, rates.long, rates.short) * recognized).sum())
    exact = float(after.tax - before.tax)
    values = {
        "realized_short_ytd": s0, "realized_long_ytd": l0, "realized_short": short_t,
        "realized_long": long_t, "net_short": s0 + short_t, "net_long": l0 + long_t,
        "region": float(after.region), "tax_before": float(before.tax),
        "tax_after": float(after.tax), "tax_exact": exact, "tax_linear": linear,
        "taxed_short": float(after.taxed_short), "taxed_long": float(after.taxed_long),
        "ordinary_offset_used": float(after.ordinary_offset_used),
        "carryover_short": float(after.carryover_short),
        "carryover_long": float(after.carryover_long),
        "disallowed_loss": float(lots_sold["disallowed_loss"].sum()),
        "permanently_lost": float(lots_sold.loc[lots_sold["wash_permanent"],
                                                "disallowed_loss"].sum()),
    }
    frame = pd.DataFrame({"value": [values[k] for k in TAX_ITEMS]},
                         index=pd.Index(TAX_ITEMS, name="item"))
    cost = {"linear": linear, "exact": exact}.get(policy_tax.model, 0.0)
    events = [Event("tax", note) for note in (data.tax.notes if data.tax is not None else ())]
    for lot, row in lots_sold[lots_sold["wash_sale"]].iterrows():
        lost = " (lost for good: replaced in an IRA or Roth)" if row["wash_permanent"] else ""
        events.append(Event("wash_sale", f"wash sale flagged: lot {lot!r} ({row['security']}), "
                                         f"{row['disallowed_loss']:,.2f} of loss disallowed{lost}",
                            account=row["account"], security=row["security"],
                            value=float(row["disallowed_loss"])))
    return lots_sold, frame, cost, events


def refine_reasons(data: ProblemData, traded: np.ndarray, net_shares: np.ndarray,
                   sell_shares: np.ndarray, reasons: list[str]) -> list[str]:
    """Tax reasons on orders: ``harvest``, ``substitute`` and ``location``.

    - a sale in a taxable account that realizes losses and has no band, flow or cash reason:
      ``harvest``;
    - a buy (without a flow reason) of a security from another group of a class one of whose
      groups is blocked by a recent loss sale or sold at a loss today, when the class lists no
      substitutes or lists this one: ``substitute``;
    - a band or risk trade in a tax-deferred or tax-exempt account of a household that also has
      a taxable account: ``location`` (the rebalancing is done where trading is tax-free).
    """
    pf = data.portfolio
    kinds = pf.accounts["type"].to_numpy()
    group = pf.securities["group"].to_numpy()
    exposure = pf.exposures.to_numpy(dtype=float)
    classes = list(pf.exposures.index)
    has_taxable = (kinds == "taxable").any()
    lot_security = data.pair_security[data.lot_pair]
    loss_lot = data.taxable_lot & (data.gain_fraction < 0)
    loss_groups = set(group[lot_security[(sell_shares > 0) & loss_lot]])
    blocked = set(data.tax.exclusions.blocked) if data.tax is not None else set()
    subs = data.policy.tax.substitutes
    stopped_groups = blocked | loss_groups
    # per class, the groups loading on it that a wash-sale rule or today's harvest stops
    stopped_in = [sorted(set(group[exposure[k] > 0]) & stopped_groups) if stopped_groups
                  else [] for k in range(len(classes))]
    loads = exposure > 0
    out = []
    for p, reason in zip(traded.tolist(), reasons, strict=True):
        a, i = int(data.pair_account[p]), int(data.pair_security[p])
        buy = net_shares[p] > 0
        if reason.startswith("tax: loss harvest"):
            reason = "harvest: tax-loss sale"
        if buy and stopped_groups and not reason.startswith("flow:"):
            for k in np.flatnonzero(loads[:, i]):
                stopped = [g for g in stopped_in[k] if g != group[i]]
                listed = subs.get(classes[k])
                if stopped and (not listed or data.securities[i] in listed):
                    why = "blocked (wash sale)" if stopped[0] in blocked else "harvested"
                    reason = (f"substitute: carries {classes[k]} exposure while group "
                              f"{stopped[0]!r} is {why}")
                    break
        if (has_taxable and kinds[a] != "taxable"
                and reason.split(":")[0] in ("band", "risk", "rebalance")):
            reason = (f"location: {reason} (traded in tax-free account "
                      f"{data.accounts[a]!r})")
        out.append(reason)
    return out
