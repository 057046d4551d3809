"""Problem data: a portfolio and a policy turned into numpy arrays in weight space.

Every amount here is a fraction of the pre-trade net asset value ``V`` (DESIGN section 3), so the
same portfolio gives the same numbers at any NAV. The arrays split in two:

- the *shape* (accounts, securities, classes, the exposure matrix, factors, the impact model, the
  overlay's and the tax model's structure): what a :class:`~optirebal.rebalance.Rebalancer`
  re-uses between calls (:attr:`ProblemData.shape_key`); it does not change when a lot is bought
  or sold;
- the *values* (lots, holdings, prices, cash, targets, bands, cost and tax coefficients, caps),
  from which the conic program is assembled afresh on every call, in time linear in the size.

Index sets: accounts ``a``, securities ``i``, pairs ``p = a * n_i + i`` (every account-security
combination, so a buy needs no held position), lots ``l``, classes ``k``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from optirebal.errors import InputError
from optirebal.frame_checks import positions
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.program.caps import close
from optirebal.program.overlaydata import OverlayData, build_overlay_data, synthetic_caps
from optirebal.program.taxdata import TaxData
from optirebal.tax.holding import days_to_long_term_array, is_long_term_array, to_day_array

RESTRICTED_MODES = ("buy_only", "sell_only", "cash_only", "harvest_only")


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Everything the program needs, in weights. Built by :func:`build_problem_data`."""

    portfolio: Portfolio
    policy: Policy
    nav: float
    accounts: list[str]
    securities: list[str]
    classes: list[str]
    lot_ids: list[str]
    # maps (structure)
    pair_account: np.ndarray
    pair_security: np.ndarray
    lot_pair: np.ndarray
    exposure: np.ndarray  # classes x securities, cash row -1 when cash is a class
    exposure_sparse: sp.csr_matrix  # the same, sparse (a security loads on few classes)
    impact_model: str
    # values (parameters)
    scale: float  # 1 + total flow, post-trade NAV before costs over V
    lot_weight: np.ndarray
    gain_fraction: np.ndarray
    long_term: np.ndarray
    days_to_long_term: np.ndarray
    days_held: np.ndarray  # per lot, days since acquisition (0 for a lot bought today)
    taxable_lot: np.ndarray
    cash: np.ndarray
    flow: np.ndarray
    reserve: np.ndarray
    exposure_before: np.ndarray  # classes, pre-trade incl. flows, in units of V
    target: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    factor: np.ndarray  # classes x factors
    specific_variance: np.ndarray
    linear_cost: np.ndarray  # per security: half-spread + commissions per unit value
    impact_cost: np.ndarray  # per security: coefficient of |x|^(3/2) or x^2
    tax_rate: np.ndarray  # per lot: tax per unit of sold value (rate x gain fraction)
    buy_cap: np.ndarray  # per pair: 0 closed, inf open
    sell_cap: np.ndarray  # per lot
    buy_counterflow: np.ndarray  # per pair
    sell_counterflow: np.ndarray  # per lot
    risk_weight: float  # gamma * H / 2
    turnover_cap: float
    soft_bands: bool
    band_penalty: float
    cap_reasons: dict[tuple[str, int], str] = field(default_factory=dict)
    overlay: OverlayData | None = None  # derivative overlay (optirebal.overlay); None without
    tax: TaxData | None = None  # tax model, wash-sale exclusions (optirebal.program.prepare)
    credit_cap: float | None = None  # most linear cost soft rows credit (terms/bands.py)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_account)

    @cached_property
    def group_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per security, the index of its substantially-identical group, and the group names."""
        codes, names = pd.factorize(self.portfolio.security_columns["group"], sort=True)
        return codes, np.asarray(names)

    @cached_property
    def shape_key(self) -> tuple[object, ...]:
        """What a re-used :class:`~optirebal.program.workspace.Workspace` depends on: sizes and
        maps that a lot bought or sold leaves alone (lots are values, not shape)."""
        digest = hashlib.blake2b(digest_size=16)
        for part in (self.exposure_sparse.indptr, self.exposure_sparse.indices,
                     self.exposure_sparse.data):
            digest.update(np.ascontiguousarray(part).tobytes())
        return (tuple(self.accounts), tuple(self.securities), tuple(self.classes),
                self.factor.shape[1], self.impact_model, digest.hexdigest(),
                None if self.overlay is None else self.overlay.structure,
                None if self.tax is None else self.tax.structure)

    @cached_property
    def lots_to_pairs(self) -> sp.csr_matrix:
        """Pairs x lots: 1 where the lot belongs to the pair."""
        n_l = len(self.lot_ids)
        return sp.csr_matrix((np.ones(n_l), (self.lot_pair, np.arange(n_l))),
                             shape=(self.n_pairs, n_l))

    @cached_property
    def pairs_to_accounts(self) -> sp.csr_matrix:
        """Accounts x pairs."""
        n_p = self.n_pairs
        return sp.csr_matrix((np.ones(n_p), (self.pair_account, np.arange(n_p))),
                             shape=(len(self.accounts), n_p))

    @cached_property
    def lots_to_accounts(self) -> sp.csr_matrix:
        """Accounts x lots."""
        return (self.pairs_to_accounts @ self.lots_to_pairs).tocsr()

    @cached_property
    def exposure_by_pairs(self) -> sp.csr_matrix:
        """Classes x pairs: the exposure a unit bought in a pair adds (units of V)."""
        return self.exposure_sparse[:, self.pair_security].tocsr()

    @cached_property
    def exposure_by_lots(self) -> sp.csr_matrix:
        """Classes x lots: the exposure a unit sold from a lot removes (units of V)."""
        return self.exposure_sparse[:, self.pair_security[self.lot_pair]].tocsr()

    def with_closed(self, pairs: np.ndarray, lots: np.ndarray, buy_reason: str | Sequence[str],
                    sell_reason: str | Sequence[str]) -> ProblemData:
        """A copy with the buys of ``pairs`` and the sells of ``lots`` capped at zero (see
        :func:`close`); the caps and reasons of ``self`` are left as they are."""
        buy_cap, sell_cap = self.buy_cap.copy(), self.sell_cap.copy()
        reasons = dict(self.cap_reasons)
        close(buy_cap, pairs, reasons, "buy", buy_reason)
        close(sell_cap, lots, reasons, "sell", sell_reason)
        return self.replaced(buy_cap=buy_cap, sell_cap=sell_cap, cap_reasons=reasons)

    def __getstate__(self) -> dict[str, object]:
        """The fields, without the cached maps and key (rebuilt on demand): a batch sends
        every household's decision back to its caller, and they were a fifth of its bytes."""
        return {k: v for k, v in self.__dict__.items()
                if k not in CACHED_FROM and k != "shape_key"}

    def replaced(self, **changes: object) -> ProblemData:
        """``dataclasses.replace(self, **changes)`` keeping the cached maps (:data:`CACHED_FROM`)
        none of whose fields change: a re-solve with trades closed, or a netting region, need
        not rebuild them."""
        out = replace(self, **changes)  # type: ignore[arg-type]
        for name, made_of in CACHED_FROM.items():
            if name in self.__dict__ and made_of.isdisjoint(changes):
                out.__dict__[name] = self.__dict__[name]
        return out

    def security_trades(self, buys: np.ndarray, sells: np.ndarray) -> np.ndarray:
        """Net trade per security (weights) from pair buys and lot sells."""
        net = np.bincount(self.pair_security, weights=buys, minlength=len(self.securities))
        lot_security = self.pair_security[self.lot_pair]
        return net - np.bincount(lot_security, weights=sells, minlength=len(self.securities))

    def pair_sells(self, sells: np.ndarray) -> np.ndarray:
        """Sells per pair (weights) from lot sells."""
        return np.bincount(self.lot_pair, weights=sells, minlength=self.n_pairs)

    def deviation(self, buys: np.ndarray, sells: np.ndarray,
                  derivatives: np.ndarray | None = None) -> np.ndarray:
        """Post-trade exposure minus target times ``scale`` (units of V), before costs.

        ``derivatives`` is the change of derivative notional (weights), when there is an overlay.
        """
        out = (self.exposure_before - self.target * self.scale
               + self.exposure @ self.security_trades(buys, sells))
        if self.overlay is not None and derivatives is not None:
            out = out + self.overlay.exposure @ derivatives
        return out


CACHED_FROM: dict[str, frozenset[str]] = {
    "group_codes": frozenset({"portfolio"}),
    "lots_to_pairs": frozenset({"lot_ids", "lot_pair", "pair_account"}),
    "pairs_to_accounts": frozenset({"pair_account", "accounts"}),
    "lots_to_accounts": frozenset({"lot_ids", "lot_pair", "pair_account", "accounts"}),
    "exposure_by_pairs": frozenset({"exposure_sparse", "pair_security"}),
    "exposure_by_lots": frozenset({"exposure_sparse", "pair_security", "lot_pair"}),
}
"""The cached maps of :class:`ProblemData` and the fields each is made of
(:meth:`ProblemData.replaced` keeps a map when none of them changes)."""


def base_problem_data(portfolio: Portfolio, policy: Policy) -> ProblemData:
    """Turn a portfolio and a policy into weight-space arrays, checking they fit together.

    Raises
    ------
    InputError
        A target or band for a class no security loads on, a risky class without a target, a
        restriction naming an unknown security, account or lot.
    """
    sec, acc, lots = portfolio.securities, portfolio.accounts, portfolio.lots
    nav = portfolio.nav_value
    accounts, securities = acc.index.tolist(), sec.index.tolist()
    lot_ids = lots.index.tolist()
    n_a, n_i = len(accounts), len(securities)
    cash_class = policy.cash_class
    risky = portfolio.classes
    if cash_class in risky:
        # account cash is the cash class; a fund loading on it would need a second cash row
        loads = portfolio.exposures.loc[cash_class]
        fund = str(loads[loads != 0].index[0])
        raise InputError(f"security {fund!r} loads on class {cash_class!r}, which is the "
                         "policy's cash_class (account cash); give the fund its own class "
                         "(e.g. 'money_market') with a target, or set cash_class to another name",
                         field="asset_class", row=fund)
    for name in risky:
        if name not in policy.targets:
            raise InputError(f"class {name!r} has securities but no target", field="targets",
                             row=name)
    for name in policy.targets:
        if name not in risky and name != cash_class:
            raise InputError(f"no security loads on class {name!r}", field="targets", row=name)
    classes = risky + ([cash_class] if cash_class in policy.targets else [])

    pair_account = np.repeat(np.arange(n_a), n_i)
    pair_security = np.tile(np.arange(n_i), n_a)
    lot_columns, account_columns = portfolio.lot_columns, portfolio.account_columns
    security_columns = portfolio.security_columns
    lot_account = positions(acc.index, lot_columns["account"])
    lot_security = positions(sec.index, lot_columns["security"])
    lot_pair = lot_account * n_i + lot_security

    price = security_columns.floats("price")
    lot_value = portfolio.lot_values.to_numpy()
    lot_weight = lot_value / nav
    basis = lot_columns.floats("cost_basis")
    gain_fraction = np.where(lot_value > 0, (lot_value - basis) / lot_value, 0.0)
    acquired = to_day_array(lots["acquired"], "acquired")  # converted once, used thrice
    long_term = is_long_term_array(acquired, portfolio.as_of)
    to_long = days_to_long_term_array(acquired, portfolio.as_of)
    days_held = (to_day_array(portfolio.as_of, "as_of") - acquired).astype(np.int64)
    taxable_lot = (account_columns["type"][lot_account] == "taxable")

    cash = account_columns.floats("cash") / nav
    flow = account_columns.floats("flow") / nav
    reserve = account_columns.floats("cash_reserve") / nav
    scale = 1.0 + float(flow.sum())
    if scale <= 0:
        raise InputError(f"withdrawals ({-flow.sum() * nav:,.2f}) exceed the NAV ({nav:,.2f})",
                         field="flow")

    # ``risky`` is the exposures' own index (Portfolio.classes): a copy, not a reindex
    exposure = np.array(portfolio.exposures.to_numpy(dtype=float), dtype=float)
    held = np.bincount(lot_security, weights=lot_weight, minlength=n_i)
    exposure_before = exposure @ held
    if cash_class in policy.targets:
        # a purchase moves value from cash to the security's classes, a sale back to cash
        exposure = np.vstack([exposure, -np.ones((1, n_i))])
        exposure_before = np.append(exposure_before, cash.sum() + flow.sum())

    target = np.array([policy.targets[k] for k in classes])
    lower, upper = _band_edges(policy, classes, target)
    factor, specific = risk_arrays(portfolio, classes)

    linear_cost = ((security_columns.floats("half_spread_bps")
                    + security_columns.floats("commission_bps")) / 1e4
                   + security_columns.floats("commission_per_share") / price)
    impact_cost = _impact_coefficients(portfolio, policy, nav)

    tax_rate = np.zeros(len(lots))
    if policy.tax.model == "linear":
        rate = np.where(long_term, policy.tax.long_term_rate, policy.tax.short_term_rate)
        tax_rate = np.where(taxable_lot, rate * gain_fraction, 0.0)

    buy_cap = np.full(n_a * n_i, np.inf)  # cash bounds every buy; restrictions close some
    sell_cap = lot_weight.copy()
    cap_reasons: dict[tuple[str, int], str] = {}
    _apply_restrictions(policy, accounts, securities, lot_ids, lot_pair, n_i, buy_cap,
                        sell_cap, cap_reasons)

    available = cash + flow - reserve
    buy_counterflow = np.zeros(n_a * n_i)
    sell_counterflow = np.zeros(len(lots))
    soft = policy.soft_bands or policy.mode in RESTRICTED_MODES
    for a in range(n_a):
        pairs_a = pair_account == a
        lots_a = lot_account == a
        if flow[a] > 0:
            sell_counterflow[lots_a] = policy.counterflow_penalty
        if available[a] < 0:
            buy_counterflow[pairs_a] = policy.counterflow_penalty
        mode = policy.mode
        if mode == "cash_only":
            mode = "buy_only" if available[a] > 0 else "sell_only" if available[a] < 0 else "none"
        if mode in ("sell_only", "none"):
            close(buy_cap, np.flatnonzero(pairs_a), cap_reasons, "buy",
                 f"mode {policy.mode}")
        if mode in ("buy_only", "none"):
            close(sell_cap, np.flatnonzero(lots_a), cap_reasons, "sell",
                 f"mode {policy.mode}")

    overlay = build_overlay_data(portfolio, policy, classes, nav, accounts)
    if overlay is not None:
        exposure_before = exposure_before + overlay.exposure_before()
    synthetic_caps(policy, buy_cap, sell_cap, cap_reasons)
    if policy.fraction < 1:
        lower, upper = partial_edges(exposure_before / scale, lower, upper, policy.fraction)
    if policy.momentum is not None and portfolio.signals is not None:
        lower, upper = defer_trims(policy, classes, exposure_before / scale, lower, upper,
                                   portfolio.signals, exposure[: len(risky)], lot_security,
                                   sell_cap, cap_reasons)

    risk_weight = policy.risk_aversion * policy.horizon_years / 2
    if policy.mode == "to_band":
        risk_weight = 0.0
    turnover_cap = np.inf if policy.turnover_cap is None else policy.turnover_cap
    return ProblemData(
        portfolio=portfolio, policy=policy, nav=nav, accounts=accounts, securities=securities,
        classes=classes, lot_ids=lot_ids, pair_account=pair_account,
        pair_security=pair_security, lot_pair=lot_pair, exposure=exposure,
        exposure_sparse=sp.csr_matrix(exposure),
        impact_model=policy.costs.impact, scale=scale, lot_weight=lot_weight,
        gain_fraction=gain_fraction, long_term=long_term, days_to_long_term=to_long,
        days_held=days_held,
        taxable_lot=taxable_lot, cash=cash, flow=flow, reserve=reserve,
        exposure_before=exposure_before, target=target, lower=lower, upper=upper,
        factor=factor, specific_variance=specific, linear_cost=linear_cost,
        impact_cost=impact_cost, tax_rate=tax_rate, buy_cap=buy_cap, sell_cap=sell_cap,
        buy_counterflow=buy_counterflow, sell_counterflow=sell_counterflow,
        risk_weight=risk_weight, turnover_cap=turnover_cap, soft_bands=soft,
        band_penalty=policy.band_penalty, cap_reasons=cap_reasons, overlay=overlay,
    )


def _band_edges(policy: Policy, classes: list[str],
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if policy.mode == "to_target":
        tol = policy.target_tolerance
        return target - tol, target + tol
    lower, upper = policy.band.edges_of(target)  # the policy's band, for every class at once
    for k, name in enumerate(classes):
        if name in policy.class_bands:
            lower[k], upper[k] = policy.class_bands[name].edges(target[k])
        elif name == policy.cash_class and name not in policy.class_triggers:
            # cash floats as the residual unless the policy bands it, or triggers on it (its
            # destination then follows its trigger, like any class's)
            lower[k], upper[k] = 0.0, 1.0
    return lower, upper


def partial_edges(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The destination band of a trade that closes ``fraction`` of the gap (weights).

    A class outside its band ``[lo, hi]`` has it moved toward its weight ``w`` by
    ``1 - fraction`` of the gap, width kept: above, by ``(1 - fraction) (w - hi)``, so the
    nearest edge becomes ``w - fraction (w - hi)``; below, likewise. With ``to_target`` the band
    is the target, which becomes ``w + fraction (t - w)``. Classes inside keep their band.
    """
    shift = (1 - fraction) * (np.maximum(weights - upper, 0.0) - np.maximum(lower - weights, 0.0))
    return lower + shift, upper + shift


def defer_trims(policy: Policy, classes: list[str], weights: np.ndarray, lower: np.ndarray,
                upper: np.ndarray, signals: pd.DataFrame, exposure: np.ndarray,
                lot_security: np.ndarray, sell_cap: np.ndarray,
                cap_reasons: dict[tuple[str, int], str]) -> tuple[np.ndarray, np.ndarray]:
    """The momentum filter (:class:`optirebal.policy.Momentum`): band edges with winners'
    trims deferred, and their securities' sales closed in ``sell_cap`` (in place).

    A class is a deferred winner when its momentum is positive, its weight is above its upper
    trigger edge (the destination edge without a trigger) and not above its hard cap. Its upper
    edge rises to its weight; while a winner runs, the weight it holds is missing elsewhere, so
    no other class is forced above its current weight (its lower edge is at most its weight;
    cash and flows still buy underweights as the objective asks). ``exposure`` is risky
    classes x securities; a security belongs to the class it loads most.
    """
    lower, upper = lower.copy(), upper.copy()
    deferred = deferred_winners(policy, classes, weights, signals)
    home = np.argmax(np.abs(exposure), axis=0) if exposure.size else np.zeros(0, dtype=int)
    for k in np.flatnonzero(deferred):
        upper[k] = max(upper[k], weights[k])
        lots = np.flatnonzero(home[lot_security] == k)
        close(sell_cap, lots, cap_reasons, "sell", f"momentum: trim deferred ({classes[k]})")
    if deferred.any():
        lower = np.minimum(lower, weights)
    return lower, upper


def deferred_winners(policy: Policy, classes: list[str], weights: np.ndarray,
                     signals: pd.DataFrame | None) -> np.ndarray:
    """Per class, whether the momentum filter defers its trim: positive momentum, a weight
    above its upper trigger edge (the destination edge without a trigger) and not above its
    hard cap (:class:`optirebal.policy.Momentum`)."""
    out = np.zeros(len(classes), dtype=bool)
    if policy.momentum is None or signals is None:
        return out
    momentum = signals["momentum"]
    for k, name in enumerate(classes):
        if name not in policy.targets or name == policy.cash_class:
            continue
        band = policy.trigger_of(name) or policy.band_of(name)
        edge = band.edges(policy.targets[name])[1]
        cap = policy.momentum.hard_cap.get(name, 1.0)
        out[k] = momentum.get(name, 0.0) > 0 and edge < weights[k] <= cap
    return out


def risk_arrays(portfolio: Portfolio, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Factor and specific variance over ``classes``; the cash class has no risk."""
    return portfolio.risk.arrays(classes)


def _impact_coefficients(portfolio: Portfolio, policy: Policy, nav: float) -> np.ndarray:
    r"""Impact coefficient per security in weight space.

    .. math:: \text{power: } k \sigma \sqrt{V / ADV}, \qquad
              \text{quadratic: } k \sigma (V / ADV) / \sqrt{\rho}

    so that the cost (fraction of NAV) of a trade ``x`` (weight) is ``coef * |x|^{3/2}`` or
    ``coef * x^2``; the two agree at ``|x| = rho * ADV / V``.
    """
    sec = portfolio.securities
    if policy.costs.impact == "none":
        return np.zeros(len(sec))
    columns = portfolio.security_columns
    k = (columns.floats("impact_coefficient")
         if "impact_coefficient" in sec.columns
         else np.full(len(sec), policy.costs.impact_coefficient))
    sigma = columns.floats("daily_volatility")
    adv = columns.floats("daily_traded_value")
    ratio = nav / adv  # zero where the traded value is infinite: no impact
    if policy.costs.impact == "power":
        return k * sigma * np.sqrt(ratio)
    return k * sigma * ratio / np.sqrt(policy.costs.reference_participation)


def _apply_restrictions(policy: Policy, accounts: list[str], securities: list[str],
                        lot_ids: list[str], lot_pair: np.ndarray, n_i: int, buy_cap: np.ndarray,
                        sell_cap: np.ndarray, reasons: dict[tuple[str, int], str]) -> None:
    """Set caps to zero for no-buy, no-sell, no-trade entries and locked lots."""
    r = policy.restrictions

    def pairs_of(entry: str, key: str) -> np.ndarray:
        account, _, security = entry.rpartition("/")
        if security not in securities:
            raise InputError(f"unknown security {security!r}", field=f"restrictions.{key}",
                             row=entry)
        i = securities.index(security)
        if not account:
            return np.arange(len(accounts)) * n_i + i
        if account not in accounts:
            raise InputError(f"unknown account {account!r}", field=f"restrictions.{key}",
                             row=entry)
        return np.array([accounts.index(account) * n_i + i])

    for key, buy, sell in (("no_buy", True, False), ("no_sell", False, True),
                           ("no_trade", True, True)):
        for entry in getattr(r, key):
            pairs = pairs_of(entry, key)
            if buy:
                close(buy_cap, pairs, reasons, "buy", f"{key} {entry!r}")
            if sell:
                close(sell_cap, np.flatnonzero(np.isin(lot_pair, pairs)), reasons, "sell",
                     f"{key} {entry!r}")
    positions = {lot: n for n, lot in enumerate(lot_ids)} if r.locked_lots else {}
    for lot in r.locked_lots:
        if lot not in positions:
            raise InputError(f"unknown lot {lot!r}", field="restrictions.locked_lots", row=lot)
        close(sell_cap, np.array([positions[lot]]), reasons, "sell", f"locked lot {lot!r}")
