"""What a batch returns: each portfolio's :class:`Outcome`, and the :class:`BatchResult` that
stacks their tables (:func:`optirebal.batch.solve_many` runs the batch)."""

from __future__ import annotations

import html
import io
import pickle
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from optirebal.decode.frames import Decision, build_result
from optirebal.errors import InputError, OptirebalError
from optirebal.portfolio import Portfolio
from optirebal.result import Result

STATUSES = ("solved", "infeasible", "input_error", "solver_error", "decode_error", "error")
"""Every status a portfolio of a batch can end with, in the order summaries list them."""
TABLES = ("orders", "lots_sold", "costs", "tax", "events")
"""The result tables a :class:`BatchResult` stacks over portfolios (see
:meth:`optirebal.result.Result.to_frames`)."""
ID = "household"
"""Name of the batch id column in every stacked table."""


@dataclass(frozen=True)
class Figures:
    """The figures :attr:`BatchResult.statuses` reads of a solved portfolio, kept beside its
    packed decision so that a batch's statuses never unpack one."""

    orders: int
    nav: float  # currency, before the trades
    turnover: float  # fraction of NAV
    compiles: int
    solves: int

    @classmethod
    def of(cls, decision: Decision) -> Figures:
        return cls(decision.n_orders, decision.nav, decision.turnover,
                   decision.diagnostics.compiles, decision.diagnostics.solves)


class _Same:
    """The default of :meth:`Outcome.replace` where None is a value."""


SAME = _Same()


class Outcome:
    """What became of one portfolio of a batch.

    A worker sends back the :class:`~optirebal.decode.frames.Decision` (the verified trades as
    arrays), not the :class:`~optirebal.result.Result`: building a result's frames cost as much
    as the solve, and a batch mostly wants its stacked tables, which :class:`BatchResult` builds
    for many decisions at once. :attr:`result` builds the full result on first access.

    The decisions of a chunk travel packed (:func:`pack_decisions`): one ``bytes`` object,
    unpickled in the gathering process on the first access of any of their :attr:`decision` or
    :attr:`result`. A batch read through its :attr:`BatchResult.statuses` never unpickles one
    (:attr:`figures` holds what they read); the objects a chunk's decisions share (the
    universe's frames, the policy) are pickled once, where one pickle per decision made the
    gathering process's unpickling five times dearer (1.9 ms against 0.35 per household).

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
    figures : Figures or None
        What :attr:`BatchResult.statuses` reads of the decision (None when not solved).
    """

    def __init__(self, id: Hashable, status: str, decision: Decision | None, error: str,
                 message: str, seconds: float, worker: str, *,
                 result: Result | None = None, figures: Figures | None = None) -> None:
        self.id, self.status, self.error, self.message = id, status, error, message
        self.seconds, self.worker = seconds, worker
        self.figures = None if decision is None else figures or Figures.of(decision)
        self._pack = _Pack([(decision, result)])
        self._at = 0

    def replace(self, *, status: str | None = None, decision: Decision | _Same | None = SAME,
                error: str | None = None, message: str | None = None,
                seconds: float | None = None, result: Result | _Same | None = SAME
                ) -> Outcome:
        """A copy with the fields given changed."""
        kept_decision, kept_result = self._pack[self._at]
        same = isinstance(decision, _Same)
        return Outcome(self.id, self.status if status is None else status,
                       kept_decision if isinstance(decision, _Same) else decision,
                       self.error if error is None else error,
                       self.message if message is None else message,
                       self.seconds if seconds is None else seconds, self.worker,
                       result=kept_result if isinstance(result, _Same) else result,
                       figures=self.figures if same else None)

    @property
    def decision(self) -> Decision | None:
        return self._pack[self._at][0]

    @property
    def unpacked(self) -> bool:
        """Whether this outcome's decision has been unpickled in this process (its chunk's
        pack is read on first access)."""
        return self._pack.unpacked

    @property
    def result_built(self) -> bool:
        """Whether :attr:`result` is built (on the worker with ``frames=True``, or on access);
        unpacks the decision."""
        return self._pack[self._at][1] is not None

    @property
    def result(self) -> Result | None:
        """The :class:`Result` when solved (built on first access, then kept), else None: equal
        to what :func:`optirebal.solve` returns for the portfolio."""
        decision, result = self._pack[self._at]
        if result is None and decision is not None:
            result = build_result(decision)
            self._pack[self._at] = (decision, result)
        return result

    def __repr__(self) -> str:
        return (f"Outcome({self.id!r}, {self.status!r}, error={self.error!r}, "
                f"message={self.message!r}, seconds={self.seconds:.4f}, worker={self.worker!r})")


def pack_decisions(outcomes: Sequence[Outcome], portfolios: Sequence[Portfolio | None] = ()
                   ) -> list[Outcome]:
    """The outcomes with their decisions (and results built) in one pack, pickled as one
    ``bytes`` object and unpickled together on first access (:class:`Outcome`).

    ``portfolios``: the chunk's portfolios, by position, as built from inputs the receiving
    process keeps (a batch's tasks). A decision's portfolio among them is pickled as its
    position only, and :func:`attach_portfolios` gives the receiver's own back: a worker does
    not send back what it was sent (the portfolio was three quarters of a decision's pickle,
    0.6 of 0.8 ms per household)."""
    pack = _Pack([o._pack[o._at] for o in outcomes], portfolios)
    for n, o in enumerate(outcomes):
        o._pack, o._at = pack, n
    return list(outcomes)


def attach_portfolios(outcomes: Sequence[Outcome],
                      portfolios: Callable[[], Sequence[Portfolio | None]]) -> None:
    """Where outcomes received from a worker find the portfolios :func:`pack_decisions` left
    out: ``portfolios()`` gives them by position in the chunk, built from the receiver's own
    inputs; called once, when a decision is first read."""
    for outcome in outcomes:
        outcome._pack.portfolios = portfolios


class _Pack:
    """Decisions and results, by position, pickled as one ``bytes`` object (which Dask or a
    process pool moves as a single buffer) and unpickled on first access."""

    def __init__(self, items: list[tuple[Decision | None, Result | None]],
                 kept: Sequence[Portfolio | None] = ()) -> None:
        self._items: list[tuple[Decision | None, Result | None]] | None = items
        self._packed: bytes | None = None
        # sending: id of a portfolio the receiver keeps -> its position; received: whether the
        # packed bytes name portfolios by position, and where to find them
        self._kept = {id(p): n for n, p in enumerate(kept) if p is not None}
        self._refers = False
        self.portfolios: Callable[[], Sequence[Portfolio | None]] | None = None

    @property
    def unpacked(self) -> bool:
        return self._items is not None

    def __getitem__(self, n: int) -> tuple[Decision | None, Result | None]:
        if self._items is None:
            assert self._packed is not None
            kept: Sequence[Portfolio | None] = ()
            if self._refers:
                if self.portfolios is None:
                    raise OptirebalError("these outcomes name portfolios their receiver keeps, "
                                         "and none were attached (attach_portfolios)")
                kept = self.portfolios()
            self._items = _Attaching(io.BytesIO(self._packed), kept).load()
            self._packed, self._refers = None, False
        return self._items[n]

    def __setitem__(self, n: int, item: tuple[Decision | None, Result | None]) -> None:
        self[n]  # unpacked first
        assert self._items is not None
        self._items[n] = item

    def __getstate__(self) -> dict[str, Any]:
        if self._items is None and self._refers:  # received, not read, pickled again: whole
            self[0]
        state: dict[str, Any] = {"_items": None, "_packed": self._packed, "_kept": {},
                                 "portfolios": None, "_refers": False}
        if self._items is not None:
            buffer = io.BytesIO()
            _Referring(buffer, self._kept).dump(self._items)
            state.update(_packed=buffer.getvalue(), _refers=bool(self._kept))
        return state


class _Referring(pickle.Pickler):
    """Pickles a portfolio of ``kept`` (ids to positions) as its position."""

    def __init__(self, file: io.BytesIO, kept: Mapping[int, int]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.kept = kept

    def persistent_id(self, obj: Any) -> int | None:  # called for every object: kept short
        return self.kept.get(id(obj)) if type(obj) is Portfolio else None


class _Attaching(pickle.Unpickler):
    """Unpickles what :class:`_Referring` pickled, with the receiver's portfolios."""

    def __init__(self, file: io.BytesIO, kept: Sequence[Portfolio | None]) -> None:
        super().__init__(file)
        self.kept = kept

    def persistent_load(self, position: Any) -> Portfolio:
        portfolio = self.kept[position] if 0 <= position < len(self.kept) else None
        if portfolio is None:
            raise OptirebalError(f"no portfolio attached at position {position} of the chunk")
        return portfolio


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
            f = o.figures  # read without unpacking the decision or building its frames
            rows.append({
                ID: o.id, "status": o.status, "error": o.error, "message": o.message,
                "seconds": o.seconds, "worker": o.worker,
                "orders": f.orders if f is not None else 0,
                "nav": f.nav if f is not None else float("nan"),
                "turnover": f.turnover if f is not None else float("nan"),
                "compiles": f.compiles if f is not None else 0,
                "solves": f.solves if f is not None else 0})
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
        self._solved = {o.id: o for o in outcomes if o.figures is not None}

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
