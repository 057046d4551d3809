"""A catalogue of bad input: every class ends in an optirebal error naming what to fix.

Each case is one class of bad input (a field and a way of being wrong). The test asserts the
error class (never a raw ``TypeError``, ``ValueError`` or ``KeyError``: ``InputError`` and
``PolicyFileError`` are ``ValueError`` subclasses, so the class is checked exactly), the field
or key it names, the row where there is one, and that the message says them. No case may be
accepted silently. Bad model files are also run through the command line: one line, exit 2.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF

import optirebal as orb
from optirebal.cli import main
from optirebal.portfolio import check_cost_inputs

MODELS = Path(__file__).resolve().parent.parent / "models"
T = {"equity": 0.6, "bonds": 0.4}
INF = float("inf")
NAN = float("nan")


# --- builders ------------------------------------------------------------------------------------


def frames() -> dict[str, pd.DataFrame]:
    """Two securities, one account, two lots, a covariance: every case changes one thing."""
    return {
        "securities": pd.DataFrame({"security": ["AAA", "BBB"], "price": [10.0, 20.0],
                                    "asset_class": ["equity", "bonds"],
                                    "half_spread_bps": [1.0, 2.0], "lot_size": [1.0, 1.0],
                                    "daily_volatility": [0.01, 0.005],
                                    "daily_traded_value": [1e9, 1e9]}),
        "accounts": pd.DataFrame({"account": ["acct"], "type": ["taxable"], "cash": [100.0],
                                  "flow": [0.0]}),
        "lots": pd.DataFrame({"lot": ["L1", "L2"], "account": ["acct", "acct"],
                              "security": ["AAA", "BBB"], "quantity": [10.0, 5.0],
                              "cost_basis": [80.0, 120.0],
                              "acquired": ["2020-01-02", "2021-06-30"]}),
        "risk": pd.DataFrame([[0.04, 0.002], [0.002, 0.01]], index=["equity", "bonds"],
                             columns=["equity", "bonds"]),
    }


def build(f: dict[str, Any], **extra: Any) -> orb.Portfolio:
    return orb.Portfolio.from_frames(f["securities"], f["accounts"], f["lots"],
                                     as_of=extra.pop("as_of", AS_OF), risk=f["risk"], **extra)


def cell(frame: str, column: str, row: int, value: Any) -> Callable[[Path], object]:
    """Build the portfolio with one cell of one frame changed (the column made object)."""
    def run(_: Path) -> object:
        f = frames()
        table = f[frame]
        if column in table.columns:
            table[column] = table[column].astype(object)
        else:
            table[column] = pd.Series([None] * len(table), dtype=object)
        table.loc[row, column] = value
        return build(f)
    return run


def edit(change: Callable[[dict[str, Any]], None], **extra: Any) -> Callable[[Path], object]:
    """Build the portfolio after ``change(frames)``."""
    def run(_: Path) -> object:
        f = frames()
        change(f)
        return build(f, **extra)
    return run


def rename(frame: str, old: str, new: str) -> Callable[[Path], object]:
    return edit(lambda f: f.__setitem__(frame, f[frame].rename(columns={old: new})))


def drop(frame: str, column: str) -> Callable[[Path], object]:
    return edit(lambda f: f.__setitem__(frame, f[frame].drop(columns=column)))


def exposures(matrix: dict[str, list[Any]]) -> Callable[[Path], object]:
    def change(f: dict[str, Any]) -> None:
        f["securities"] = f["securities"].drop(columns="asset_class")
    frame = pd.DataFrame(matrix, index=pd.Index(["AAA", "BBB"], name="security"))
    return edit(change, exposures=frame)


def future(**columns: Any) -> pd.DataFrame:
    row = {"instrument": "ES", "price": 5000.0, "multiplier": 50.0, "asset_class": "equity",
           "half_spread_bps": 0.5, "margin_rate": 0.05, "contracts": 0.0}
    row.update(columns)
    return pd.DataFrame([row], dtype=object)


def derivative(**columns: Any) -> Callable[[Path], object]:
    return edit(lambda f: None, derivatives=future(**columns))


BUY = {"date": "2026-11-01", "account": "acct", "security": "AAA", "shares": 1.0, "price": 10.0}


def history(**columns: Any) -> Callable[[Path], object]:
    return edit(lambda f: None, history=pd.DataFrame([{**BUY, **columns}], dtype=object))


def scheduled(**columns: Any) -> Callable[[Path], object]:
    row = {"date": "2026-12-01", "account": "acct", "security": "AAA", "shares": 1.0}
    return edit(lambda f: None, scheduled=pd.DataFrame([{**row, **columns}], dtype=object))


def policy(**kwargs: Any) -> Callable[[Path], object]:
    return lambda _: orb.Policy(kwargs.pop("targets", T), **kwargs)


def part(kind: Callable[..., object], *args: Any, **kwargs: Any) -> Callable[[Path], object]:
    return lambda _: kind(*args, **kwargs)


def toml(text: str) -> Callable[[Path], object]:
    """Read a policy file: ``[policy]`` with the targets, then ``text``."""
    def run(tmp: Path) -> object:
        path = tmp / "policy.toml"
        path.write_text("[policy]\n" + text + "\n[policy.targets]\nequity = 0.6\nbonds = 0.4\n"
                        if "targets" not in text else "[policy]\n" + text + "\n")
        return orb.Policy.from_toml(path)
    return run


def impact_check(change: Callable[[dict[str, Any]], None],
                 impact: str = "power") -> Callable[[Path], object]:
    def run(_: Path) -> object:
        f = frames()
        change(f)
        check_cost_inputs(build(f), orb.Policy(T, costs=orb.Costs(impact=impact)))
        return "accepted"
    return run


# --- the catalogue: (id, make, error, field or key, row) ----------------------------------------

IE, PFE = orb.InputError, orb.PolicyFileError

POLICY_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("risk_aversion text", policy(risk_aversion="high"), IE, "risk_aversion", None),
    ("risk_aversion bool", policy(risk_aversion=True), IE, "risk_aversion", None),
    ("risk_aversion inf", policy(risk_aversion=INF), IE, "risk_aversion", None),
    ("risk_aversion None", policy(risk_aversion=None), IE, "risk_aversion", None),
    ("horizon_years inf", policy(horizon_years=INF), IE, "horizon_years", None),
    ("horizon_years text", policy(horizon_years="0.25"), IE, "horizon_years", None),
    ("horizon_years nan", policy(horizon_years=NAN), IE, "horizon_years", None),
    ("band_penalty inf", policy(band_penalty=INF), IE, "band_penalty", None),
    ("band_penalty negative", policy(band_penalty=-1.0), IE, "band_penalty", None),
    ("counterflow_penalty inf", policy(counterflow_penalty=INF), IE, "counterflow_penalty",
     None),
    ("counterflow_penalty bool", policy(counterflow_penalty=False), IE, "counterflow_penalty",
     None),
    ("target_tolerance above 1", policy(target_tolerance=2.0), IE, "target_tolerance", None),
    ("target_tolerance negative", policy(target_tolerance=-0.1), IE, "target_tolerance", None),
    ("turnover_cap inf", policy(turnover_cap=INF), IE, "turnover_cap", None),
    ("turnover_cap text", policy(turnover_cap="0.1"), IE, "turnover_cap", None),
    ("soft_bands text", policy(soft_bands="false"), IE, "soft_bands", None),
    ("soft_bands int", policy(soft_bands=1), IE, "soft_bands", None),
    ("soft_bands None", policy(soft_bands=None), IE, "soft_bands", None),
    ("mode misspelled", policy(mode="to_bnd"), IE, "mode", None),
    ("mode not text", policy(mode=3), IE, "mode", None),
    ("cash_class empty", policy(cash_class=""), IE, "cash_class", None),
    ("cash_class number", policy(cash_class=5), IE, "cash_class", None),
    ("targets a number", policy(targets=1.0), IE, "targets", None),
    ("targets a list", policy(targets=[0.6, 0.4]), IE, "targets", None),
    ("targets empty", policy(targets={}), IE, "targets", None),
    ("target text", policy(targets={"equity": "0.6", "bonds": 0.4}), IE, "targets", "equity"),
    ("target bool", policy(targets={"equity": True, "bonds": 0.0}), IE, "targets", "equity"),
    ("target inf", policy(targets={"equity": INF, "bonds": 0.4}), IE, "targets", "equity"),
    ("target class not text", policy(targets={1: 1.0}), IE, "targets", 1),
    ("band a number", policy(band=0.05), IE, "band", None),
    ("band a dict", policy(band={"width": 0.05}), IE, "band", None),
    ("class band a number", policy(class_bands={"equity": 0.05}), IE, "class_bands", "equity"),
    ("class bands a list", policy(class_bands=[orb.Band.absolute(0.1)]), IE, "class_bands",
     None),
    ("trigger a number", policy(trigger=0.1), IE, "trigger", None),
    ("trigger excludes target", policy(trigger=orb.Band.range(0.0, 0.3)), IE, "trigger",
     "equity"),
    ("class trigger excludes target",
     policy(class_triggers={"bonds": orb.Band.range(0.5, 0.9)}), IE, "class_triggers", "bonds"),
    ("class trigger unknown class", policy(class_triggers={"gold": orb.Band.absolute(0.1)}), IE,
     "class_triggers", "gold"),
    ("class trigger not a band", policy(class_triggers={"equity": "wide"}), IE,
     "class_triggers", "equity"),
    ("costs a text", policy(costs="none"), IE, "costs", None),
    ("tax a dict", policy(tax={"model": "none"}), IE, "tax", None),
    ("restrictions a list", policy(restrictions=["AAA"]), IE, "restrictions", None),
    ("decode a number", policy(decode=3), IE, "decode", None),
    ("solver a text", policy(solver="ECOS"), IE, "solver", None),
    ("overlay a text", policy(overlay="hybrid"), IE, "overlay", None),
    ("extra_terms not a tuple", policy(extra_terms=5), IE, "extra_terms", None),
    ("extra term not a term", policy(extra_terms=(object(),)), IE, "extra_terms", "0"),
    # parts
    ("band width text", part(orb.Band.absolute, "5%"), IE, "band.below", None),
    ("band width bool", part(orb.Band.absolute, True), IE, "band.below", None),
    ("band relative inf", part(orb.Band.relative, INF), IE, "band.below", None),
    ("band upper nan", part(orb.Band.range, 0.1, NAN), IE, "band.upper", None),
    ("band range inverted", part(orb.Band.range, 0.7, 0.5), IE, "band", None),
    ("band kind None", part(orb.Band, 0.05, 0.05, None), IE, "band.kind", None),
    ("costs impact misspelled", part(orb.Costs, impact="powr"), IE, "costs.impact", None),
    ("costs impact_coefficient inf", part(orb.Costs, impact_coefficient=INF), IE,
     "costs.impact_coefficient", None),
    ("costs impact_coefficient text", part(orb.Costs, impact_coefficient="0.5"), IE,
     "costs.impact_coefficient", None),
    ("costs reference_participation zero", part(orb.Costs, reference_participation=0.0), IE,
     "costs.reference_participation", None),
    ("tax short_term_rate 1", part(orb.Tax, short_term_rate=1.0), IE, "tax.short_term_rate",
     None),
    ("tax long_term_rate text", part(orb.Tax, long_term_rate="0.2"), IE, "tax.long_term_rate",
     None),
    ("tax ordinary_rate bool", part(orb.Tax, ordinary_rate=True), IE, "tax.ordinary_rate",
     None),
    ("tax loss_carry_value above 1", part(orb.Tax, loss_carry_value=1.5), IE,
     "tax.loss_carry_value", None),
    ("tax harvest_discount negative", part(orb.Tax, harvest_discount=-0.1), IE,
     "tax.harvest_discount", None),
    ("tax realized_short inf", part(orb.Tax, realized_short=INF), IE, "tax.realized_short",
     None),
    ("tax realized_long text", part(orb.Tax, realized_long="0"), IE, "tax.realized_long", None),
    ("tax gain_budget negative", part(orb.Tax, gain_budget=-1.0), IE, "tax.gain_budget", None),
    ("tax gain_budget nan", part(orb.Tax, gain_budget=NAN), IE, "tax.gain_budget", None),
    ("tax gain_budget_penalty -inf", part(orb.Tax, gain_budget_penalty=-INF), IE,
     "tax.gain_budget_penalty", None),
    ("tax short_term_penalty inf", part(orb.Tax, short_term_penalty=INF), IE,
     "tax.short_term_penalty", None),
    ("tax near_long_term_days fractional", part(orb.Tax, near_long_term_days=30.5), IE,
     "tax.near_long_term_days", None),
    ("tax near_long_term_days bool", part(orb.Tax, near_long_term_days=True), IE,
     "tax.near_long_term_days", None),
    ("tax filing_status misspelled", part(orb.Tax, filing_status="joint"), IE,
     "tax.filing_status", None),
    ("tax wash_sale_lots unknown", part(orb.Tax, wash_sale_lots="never"), IE,
     "tax.wash_sale_lots", None),
    ("tax substitutes a list", part(orb.Tax, substitutes=["VEA"]), IE, "tax.substitutes", None),
    ("tax substitute not text", part(orb.Tax, substitutes={"equity": [1]}), IE,
     "tax.substitutes.equity", 0),
    ("tax swap_tracking_cost_bps inf", part(orb.Tax, swap_tracking_cost_bps=INF), IE,
     "tax.swap_tracking_cost_bps", None),
    ("restrictions no_buy a bare text", part(orb.Restrictions, no_buy="AAA"), IE,
     "restrictions.no_buy", None),
    ("restrictions no_sell None entry", part(orb.Restrictions, no_sell=[None]), IE,
     "restrictions.no_sell", 0),
    ("restrictions no_trade empty entry", part(orb.Restrictions, no_trade=["AAA", ""]), IE,
     "restrictions.no_trade", 1),
    ("restrictions locked_lots a number", part(orb.Restrictions, locked_lots=5), IE,
     "restrictions.locked_lots", None),
    ("decode repair_rounds fractional", part(orb.DecodeOptions, repair_rounds=2.5), IE,
     "decode.repair_rounds", None),
    ("decode repair_rounds negative", part(orb.DecodeOptions, repair_rounds=-1), IE,
     "decode.repair_rounds", None),
    ("decode repair_rounds text", part(orb.DecodeOptions, repair_rounds="3"), IE,
     "decode.repair_rounds", None),
    ("decode min_trade_value inf", part(orb.DecodeOptions, min_trade_value=INF), IE,
     "decode.min_trade_value", None),
    ("solver chain a bare text", part(orb.SolverOptions, chain="ECOS"), IE, "solver.chain",
     None),
    ("solver chain unknown", part(orb.SolverOptions, chain=("GUROBI",)), IE, "solver.chain",
     None),
    ("solver chain not text", part(orb.SolverOptions, chain=(1,)), IE, "solver.chain", 0),
    ("solver conflict_rounds fractional", part(orb.SolverOptions, conflict_rounds=1.5), IE,
     "solver.conflict_rounds", None),
    ("overlay implementation unknown", part(orb.Overlay, implementation="both"), IE,
     "overlay.implementation", None),
    ("overlay on_margin_shortfall unknown", part(orb.Overlay, on_margin_shortfall="ignore"), IE,
     "overlay.on_margin_shortfall", None),
    ("overlay instrument cap negative", part(orb.Overlay, instrument_caps={"ES": -1.0}), IE,
     "overlay.instrument_caps", "ES"),
    ("overlay instrument caps a list", part(orb.Overlay, instrument_caps=[("ES", 1.0)]), IE,
     "overlay.instrument_caps", None),
    ("overlay max_instrument_notional inf", part(orb.Overlay, max_instrument_notional=INF), IE,
     "overlay.max_instrument_notional", None),
    ("overlay max_gross_notional text", part(orb.Overlay, max_gross_notional="1"), IE,
     "overlay.max_gross_notional", None),
    ("overlay margin_account empty", part(orb.Overlay, margin_account=""), IE,
     "overlay.margin_account", None),
    ("overlay variation_buffer nan", part(orb.Overlay, variation_buffer=NAN), IE,
     "overlay.variation_buffer", None),
    ("overlay migrate_fraction above 1", part(orb.Overlay, migrate_fraction=1.5), IE,
     "overlay.migrate_fraction", None),
]

TOML_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("toml soft_bands text", toml('soft_bands = "false"'), PFE, "policy.soft_bands", None),
    ("toml risk_aversion bool", toml("risk_aversion = true"), PFE, "policy.risk_aversion", None),
    ("toml risk_aversion inf", toml("risk_aversion = inf"), PFE, "policy.risk_aversion", None),
    ("toml horizon_years inf", toml("horizon_years = inf"), PFE, "policy.horizon_years", None),
    ("toml band_penalty inf", toml("band_penalty = inf"), PFE, "policy.band_penalty", None),
    ("toml counterflow_penalty inf", toml("counterflow_penalty = inf"), PFE,
     "policy.counterflow_penalty", None),
    ("toml impact_coefficient inf", toml("costs = {impact_coefficient = inf}"), PFE,
     "policy.costs.impact_coefficient", None),
    ("toml targets a number", toml("targets = 1.0"), PFE, "policy.targets", None),
    ("toml target text", toml('targets = {equity = "0.6", bonds = 0.4}'), PFE,
     "policy.targets.equity", None),
    ("toml targets missing", toml('mode = "full"  # no targets'), PFE, "policy.targets", None),
    ("toml repair_rounds fractional", toml("decode = {repair_rounds = 2.5}"), PFE,
     "policy.decode.repair_rounds", None),
    ("toml band width text", toml('band = {width = "5%"}'), PFE, "policy.band.width", None),
    ("toml band width bool", toml("band = {width = true}"), PFE, "policy.band.width", None),
    ("toml band a number", toml("band = 0.05"), PFE, "policy.band", None),
    ("toml band width and lower", toml("band = {width = 0.05, lower = 0.1}"), PFE,
     "policy.band.width", None),
    ("toml band lower without upper", toml("band = {lower = 0.1}"), PFE, "policy.band", None),
    ("toml band range with width", toml('band = {width = 0.05, kind = "range"}'), PFE,
     "policy.band.kind", None),
    ("toml band edges of another kind", toml('band = {lower = 0.5, upper = 0.7, kind = '
                                             '"absolute"}'), PFE, "policy.band.kind", None),
    ("toml band kind misspelled", toml('band = {width = 0.05, kind = "relatve"}'), PFE,
     "policy.band.kind", None),
    ("toml trigger inverted", toml("trigger = {lower = 0.7, upper = 0.5}"), PFE,
     "policy.trigger", None),
    ("toml class_bands a number", toml("class_bands = 0.05"), PFE, "policy.class_bands", None),
    ("toml class band a number", toml("class_bands = {equity = 0.05}"), PFE,
     "policy.class_bands.equity", None),
    ("toml costs a text", toml('costs = "none"'), PFE, "policy.costs", None),
    ("toml costs impact a number", toml("costs = {impact = 1}"), PFE, "policy.costs.impact",
     None),
    ("toml near_long_term_days float", toml("tax = {near_long_term_days = 30.0}"), PFE,
     "policy.tax.near_long_term_days", None),
    ("toml substitutes a number", toml("tax = {substitutes = 5}"), PFE, "policy.tax.substitutes",
     None),
    ("toml no_buy a bare text", toml('restrictions = {no_buy = "AAA"}'), PFE,
     "policy.restrictions.no_buy", None),
    ("toml solver chain a bare text", toml('solver = {chain = "ECOS"}'), PFE,
     "policy.solver.chain", None),
    ("toml conflict_rounds fractional", toml("solver = {conflict_rounds = 2.5}"), PFE,
     "policy.solver.conflict_rounds", None),
    ("toml instrument cap text", toml('overlay = {instrument_caps = {ES = "x"}}'), PFE,
     "policy.overlay.instrument_caps.ES", None),
    ("toml mode a number", toml("mode = 3"), PFE, "policy.mode", None),
    ("toml cash_class a number", toml("cash_class = 5"), PFE, "policy.cash_class", None),
    ("toml policy not a table", lambda _: orb.Policy.from_dict(5, file="p.toml"),  # type: ignore[arg-type]
     PFE, "policy", None),
    ("toml no targets", lambda _: orb.Policy.from_dict({"mode": "full"}, file="p.toml"), PFE,
     "policy.targets", None),
]


def _write_bytes(content: bytes, name: str = "policy.toml") -> Callable[[Path], object]:
    def run(tmp: Path) -> object:
        path = tmp / name
        path.write_bytes(content)
        return orb.Policy.from_toml(path)
    return run


FILE_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("policy file missing", lambda tmp: orb.Policy.from_toml(tmp / "nowhere.toml"), PFE, "", None),
    ("policy file a directory", lambda tmp: orb.Policy.from_toml(tmp), PFE, "", None),
    ("policy file not UTF-8", _write_bytes('[policy]\nmode = "fÃ¼ll"\n'.encode("latin-1")
                                           + b"\xff\xfe"), PFE, "", None),
    ("policy file empty", _write_bytes(b""), PFE, "", None),
    ("policy file blank", _write_bytes(b"\n  \n"), PFE, "", None),
    ("policy file binary", _write_bytes(bytes(range(256))), PFE, "", None),
    ("policy file not TOML", _write_bytes(b"[policy\nmode = 1\n"), PFE, "", None),
]

FRAME_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    # securities
    ("securities column misspelled", rename("securities", "lot_size", "lotsize"), IE, "lotsize",
     None),
    ("securities spread misspelled", rename("securities", "half_spread_bps", "halfspread_bps"),
     IE, "halfspread_bps", None),
    ("securities unknown column", edit(lambda f: f["securities"].insert(1, "color", "red")), IE,
     "color", None),
    ("securities duplicate column",
     edit(lambda f: f.__setitem__("securities", pd.concat(
         [f["securities"], f["securities"][["price"]]], axis=1))), IE, "price", None),
    ("securities missing price", drop("securities", "price"), IE, "price", None),
    ("price text", cell("securities", "price", 1, "abc"), IE, "price", "BBB"),
    ("price bool", cell("securities", "price", 1, True), IE, "price", "BBB"),
    ("price inf", cell("securities", "price", 1, INF), IE, "price", "BBB"),
    ("price empty", cell("securities", "price", 0, None), IE, "price", "AAA"),
    ("half_spread_bps text", cell("securities", "half_spread_bps", 1, "n/a"), IE,
     "half_spread_bps", "BBB"),
    ("commission_bps negative", cell("securities", "commission_bps", 0, -1.0), IE,
     "commission_bps", "AAA"),
    ("commission_per_share text", cell("securities", "commission_per_share", 1, "x"), IE,
     "commission_per_share", "BBB"),
    ("daily_volatility inf", cell("securities", "daily_volatility", 1, INF), IE,
     "daily_volatility", "BBB"),
    ("daily_traded_value negative", cell("securities", "daily_traded_value", 0, -1.0), IE,
     "daily_traded_value", "AAA"),
    ("lot_size bool", cell("securities", "lot_size", 0, True), IE, "lot_size", "AAA"),
    ("impact_coefficient empty", cell("securities", "impact_coefficient", 0, None), IE,
     "impact_coefficient", "AAA"),
    ("impact_coefficient negative", edit(lambda f: f["securities"].__setitem__(
        "impact_coefficient", [1.0, -0.5])), IE, "impact_coefficient", "BBB"),
    ("asset_class empty text", cell("securities", "asset_class", 1, ""), IE, "asset_class",
     "BBB"),
    ("asset_class empty", cell("securities", "asset_class", 0, None), IE, "asset_class", "AAA"),
    ("security id empty", cell("securities", "security", 1, None), IE, "security", 1),
    ("security id blank", cell("securities", "security", 0, "  "), IE, "security", 0),
    ("securities without ids", drop("securities", "security"), IE, "security", None),
    ("securities not a frame", edit(lambda f: f.__setitem__("securities", {"price": [1.0]})), IE,
     "securities", None),
    ("securities empty", edit(lambda f: f.__setitem__("securities", f["securities"].iloc[:0])),
     IE, "securities", None),
    # accounts
    ("account type misspelled", cell("accounts", "type", 0, "taxible"), IE, "type", "acct"),
    ("account type empty", cell("accounts", "type", 0, None), IE, "type", "acct"),
    ("account cash text", cell("accounts", "cash", 0, "lots"), IE, "cash", "acct"),
    ("account cash bool", cell("accounts", "cash", 0, True), IE, "cash", "acct"),
    ("account cash inf", cell("accounts", "cash", 0, INF), IE, "cash", "acct"),
    ("account flow empty", cell("accounts", "flow", 0, None), IE, "flow", "acct"),
    ("account cash_reserve text", cell("accounts", "cash_reserve", 0, "some"), IE,
     "cash_reserve", "acct"),
    ("accounts missing cash", drop("accounts", "cash"), IE, "cash", None),
    ("accounts column misspelled", rename("accounts", "flow", "flows"), IE, "flows", None),
    ("account id empty", cell("accounts", "account", 0, None), IE, "account", 0),
    # lots
    ("acquired month first", cell("lots", "acquired", 0, "11-20-2020"), IE, "acquired", "L1"),
    ("acquired day first", cell("lots", "acquired", 0, "20-11-2020"), IE, "acquired", "L1"),
    ("acquired slashes", cell("lots", "acquired", 1, "2021/06/30"), IE, "acquired", "L2"),
    ("acquired no such day", cell("lots", "acquired", 1, "2021-02-30"), IE, "acquired", "L2"),
    ("acquired an int", cell("lots", "acquired", 0, 20200102), IE, "acquired", "L1"),
    ("acquired empty", cell("lots", "acquired", 1, None), IE, "acquired", "L2"),
    ("acquired words", cell("lots", "acquired", 0, "Jan 2 2020"), IE, "acquired", "L1"),
    ("quantity text", cell("lots", "quantity", 0, "ten"), IE, "quantity", "L1"),
    ("quantity bool", cell("lots", "quantity", 1, True), IE, "quantity", "L2"),
    ("cost_basis empty", cell("lots", "cost_basis", 1, None), IE, "cost_basis", "L2"),
    ("cost_basis inf", cell("lots", "cost_basis", 0, INF), IE, "cost_basis", "L1"),
    ("lot security empty", cell("lots", "security", 1, None), IE, "security", "L2"),
    ("lot account empty", cell("lots", "account", 0, np.nan), IE, "account", "L1"),
    ("lot id empty", cell("lots", "lot", 1, np.nan), IE, "lot", 1),
    ("lots column misspelled", rename("lots", "acquired", "aquired"), IE, "aquired", None),
    ("lots missing quantity", drop("lots", "quantity"), IE, "quantity", None),
    # as_of
    ("as_of an int", edit(lambda f: None, as_of=20261120), IE, "as_of", None),
    ("as_of month first", edit(lambda f: None, as_of="11-20-2026"), IE, "as_of", None),
    ("as_of day first", edit(lambda f: None, as_of="20-11-2026"), IE, "as_of", None),
    ("as_of slashes", edit(lambda f: None, as_of="2026/11/20"), IE, "as_of", None),
    ("as_of words", edit(lambda f: None, as_of="Nov 20 2026"), IE, "as_of", None),
    ("as_of no such month", edit(lambda f: None, as_of="2026-13-01"), IE, "as_of", None),
    ("as_of None", edit(lambda f: None, as_of=None), IE, "as_of", None),
    ("as_of bool", edit(lambda f: None, as_of=True), IE, "as_of", None),
    # exposures
    ("exposure empty", exposures({"equity": [1.0, None], "bonds": [0.0, 1.0]}), IE,
     "exposures", "BBB"),
    ("exposure text", exposures({"equity": [1.0, "x"], "bonds": [0.0, 1.0]}), IE, "exposures",
     "BBB"),
    ("security with no exposure", exposures({"equity": [1.0, 0.0], "bonds": [0.0, 0.0]}), IE,
     "exposures", "BBB"),
    ("exposure inf", exposures({"equity": [INF, 0.0], "bonds": [0.0, 1.0]}), IE, "exposures",
     "AAA"),
    # risk
    ("covariance text", edit(lambda f: f["risk"].__setitem__(
        "bonds", pd.Series(["0.002", "high"], index=["equity", "bonds"], dtype=object))), IE,
     "covariance", "bonds"),
    ("covariance bool", edit(lambda f: f["risk"].__setitem__(
        "equity", pd.Series([True, 0.002], index=["equity", "bonds"], dtype=object))), IE,
     "covariance", "equity"),
    ("covariance duplicate label", edit(lambda f: f.__setitem__("risk", f["risk"].set_axis(
        ["equity", "equity"]))), IE, "covariance", "equity"),
    ("covariance empty", edit(lambda f: f.__setitem__("risk", pd.DataFrame())), IE,
     "covariance", None),
    ("risk a text", edit(lambda f: f.__setitem__("risk", "cov")), IE, "risk", None),
    # derivatives
    ("derivative column misspelled", edit(lambda f: None, derivatives=future().rename(
        columns={"multiplier": "multiplyer"})), IE, "multiplyer", None),
    ("derivative margin_rate text", derivative(margin_rate="x"), IE, "margin_rate", "ES"),
    ("derivative contracts text", derivative(contracts="many"), IE, "contracts", "ES"),
    ("derivative contracts fractional", derivative(contracts=2.5), IE, "contracts", "ES"),
    ("derivative price bool", derivative(price=True), IE, "price", "ES"),
    ("derivative premium negative", derivative(premium=-1.0), IE, "premium", "ES"),
    ("derivative exposure empty", edit(lambda f: None, derivatives=future(
        exposure_equity=None).drop(columns="asset_class")), IE, "exposure_equity", "ES"),
    ("derivative exposure text", edit(lambda f: None, derivatives=future(
        exposure_equity="one").drop(columns="asset_class")), IE, "exposure_equity", "ES"),
    ("derivative asset_class empty", derivative(asset_class=None), IE, "asset_class", "ES"),
    ("derivative id empty", derivative(instrument=None), IE, "instrument", 0),
    ("derivatives not a frame", edit(lambda f: None, derivatives=[1, 2]), IE, "derivatives",
     None),
    # history and scheduled buys
    ("history date month first", history(date="11/01/2026"), IE, "history.date", 0),
    ("history date an int", history(date=20261101), IE, "history.date", 0),
    ("history column misspelled", edit(lambda f: None, history=pd.DataFrame(
        [BUY]).rename(columns={"shares": "shrs"})), IE, "history.shrs", None),
    ("history shares text", history(shares="ten"), IE, "history.shares", 0),
    ("history price bool", history(price=True), IE, "history.price", 0),
    ("history cost_basis text", history(cost_basis="x"), IE, "history.cost_basis", 0),
    ("history account empty", history(account=None), IE, "history.account", 0),
    ("history not a frame", edit(lambda f: None, history=[BUY]), IE, "history", None),
    ("scheduled date day first", scheduled(date="01-12-2026"), IE, "scheduled.date", 0),
    ("scheduled shares and value", scheduled(value=10.0), IE, "scheduled.value", None),
    ("scheduled column misspelled", edit(lambda f: None, scheduled=pd.DataFrame(
        [{"date": "2026-12-01", "account": "acct", "security": "AAA", "values": 5.0}])), IE,
     "scheduled.values", None),
    ("scheduled security empty", scheduled(security=np.nan), IE, "scheduled.security", 0),
    # the portfolio's copy-with methods
    ("with_prices text", lambda _: build(frames()).with_prices({"AAA": "11.5"}), IE, "price",
     "AAA"),
    ("with_prices bool", lambda _: build(frames()).with_prices({"BBB": True}), IE, "price",
     "BBB"),
    ("with_prices not a mapping", lambda _: build(frames()).with_prices(11.5), IE,  # type: ignore[arg-type]
     "price", None),
    ("with_accounts flow text", lambda _: build(frames()).with_accounts(flow={"acct": "x"}), IE,
     "flow", "acct"),
    ("with_contracts text", lambda _: build(frames(), derivatives=future()).with_contracts(
        {"ES": "ten"}), IE, "contracts", "ES"),
    ("with_lots date month first", lambda _: build(frames()).with_lots(
        frames()["lots"].assign(acquired=["01-02-2020", "2021-06-30"])), IE, "acquired", "L1"),
    # cost inputs a policy with impact needs
    ("impact without daily_volatility",
     impact_check(lambda f: f.__setitem__("securities", f["securities"].drop(
         columns="daily_volatility"))), IE,
     "daily_volatility", "AAA"),
    ("impact with an empty daily_volatility",
     impact_check(lambda f: f["securities"].__setitem__("daily_volatility", [0.01, None])), IE,
     "daily_volatility", "BBB"),
    ("quadratic impact without daily_traded_value",
     impact_check(lambda f: f.__setitem__("securities", f["securities"].drop(
         columns="daily_traded_value")), "quadratic"), IE, "daily_traded_value", "AAA"),
]


# --- model files: a copy of pension_6040 with one thing broken -----------------------------------


def _model(tmp: Path) -> Path:
    shutil.copytree(MODELS / "pension_6040", tmp / "pension_6040")
    target = tmp / "model.toml"
    shutil.copy(MODELS / "pension_6040.toml", target)
    return target


def replace_toml(old: str, new: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = _model(tmp)
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        return path
    return make


def csv_bytes(name: str, content: bytes | None) -> Callable[[Path], Path]:
    """Replace one CSV file by ``content`` (``None``: a directory of that name)."""
    def make(tmp: Path) -> Path:
        path = _model(tmp)
        target = tmp / "pension_6040" / f"{name}.csv"
        target.unlink()
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content)
        return path
    return make


def csv_edit(name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = _model(tmp)
        target = tmp / "pension_6040" / f"{name}.csv"
        change(pd.read_csv(target, dtype=object)).to_csv(target, index=False)
        return path
    return make


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[row, column] = value
        return table
    return change


def _latin1(name: str) -> bytes:
    """The CSV file saved as Latin-1, with an accent in its first id."""
    text = (MODELS / "pension_6040" / f"{name}.csv").read_text()
    header, first, *rest = text.splitlines()
    return "\n".join([header, "é" + first, *rest, ""]).encode("latin-1")


def toml_bytes(content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "model.toml"
        path.write_bytes(content)
        return path
    return make


def _first(name: str) -> str:
    return str(pd.read_csv(MODELS / "pension_6040" / f"{name}.csv", dtype=object).iloc[0, 0])


MODEL_CASES: list[tuple[str, Callable[[Path], Path], type, str, object]] = [
    ("model path a directory", lambda tmp: tmp, PFE, "", None),
    ("model path missing", lambda tmp: tmp / "nowhere.toml", PFE, "", None),
    ("model file empty", toml_bytes(b""), PFE, "", None),
    ("model file not UTF-8", toml_bytes(b'[model]\nname = "\xe9"\n'), PFE, "", None),
    ("model file not TOML", toml_bytes(b"[model\n"), PFE, "", None),
    ("model file without data", toml_bytes(b"[model]\nas_of = 2026-11-20\n[policy]\n"), PFE,
     "data", None),
    ("model as_of an int", replace_toml("as_of = 2026-11-20", "as_of = 20261120"), PFE,
     "model.as_of", None),
    ("model as_of month first", replace_toml("as_of = 2026-11-20", 'as_of = "11-20-2026"'), PFE,
     "model.as_of", None),
    ("model as_of day first", replace_toml("as_of = 2026-11-20", 'as_of = "20-11-2026"'), PFE,
     "model.as_of", None),
    ("model as_of no such day", replace_toml("as_of = 2026-11-20", 'as_of = "2026-02-30"'), PFE,
     "model.as_of", None),
    ("model table not a table", replace_toml("[model]\n", "model = 5\n[modelx]\n"), PFE, "modelx",
     None),
    ("model name a number", replace_toml('name = "60/40 pension fund"', "name = 60"), PFE,
     "model.name", None),
    ("data file name a number", replace_toml('securities = "pension_6040/securities.csv"',
                                             "securities = 5"), PFE, "data.securities", None),
    ("data file name empty", replace_toml('lots = "pension_6040/lots.csv"', 'lots = ""'), PFE,
     "data.lots", None),
    ("csv missing", replace_toml('covariance = "pension_6040/covariance.csv"',
                                 'covariance = "pension_6040/nowhere.csv"'), PFE,
     "data.covariance", None),
    ("csv a directory", csv_bytes("accounts", None), PFE, "data.accounts", None),
    ("csv empty", csv_bytes("lots", b""), PFE, "data.lots", None),
    ("csv blank lines", csv_bytes("lots", b"\n\n"), PFE, "data.lots", None),
    ("csv not UTF-8", csv_bytes("securities", _latin1("securities")), PFE, "data.securities",
     None),
    ("csv row longer than the header", csv_bytes("accounts", b"account,type,cash\n"
                                                 b"a,taxable,1,2,3\n"), PFE, "data.accounts", None),
    ("csv ragged", csv_bytes("accounts", b"account,type,cash\na,taxable,1\nb,taxable,1,2,3\n"),
     PFE, "data.accounts", None),
    ("csv header only", csv_bytes("securities", b"security,price,asset_class\n"), IE,
     "securities", None),
    ("covariance one column", csv_bytes("covariance", b"class\nus_equity\n"), PFE,
     "data.covariance", None),
    ("covariance text cell", csv_edit("covariance", _set("us_equity", 1, "high")), IE,
     "covariance", "intl_equity"),
    ("csv securities column misspelled", csv_edit("securities", lambda t: t.rename(
        columns={"lot_size": "lotsize"})), IE, "lotsize", None),
    ("securities price text", csv_edit("securities", _set("price", 0, "n/a")), IE, "price",
     _first("securities")),
    ("securities without daily_volatility", csv_edit("securities", lambda t: t.drop(
        columns="daily_volatility")), IE, "daily_volatility", _first("securities")),
    ("lots security empty", csv_edit("lots", _set("security", 0, None)), IE, "security",
     _first("lots")),
    ("lots id empty", csv_edit("lots", _set("lot", 0, None)), IE, "lot", 0),
    ("lots acquired month first", csv_edit("lots", _set("acquired", 0, "03-15-2019")), IE,
     "acquired", _first("lots")),
    ("accounts type empty", csv_edit("accounts", _set("type", 0, None)), IE, "type",
     _first("accounts")),
    ("policy soft_bands text", replace_toml('mode = "full"', 'mode = "full"\nsoft_bands = "no"'),
     PFE, "policy.soft_bands", None),
    ("policy risk_aversion inf", replace_toml("risk_aversion = 20.0", "risk_aversion = inf"),
     PFE, "policy.risk_aversion", None),
    ("policy impact_coefficient inf", replace_toml("impact_coefficient = 0.5",
                                                   "impact_coefficient = inf"), PFE,
     "policy.costs.impact_coefficient", None),
    ("policy band width text", replace_toml("width = 0.02", 'width = "2%"'), PFE,
     "policy.band.width", None),
]


# --- tests -------------------------------------------------------------------------------------

def _risk(make_frames: Callable[[], tuple[pd.DataFrame, ...]]) -> Callable[[Path], object]:
    """A case that builds a risk model directly (not through ``from_frames``)."""
    return lambda _: orb.RiskModel.from_factors(*make_frames())


FACTOR_LOADINGS = pd.DataFrame({"f": [1.0, 0.5]}, index=["equity", "bonds"])
FACTOR_COV = pd.DataFrame([[0.04]], index=["f"], columns=["f"])
RISK_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("risk model: text in a covariance cell", lambda _: orb.RiskModel.from_covariance(
        pd.DataFrame([[0.04, "x"], [0.01, 0.09]], index=["a", "b"], columns=["a", "b"])),
     IE, "covariance", "a"),
    ("risk model: text in a loading", _risk(lambda: (
        FACTOR_LOADINGS.astype(object).assign(f=[1.0, "y"]), FACTOR_COV,
        pd.Series({"equity": 0.01, "bonds": 0.02}))), IE, "loadings", "bonds"),
    ("risk model: text in a specific variance", _risk(lambda: (
        FACTOR_LOADINGS, FACTOR_COV, pd.Series({"equity": 0.01, "bonds": "z"}))), IE,
     "specific_variance", "bonds"),
]

DAYS = pd.to_datetime(["2026-11-30", "2026-12-31", "2027-01-29"])


def prices(**changes: Any) -> pd.DataFrame:
    """Month-end prices of the two securities from the portfolio's date on."""
    frame = pd.DataFrame({"AAA": [10.0, 11.0, 12.0], "BBB": [20.0, 20.5, 21.0]}, index=DAYS)
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.iloc[row, frame.columns.get_loc(column)] = value
    return frame


def backtest(market: Any, pol: orb.Policy | None = None, **kwargs: Any
             ) -> Callable[[Path], object]:
    def run(_: Path) -> object:
        chosen = pol or orb.Policy(T, schedule=orb.Schedule(looks="monthly"))
        return orb.backtest(build(frames(), as_of="2026-11-30"), chosen, market, **kwargs)
    return run


def flows(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame([{"date": "2026-12-31", "account": "acct", "amount": 100.0, **columns}],
                        dtype=object)


TIME_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("market: a gap (NaN)", backtest(prices(AAA=(1, NAN))), IE, "AAA", "2026-12-31"),
    ("market: a price of zero", backtest(prices(BBB=(2, 0.0))), IE, "BBB", "2027-01-29"),
    ("market: text in a price", backtest(prices(AAA=(1, "x"))), IE, "AAA", "2026-12-31"),
    ("market: unsorted dates", backtest(prices().iloc[[0, 2, 1]]), IE, "prices", "2026-12-31"),
    ("market: duplicate dates", backtest(prices().iloc[[0, 1, 1]]), IE, "prices",
     "2026-12-31"),
    ("market: a security without a price", backtest(prices().drop(columns="BBB")), IE,
     "market", "BBB"),
    ("market: not dates", backtest(prices().reset_index(drop=True)), IE, "prices", None),
    ("market: time-zoned dates", backtest(prices().tz_localize("UTC")), IE, "prices", None),
    ("market: not a frame", backtest([1.0, 2.0]), IE, "market", None),
    ("market: start after end", backtest(prices(), start="2027-01-29", end="2026-12-31"), IE,
     "start", None),
    ("market: end outside the data", backtest(prices(), end="2030-01-31"), IE, "end", None),
    ("market: tidy frame with two prices a day", lambda _: orb.Market.from_frame(
        pd.DataFrame({"date": ["2026-12-31"] * 2, "security": ["AAA"] * 2,
                      "price": [1.0, 2.0]})), IE, "date", "2026-12-31"),
    ("market: tidy frame with an unknown column", lambda _: orb.Market.from_frame(
        pd.DataFrame({"date": ["2026-12-31"], "security": ["AAA"], "price": [1.0],
                      "volume": [5.0]})), IE, "volume", None),
    ("market: a return of -100%", lambda _: orb.Market.from_returns(
        pd.DataFrame({"AAA": [0.1, -1.0]}, index=DAYS[1:]), start="2026-11-30"), IE, "AAA",
     "2027-01-29"),
    ("market: income of another security", lambda _: orb.Market.from_prices(
        prices(), income=pd.DataFrame({"ZZZ": [0.0, 0.1, 0.0]}, index=DAYS)), IE, "income",
     "ZZZ"),
    ("backtest: scheduled buys", lambda _: orb.backtest(
        build(frames(), as_of="2026-11-30", scheduled=pd.DataFrame(
            [{"date": "2026-12-15", "account": "acct", "security": "AAA", "shares": 1.0}])),
        orb.Policy(T), prices()), IE, "scheduled", None),
    ("flows: unknown account", backtest(prices(), flows=flows(account="nope")), IE,
     "flows.account", "0"),
    ("flows: text amount", backtest(prices(), flows=flows(amount="5")), IE, "flows.amount",
     "0"),
    ("flows: a date outside the data", backtest(prices(), flows=flows(date="2030-01-31")), IE,
     "flows.date", "0"),
    ("flows: no amount column", backtest(prices(), flows=flows().drop(columns="amount")), IE,
     "flows.amount", None),
    ("schedule: misspelled looks", part(orb.Schedule, looks="montly"), IE, "schedule.looks",
     None),
    ("schedule: a date that is not ISO", part(orb.Schedule, dates=("31/12/2026",)), IE,
     "schedule.dates", "0"),
    ("schedule: a look date outside the data", backtest(prices(), orb.Policy(
        T, schedule=orb.Schedule(dates=("2030-01-31",)))), IE, "schedule.dates", "0"),
    ("schedule: unknown income rule", part(orb.Schedule, income="spend"), IE,
     "schedule.income", None),
    ("policy: fraction 0", policy(fraction=0.0), IE, "fraction", None),
    ("policy: negative tracking-error trigger", policy(tracking_error_trigger=-0.01), IE,
     "tracking_error_trigger", None),
    ("momentum: unknown signal", part(orb.policy.Momentum, signal="ma1"), IE,
     "momentum.signal", None),
    ("momentum: a cap above 1", part(orb.policy.Momentum, hard_cap={"equity": 1.5}), IE,
     "momentum.hard_cap", "equity"),
    ("velocity: v_min above v_max", part(orb.policy.Velocity, v_min=0.9, v_max=0.5), IE,
     "velocity.v_min", None),
    ("velocity: low not below high", part(orb.policy.Velocity, low=30.0, high=20.0), IE,
     "velocity.low", None),
    ("velocity: an indicator the market lacks", backtest(prices(), orb.Policy(
        T, velocity=orb.policy.Velocity(indicator="vix"))), IE, "velocity.indicator", None),
    ("signals: no momentum column", edit(lambda f: None, signals=pd.DataFrame(
        {"asset_class": ["equity"], "trend": [1.0]})), IE, "signals.momentum", None),
    ("signals: a class no security loads on", edit(lambda f: None, signals=pd.DataFrame(
        {"asset_class": ["gold"], "momentum": [1.0]})), IE, "signals", "gold"),
    ("sweep: a value that is not a policy", lambda _: orb.sweep(
        {"a": 1}, build(frames()), prices(), processes=1, progress=False), IE, "policies", "a"),
    ("calibrate: a width of 0", lambda _: __import__("optirebal.bands").bands.calibrate(
        build(frames()), orb.Policy(T), prices(), [0.0]), IE, "widths", "0"),
]



def _schedule(orders: dict[str, list[Any]], **market: list[Any]) -> Callable[[Path], object]:
    """An execution schedule of ``orders`` against a one-security market with ``market``'s
    columns changed or added."""
    from optirebal.execution import schedule

    columns = {"price": [50.0], "daily_volatility": [0.02], "daily_volume": [1e6], **market}
    return lambda _: schedule(pd.DataFrame(orders), pd.DataFrame(columns, index=["A"]),
                              risk_aversion=0.0, intervals=4)


ORDERS = {"security": ["A"], "shares": [1_000.0]}
EXECUTION_CASES: list[tuple[str, Callable[[Path], object], type, str, object]] = [
    ("execution: market column misspelled", _schedule(ORDERS, daily_volumne=[1e6]), IE,
     "daily_volumne", None),
    ("execution: orders column misspelled", _schedule({"security": ["A"], "share": [1e3]}), IE,
     "share", None),
    ("execution: volume that is not a number", _schedule(ORDERS, daily_volume=["many"]), IE,
     "daily_volume", "A"),
    ("execution: shares that are not finite", _schedule({"security": ["A"],
                                                         "shares": [np.inf]}), IE, "shares", 0),
]

CASES = (POLICY_CASES + TOML_CASES + FILE_CASES + FRAME_CASES + RISK_CASES + TIME_CASES
         + EXECUTION_CASES)


def test_the_catalogue_is_large_and_distinct() -> None:
    ids = [c[0] for c in CASES + MODEL_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 140


def test_the_baselines_are_accepted(tmp_path: Path) -> None:
    # every case breaks one thing of these
    build(frames())
    orb.Policy(T)
    check_cost_inputs(build(frames()), orb.Policy(T))
    orb.load(_model(tmp_path))
    toml("")(tmp_path)


def _names(error: Exception, expected: type, where: str, row: object) -> None:
    assert type(error) is expected, f"{type(error).__name__}: {error}"
    text = str(error)
    if isinstance(error, orb.InputError):
        assert error.field == where, text
        assert f"field {where!r}" in text
        if row is not None:
            assert error.row == row, text
            assert repr(row) in text
    else:
        assert isinstance(error, orb.PolicyFileError)
        assert error.file, text
        assert error.file in text
        if where:
            assert error.key == where, text
            assert f"key {where!r}" in text


@pytest.mark.parametrize(("make", "error", "where", "row"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_an_error_naming_it(make: Callable[[Path], object], error: type,
                                        where: str, row: object, tmp_path: Path) -> None:
    with pytest.raises(orb.OptirebalError) as info:
        make(tmp_path)
    _names(info.value, error, where, row)


@pytest.mark.parametrize(("make", "error", "where", "row"), [c[1:] for c in MODEL_CASES],
                         ids=[c[0] for c in MODEL_CASES])
def test_bad_model_file_is_an_error_naming_it(make: Callable[[Path], Path], error: type,
                                             where: str, row: object, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(orb.OptirebalError) as info:
        orb.load(path)
    _names(info.value, error, where, row)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("make", [c[1] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_the_command_line_prints_one_line_and_returns_2(make: Callable[[Path], Path],
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["solve", str(make(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("optirebal: ")
    assert "Traceback" not in captured.err and "unexpected" not in captured.err
