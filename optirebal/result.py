"""`Result`: the decoded rebalance as tidy DataFrames, a text summary and an HTML view."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from optirebal.events import events_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Diagnostics:
    """How the answer was found.

    Attributes
    ----------
    solver, status, iterations
        The solver that gave the accepted answer, its status and iteration count.
    compile_seconds, solve_seconds
        Time spent assembling the program from its terms, and in the solver (seconds).
    cache_hit
        True when the call's shape was known to its :class:`optirebal.Rebalancer`.
    residual
        Largest constraint violation of the continuous solution (weights).
    attempts
        Every solver attempt and its status, in order.
    solves
        Number of solves (conflict fixes and minimum-trade repairs solve again).
    fixes
        What was fixed between solves (wash-sale directions, dropped small orders).
    notes
        Anything else a user should know (for example, why nothing was traded).
    compiles
        1 when the call met a new shape (see :class:`optirebal.Rebalancer`), else 0.
    """

    solver: str | None
    status: str
    iterations: int | None
    compile_seconds: float
    solve_seconds: float
    cache_hit: bool
    residual: float
    attempts: tuple[tuple[str, str], ...] = ()
    solves: int = 0
    fixes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    compiles: int = 0


@dataclass(frozen=True, eq=False)
class Result:
    """A rebalance: orders, lots sold, weights, costs, cash, tracking error and diagnostics.

    Attributes
    ----------
    orders : DataFrame
        One row per account and security traded: ``account``, ``security``, ``side``,
        ``shares`` (signed: + buy, - sell), ``price``, ``value`` (signed currency), ``reason``.
    lots_sold : DataFrame
        One row per lot sold (index ``lot``): ``account``, ``security``, ``shares``,
        ``proceeds``, ``basis``, ``gain`` (currency), ``term`` (``short`` or ``long``),
        ``days_to_long_term``.
    weights : DataFrame
        Index ``class``: ``before`` (with flows landed in cash), ``after`` (post-trade, after
        costs), ``target``, ``lower``, ``upper``, ``outside`` (weight beyond the band, 0 inside).
    costs : DataFrame
        Index ``component`` (spread, commission, impact, tax, total): ``value`` (currency) and
        ``bps`` (of pre-trade NAV).
    cash : DataFrame
        Index ``account``: ``before``, ``flow``, ``traded`` (net sale proceeds), ``costs``,
        ``after``, ``reserve`` (currency).
    tracking_error : Series
        ``before`` and ``after``: annualized ex-ante tracking error (fraction).
    diagnostics : Diagnostics
    nav : float
        Pre-trade net asset value (currency).
    tax : DataFrame or None
        Index ``item`` (see :data:`optirebal.decode.tax_report.TAX_ITEMS`), column ``value``: the
        year-to-date and realized net short- and long-term gains, the exact US-netting tax of the
        year before and after the trades and its difference ``tax_exact`` (whichever model chose
        the trades), the per-lot linear figure, amounts taxed at each rate, the ordinary offset
        used, the carryover by character, and the losses disallowed by wash sales (currency;
        ``region`` 1 to 5). ``lots_sold`` then also has ``wash_sale``, ``disallowed_loss``,
        ``recognized_gain`` and ``wash_permanent``.
    synthetic : DataFrame or None
        The derivative overlay's trades, one row per instrument held or traded (index
        ``instrument``): ``kind``, ``contracts_before``, ``contracts`` (signed, whole),
        ``contracts_after``, ``price``, ``multiplier``, ``notional`` and ``notional_after``
        (currency), ``residual_notional`` (the program's notional minus the whole contracts'),
        ``exposure_<class>`` (post-trade, currency), ``margin``, ``spread_cost``,
        ``carry_cost`` (currency) and ``reason``; ``None`` when the portfolio has no
        derivatives. Costs then include ``derivative_spread`` and ``carry`` (over the horizon),
        and ``cash`` a ``margin`` column.
    events : DataFrame
        One row per repair, breach, fix, default or fallback (:mod:`optirebal.events`):
        ``kind``, ``account``, ``security`` (or wash-sale group), ``asset_class``, ``value``,
        ``limit`` (currency or weights, by kind) and ``message``. ``diagnostics.notes`` and
        ``diagnostics.fixes`` are its messages.
    """

    orders: pd.DataFrame
    lots_sold: pd.DataFrame
    weights: pd.DataFrame
    costs: pd.DataFrame
    cash: pd.DataFrame
    tracking_error: pd.Series
    diagnostics: Diagnostics
    nav: float
    objective: float = field(default=float("nan"))
    tax: pd.DataFrame | None = None  # exact tax of the final trades (optirebal.decode.tax_report)
    synthetic: pd.DataFrame | None = None  # derivative trades (decode.contracts.synthetic_frame)
    events: pd.DataFrame = field(default_factory=lambda: events_frame(()))

    @property
    def traded(self) -> bool:
        """True when at least one order was placed."""
        return len(self.orders) > 0

    @property
    def turnover(self) -> float:
        """Gross traded value over pre-trade NAV (fraction)."""
        return float(self.orders["value"].abs().sum() / self.nav) if self.traded else 0.0

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Every table of the result, by name, in a fixed order: ``orders``, ``lots_sold``,
        ``weights``, ``costs``, ``cash``, ``tracking_error``, ``tax`` and ``synthetic`` (when
        the result has them), ``events`` and ``diagnostics`` (one row). Indexes become columns,
        so each frame stands alone (JSON, CSV, Parquet). The summary, the HTML view and the
        command line's files are all built from it."""
        d = self.diagnostics
        frames = {
            "orders": self.orders,
            "lots_sold": self.lots_sold.reset_index(),
            "weights": self.weights.reset_index(),
            "costs": self.costs.reset_index(),
            "cash": self.cash.reset_index(),
            "tracking_error": self.tracking_error.rename_axis("when").reset_index(),
        }
        if self.tax is not None:
            frames["tax"] = self.tax.reset_index()
        if self.synthetic is not None:
            frames["synthetic"] = self.synthetic.reset_index()
        frames["events"] = self.events.reset_index(drop=True)
        frames["diagnostics"] = pd.DataFrame([{
            "solver": d.solver, "status": d.status, "iterations": d.iterations,
            "compile_seconds": d.compile_seconds, "solve_seconds": d.solve_seconds,
            "compiles": d.compiles, "solves": d.solves, "residual": d.residual,
            "objective": self.objective, "nav": self.nav,
            "attempts": "; ".join(f"{s}: {m}" for s, m in d.attempts)}])
        return frames

    def to_parquet(self, folder: str | Path) -> list[Path]:
        """Write every table of :meth:`to_frames` to ``folder`` (created if missing) as
        ``<table>.parquet``; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in self.to_frames().items():
            path = folder / f"{name}.parquet"
            frame.to_parquet(path, index=False)
            paths.append(path)
        return paths

    def summary(self) -> str:
        """A plain-text report of :meth:`to_frames`: the head line, fixes and notes, then every
        table."""
        d = self.diagnostics
        head = [
            f"optirebal result: NAV {self.nav:,.2f}, {len(self.orders)} orders, "
            f"turnover {self.turnover:.2%}",
            f"tracking error {self.tracking_error['before']:.4%} -> "
            f"{self.tracking_error['after']:.4%}; cost {self.costs.loc['total', 'value']:,.2f} "
            f"({self.costs.loc['total', 'bps']:.2f} bp)",
            f"solver {d.solver} {d.status} in {d.iterations} iterations, "
            f"compile {d.compile_seconds:.3f} s, solve {d.solve_seconds:.3f} s, "
            f"cache {'hit' if d.cache_hit else 'miss'}",
        ]
        head += [f"fix: {f}" for f in d.fixes] + [f"note: {n}" for n in d.notes]
        parts = ["\n".join(head)]
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            for name, frame in self._tables().items():
                parts += [_TITLES[name], _text(frame)]
        return "\n\n".join(parts)

    def _tables(self) -> dict[str, pd.DataFrame]:
        """The tables shown to people, formatted per column (:func:`present`):
        :meth:`to_frames` without the diagnostics and events, which the head line and the notes
        already say, and without a tax table that is all zeros (no taxable account)."""
        frames = self.to_frames()
        if "tax" in frames:
            amounts = frames["tax"].loc[frames["tax"]["item"] != "region", "value"]
            if not amounts.abs().gt(0).any():
                del frames["tax"]
        return {name: present(name, frame) for name, frame in frames.items()
                if name not in ("diagnostics", "events")}

    def plot(self) -> Figure:
        """Weights before and after against their bands and targets, and the costs in bp.

        Needs matplotlib (``pip install "optirebal[plots]"``).

        Returns
        -------
        matplotlib.figure.Figure
            Two axes: weights by class (bands as bars, target as a tick, before and after as
            points), and costs by component (bp of NAV).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            from optirebal.errors import OptirebalError

            raise OptirebalError('Result.plot needs matplotlib: pip install "optirebal[plots]"'
                                 ) from None
        w = self.weights
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(w) + 2.5),
                                          gridspec_kw={"width_ratios": [2, 1]})
        rows = range(len(w))
        left.barh(rows, (w["upper"] - w["lower"]) * 100, left=w["lower"] * 100, height=0.5,
                  color="0.88", label="band")
        left.scatter(w["target"] * 100, rows, marker="|", s=300, color="0.3", label="target")
        left.scatter(w["before"] * 100, rows, color="tab:orange", label="before", zorder=3)
        left.scatter(w["after"] * 100, rows, color="tab:blue", label="after", zorder=3)
        left.set_yticks(list(rows), list(w.index))
        left.set_xlabel("weight (% of NAV)")
        left.legend(loc="lower right", fontsize="small")
        costs = self.costs["bps"].drop("total")
        right.barh(range(len(costs)), costs.to_numpy(), color="tab:gray")
        right.set_yticks(list(range(len(costs))), list(costs.index))
        right.set_xlabel(f"cost (bp of NAV; total {self.costs.loc['total', 'bps']:.2f})")
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return (f"Result(nav={self.nav:,.2f}, orders={len(self.orders)}, "
                f"turnover={self.turnover:.4f}, solver={self.diagnostics.solver!r})")

    def _repr_html_(self) -> str:
        d = self.diagnostics
        blocks = [f"<h4>optirebal result</h4><p>NAV {self.nav:,.2f}; {len(self.orders)} orders; "
                  f"tracking error {self.tracking_error['before']:.4%} &rarr; "
                  f"{self.tracking_error['after']:.4%}; {d.solver} {d.status}, "
                  f"cache {'hit' if d.cache_hit else 'miss'}</p>"]
        if len(self.events):
            blocks.append("<ul>" + "".join(f"<li>{html.escape(message)}</li>"
                                           for message in self.events["message"]) + "</ul>")
        for name, frame in self._tables().items():
            blocks.append(f"<h5>{_TITLES[name]}</h5>" + frame.to_html(index=False))
        return "\n".join(blocks)


_TITLES = {"orders": "Orders", "lots_sold": "Lots sold", "weights": "Weights", "costs": "Costs",
           "cash": "Cash", "tracking_error": "Tracking error", "tax": "Tax",
           "synthetic": "Synthetic trades"}


SHARE_COLUMNS = {"shares", "contracts", "contracts_before", "contracts_after"}
WEIGHT_COLUMNS = {"before", "after", "target", "lower", "upper", "outside"}
TOTALS = {"orders": ("value",), "lots_sold": ("shares", "proceeds", "basis", "gain",
                                              "disallowed_loss", "recognized_gain"),
          "cash": ("before", "flow", "traded", "costs", "after", "reserve")}


def present(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A table of the result as text, column by column: shares whole when they are (else 4
    decimals), weights and tracking error in %, bp with 2 decimals, money with separators and
    cents (never ``-0.00``), and a totals row for orders, lots sold and cash."""
    out = frame.copy()
    total: dict[str, str] = {c: "" for c in out.columns}
    if name in TOTALS and len(out):
        total[out.columns[0]] = "total"
    for column in out.columns:
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        if column in SHARE_COLUMNS:
            formatter: Callable[[float], str] = _shares
        elif (name == "weights" and column in WEIGHT_COLUMNS) or name == "tracking_error":
            formatter = "{:.2%}".format
        elif column == "bps":
            formatter = "{:.2f}".format
        else:
            formatter = _money
        out[column] = [("" if pd.isna(v) else formatter(float(v) + 0.0)) for v in values]
        if name in TOTALS and column in TOTALS[name] and len(out):
            total[column] = formatter(float(values.sum()) + 0.0)
    if name == "tax":  # the region is a number of its own
        at = out.index[out["item"] == "region"]
        out.loc[at, "value"] = [str(int(float(frame.loc[i, "value"]))) for i in at]
    if name in TOTALS and len(out):
        out = pd.concat([out.astype(str), pd.DataFrame([total])], ignore_index=True)
    return out


def _shares(value: float) -> str:
    whole = round(value)
    return f"{whole:,}" if abs(value - whole) < 1e-9 else f"{value:,.4f}"


def _money(value: float) -> str:
    text = f"{value:,.2f}"
    return "0.00" if text == "-0.00" else text


def _text(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if len(frame) else "(none)"
