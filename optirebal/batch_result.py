"""What a batch returns: each portfolio's :class:`Outcome`, and the :class:`BatchResult` that
stacks their tables (:func:`optirebal.batch.solve_many` runs the batch)."""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from optirebal.decode.frames import Decision, build_result
from optirebal.errors import InputError
from optirebal.result import Result

STATUSES = ("solved", "infeasible", "input_error", "solver_error", "decode_error", "error")
"""Every status a portfolio of a batch can end with, in the order summaries list them."""
TABLES = ("orders", "lots_sold", "costs", "tax", "events")
"""The result tables a :class:`BatchResult` stacks over portfolios (see
:meth:`optirebal.result.Result.to_frames`)."""
ID = "household"
"""Name of the batch id column in every stacked table."""


@dataclass(frozen=True)
class Outcome:
    """What became of one portfolio of a batch.

    A worker sends back the :class:`~optirebal.decode.frames.Decision` (the verified trades as
    arrays), not the :class:`~optirebal.result.Result`: building a result's frames cost as much
    as the solve, and a batch mostly wants its stacked tables, which :class:`BatchResult` builds
    for many decisions at once. :attr:`result` builds the full result on first access.

    Attributes
    ----------
    id : hashable
        The portfolio's id in the batch.
    status : str
        One of :data:`STATUSES`.
    decision : Decision or None
        The verified trades when ``status == "solved"``.
    error : str
        The error's type, for any other status (``""`` when solved).
    message : str
        The error's message (``""`` when solved).
    seconds : float
        Wall time of this portfolio in its worker, validation included (seconds); the result's
        frames, built later, are not in it.
    worker : str
        The worker that ran it (Dask worker address, or ``pid N``).
    """

    id: Hashable
    status: str
    decision: Decision | None
    error: str
    message: str
    seconds: float
    worker: str

    @cached_property
    def result(self) -> Result | None:
        """The :class:`Result` when solved (built on first access, then kept), else None: equal
        to what :func:`optirebal.solve` returns for the portfolio."""
        return None if self.decision is None else build_result(self.decision)


class BatchResult:
    """The outcome of :func:`solve_many`: every portfolio's status, and its result's tables
    stacked over the batch with a ``household`` column (the batch id) first.

    Attributes
    ----------
    outcomes : list of Outcome
        One per portfolio, in the order given.
    results : mapping
        The :class:`Result` of every solved portfolio, by id (each built on first access).
    seconds : float
        Wall time of the batch (seconds).
    mode : str
        Where it ran (``serial``, ``N processes``, ``dask (N workers)``).
    """

    def __init__(self, outcomes: Iterable[Outcome], *, seconds: float = float("nan"),
                 mode: str = "") -> None:
        self.outcomes = list(outcomes)
        self.results: Mapping[Hashable, Result] = _Results(self.outcomes)
        self.seconds = seconds
        self.mode = mode

    def __len__(self) -> int:
        return len(self.outcomes)

    def __getitem__(self, key: Hashable) -> Result:
        """The result of a solved portfolio; a :class:`KeyError` names the status otherwise."""
        if key in self.results:
            return self.results[key]
        status = self.statuses["status"].get(key, "not in the batch")
        raise KeyError(f"{key!r}: {status}")

    @cached_property
    def statuses(self) -> pd.DataFrame:
        """One row per portfolio (index ``household``): ``status``, ``error`` (type),
        ``message``, ``seconds`` (in its worker), ``worker``, and from the result ``orders``,
        ``nav``, ``turnover`` (fraction), ``compiles`` and ``solves`` (0 when not solved)."""
        rows = []
        for o in self.outcomes:
            d = o.decision  # the figures of its result, read without building its frames
            rows.append({
                ID: o.id, "status": o.status, "error": o.error, "message": o.message,
                "seconds": o.seconds, "worker": o.worker,
                "orders": d.n_orders if d is not None else 0,
                "nav": d.nav if d is not None else float("nan"),
                "turnover": d.turnover if d is not None else float("nan"),
                "compiles": d.diagnostics.compiles if d is not None else 0,
                "solves": d.diagnostics.solves if d is not None else 0})
        columns = [ID, "status", "error", "message", "seconds", "worker", "orders", "nav",
                   "turnover", "compiles", "solves"]
        return pd.DataFrame(rows, columns=columns).set_index(ID)

    def summary(self) -> pd.Series:
        """How many portfolios ended with each status (every status listed, zeros included),
        and ``total``."""
        counts = self.statuses["status"].value_counts()
        out = pd.Series({s: int(counts.get(s, 0)) for s in STATUSES}, name="portfolios")
        out["total"] = len(self.outcomes)
        return out

    def failed(self) -> pd.DataFrame:
        """The portfolios that did not solve: ``status``, ``error`` and ``message``."""
        frame = self.statuses
        return frame.loc[frame["status"] != "solved", ["status", "error", "message"]]

    def compiles_per_worker(self) -> pd.Series:
        """New shapes met per worker (sum of ``diagnostics.compiles``)."""
        return self.statuses.groupby("worker")["compiles"].sum().rename("compiles")

    def table(self, name: str) -> pd.DataFrame:
        """One of :data:`TABLES` stacked over the solved portfolios, ``household`` first."""
        if name not in TABLES:
            raise InputError(f"unknown table; known: {list(TABLES)}", field="table", row=name)
        return self._tables[name]

    @property
    def orders(self) -> pd.DataFrame:
        """Every order: ``household`` and the columns of :attr:`Result.orders`."""
        return self.table("orders")

    @property
    def lots_sold(self) -> pd.DataFrame:
        """Every lot sold: ``household``, ``lot`` and the columns of
        :attr:`Result.lots_sold`."""
        return self.table("lots_sold")

    @property
    def costs(self) -> pd.DataFrame:
        """Costs per portfolio: ``household``, ``component``, ``value`` (currency), ``bps``."""
        return self.table("costs")

    @property
    def tax(self) -> pd.DataFrame:
        """Tax report per portfolio: ``household``, ``item``, ``value``."""
        return self.table("tax")

    @property
    def events(self) -> pd.DataFrame:
        """Every event: ``household`` and the columns of :attr:`Result.events`."""
        return self.table("events")

    @cached_property
    def _tables(self) -> dict[str, pd.DataFrame]:
        parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
        for key, result in self.results.items():
            frames = result.to_frames()
            for name in TABLES:
                frame = frames.get(name)
                if frame is not None and len(frame):
                    parts[name].append(frame.assign(**{ID: key}))
        out = {}
        for name in TABLES:
            if parts[name]:
                frame = pd.concat(parts[name], ignore_index=True)
                out[name] = frame[[ID, *[c for c in frame.columns if c != ID]]]
            else:
                out[name] = pd.DataFrame(columns=[ID])
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every stacked table and ``statuses`` (index as a column), by name."""
        return {**{name: self.table(name) for name in TABLES},
                "statuses": self.statuses.reset_index()}

    def to_parquet(self, path: str | Path, table: str = "orders") -> Path:
        """Write one table (default the orders) to a Parquet file."""
        path = Path(path)
        _frame_for_file(self.tables()[table] if table == "statuses" else self.table(table)
                        ).to_parquet(path, index=False)
        return path

    def to_csv(self, path: str | Path, table: str = "orders") -> Path:
        """Write one table (default the orders) to a CSV file (12 significant digits)."""
        path = Path(path)
        frame = self.tables()[table] if table == "statuses" else self.table(table)
        frame.to_csv(path, index=False, float_format="%.12g")
        return path

    def write(self, folder: str | Path, format: str = "parquet") -> list[Path]:
        """Write every table of :meth:`tables` to ``folder`` (created) as ``NAME.parquet`` or
        ``NAME.csv``; returns the files written."""
        if format not in ("parquet", "csv"):
            raise InputError(f"must be 'parquet' or 'csv', got {format!r}", field="format")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        writer: Callable[[Path, str], Path] = (self.to_parquet if format == "parquet"
                                               else self.to_csv)
        return [writer(folder / f"{name}.{format}", name) for name in self.tables()]

    def __repr__(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.summary().items() if n and s != "total")
        return (f"BatchResult({len(self)} portfolios: {counts or 'none'}; "
                f"{len(self.orders)} orders; {self.seconds:.1f} s, {self.mode})")

    def _repr_html_(self) -> str:
        summary = self.summary().to_frame().T.to_html(index=False)
        blocks = [f"<h4>optirebal batch</h4><p>{len(self)} portfolios in {self.seconds:.1f} s "
                  f"({html.escape(self.mode)}); {len(self.orders)} orders</p>", summary]
        failed = self.failed()
        if len(failed):
            blocks.append("<h5>Failed</h5>" + failed.head(20).to_html())
            if len(failed) > 20:
                blocks.append(f"<p>and {len(failed) - 20} more: see <code>failed()</code></p>")
        if len(self.orders):
            blocks.append("<h5>Orders (first 20)</h5>"
                          + self.orders.head(20).to_html(index=False))
        return "\n".join(blocks)


class _Results(Mapping[Hashable, Result]):
    """The results of the solved outcomes by id, each built on first access
    (:attr:`Outcome.result`)."""

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self._solved = {o.id: o for o in outcomes if o.decision is not None}

    def __getitem__(self, key: Hashable) -> Result:
        result = self._solved[key].result
        assert result is not None
        return result

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._solved)

    def __len__(self) -> int:
        return len(self._solved)


def _frame_for_file(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of mixed types (ids, empty tables) as text, which Parquet needs."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = out[column]
            if not values.map(lambda v: v is None or isinstance(v, str)).all():
                out[column] = values.map(lambda v: v if v is None else str(v))
    return out
