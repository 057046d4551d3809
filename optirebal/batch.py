"""`solve_many`: rebalance a batch of portfolios (a book of households) on a process pool or a
Dask cluster, each one isolated, into a :class:`BatchResult`.

How the work is cut: portfolios are sorted by a *shape hint* (their policy, accounts and
securities: what :attr:`~optirebal.program.data.ProblemData.shape_key` is made of, known before
any problem data is built) and cut into chunks of one hint each. A worker process keeps one
:class:`~optirebal.rebalance.Rebalancer` per policy for its lifetime (module state, below), so it
meets each shape once. On a Dask cluster every hint is pinned to one worker, so a shape is met
by one worker only; a local pool cannot pin, so a shape may be met once per process.

Every portfolio ends with a status, never an exception out of the batch:

=================  =============================================================
``solved``         a verified :class:`~optirebal.result.Result`
``infeasible``     :class:`~optirebal.errors.InfeasibleError` (the conflicting constraints)
``input_error``    :class:`~optirebal.errors.InputError` (field and row) or a bad policy file
``solver_error``   :class:`~optirebal.errors.SolverError` (every attempt)
``decode_error``   :class:`~optirebal.errors.DecodeError`
``error``          anything else: a bug in optirebal, with its type (please report it)
=================  =============================================================
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import math
import os
import pickle
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from optirebal.decode.frames import Decision, build_result
from optirebal.errors import (
    DecodeError,
    InfeasibleError,
    InputError,
    OptirebalError,
    PolicyFileError,
    SolverError,
)
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio
from optirebal.rebalance import Rebalancer
from optirebal.result import Result

STATUSES = ("solved", "infeasible", "input_error", "solver_error", "decode_error", "error")
"""Every status a portfolio of a batch can end with, in the order summaries list them."""
TABLES = ("orders", "lots_sold", "costs", "tax", "events")
"""The result tables a :class:`BatchResult` stacks over portfolios (see
:meth:`optirebal.result.Result.to_frames`)."""
ID = "household"
"""Name of the batch id column in every stacked table."""
SERIAL_BELOW = 40
"""Batches smaller than this run in the calling process: starting a pool costs about a second,
more than forty households take to solve."""
SERIAL_CHUNK = 25
"""Households per chunk in the calling process: the progress bar moves, and a book's households
are validated together (:func:`optirebal.datasets.book.build_together`)."""
CHUNKS_PER_WORKER = 8
"""Chunks per worker: enough for the pool to balance uneven chunks and for the progress bar to
move, few enough that each chunk's overhead (about 5 ms) stays small."""


# --- the work of one portfolio, run wherever the batch runs ---------------------------------------


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


_REBALANCERS: dict[bytes, Rebalancer] = {}
"""Per process, one rebalancer per policy (keyed by the pickled policy), so that a worker keeps
its workspaces across the chunks it runs: each worker meets each shape once."""


def _rebalancer(policy: Policy) -> Rebalancer:
    try:
        key = pickle.dumps(policy)
    except (pickle.PicklingError, TypeError, AttributeError):  # extra terms of local classes
        key = f"id {id(policy)}".encode()
    if key not in _REBALANCERS:
        _REBALANCERS[key] = Rebalancer(policy)
    return _REBALANCERS[key]


def _status(error: BaseException) -> str:
    if isinstance(error, InfeasibleError):
        return "infeasible"
    if isinstance(error, InputError | PolicyFileError):
        return "input_error"
    if isinstance(error, SolverError):
        return "solver_error"
    if isinstance(error, DecodeError):
        return "decode_error"
    return "error"


def solve_one(key: Hashable, source: Any, policy: Policy, worker: str = "") -> Outcome:
    """Solve one portfolio of a batch, catching every error into its :class:`Outcome`.

    ``source`` is a :class:`Portfolio`, or anything with a ``portfolio()`` method that builds
    and validates one (a book's :class:`~optirebal.datasets.book.HouseholdFrames`), so that
    validation runs on the worker and a bad household fails there, alone.
    """
    start = time.perf_counter()
    worker = worker or f"pid {os.getpid()}"
    try:
        if isinstance(source, Portfolio):
            portfolio = source
        elif callable(getattr(source, "portfolio", None)):
            portfolio = source.portfolio()
        else:
            raise InputError(f"must be a Portfolio, got {type(source).__name__}",
                             field="portfolios", row=key)
        rebalancer = _rebalancer(policy)
        # households are independent: none starts from another's wash-sale directions, so a
        # result does not depend on which worker ran it or in what order
        rebalancer.forget()
        decision = rebalancer.decide(portfolio)
    except Exception as error:  # isolation: one portfolio's failure is its own outcome
        detail = str(error) if isinstance(error, OptirebalError) else f"{error} (please report it)"
        return Outcome(key, _status(error), None, type(error).__name__, detail,
                       time.perf_counter() - start, worker)
    return Outcome(key, "solved", decision, "", "", time.perf_counter() - start, worker)


def solve_chunk(chunk: Sequence[tuple[Hashable, Any, Policy]], frames: bool = False
                ) -> list[Outcome]:
    """Solve a chunk of ``(id, portfolio or source, policy)`` in order (one task); with
    ``frames``, build each solved outcome's :attr:`Outcome.result` here too (it travels back
    with the decision)."""
    worker = ""
    with contextlib.suppress(ImportError, ValueError):  # off a Dask worker: no name
        from distributed import get_worker

        worker = get_worker().address
    from optirebal.datasets.book import HouseholdFrames, build_together

    # a book's households are validated together: the schema checks cost per call, not per row
    start = time.perf_counter()
    books = [n for n, (_, source, _) in enumerate(chunk) if isinstance(source, HouseholdFrames)]
    built = build_together([chunk[n][1] for n in books])
    sources: list[Any] = [source for _, source, _ in chunk]
    for n, portfolio in zip(books, built, strict=True):
        if portfolio is not None:
            sources[n] = portfolio
    share = (time.perf_counter() - start) / max(1, len(books))
    outcomes = [solve_one(key, source, policy, worker)
                for (key, _, policy), source in zip(chunk, sources, strict=True)]
    outcomes = [dataclasses.replace(o, seconds=o.seconds + share) if n in set(books) else o
                for n, o in enumerate(outcomes)]
    if frames:
        outcomes = [_with_frames(o) for o in outcomes]
    return outcomes


def _with_frames(outcome: Outcome) -> Outcome:
    """The outcome with its result built (cached on it, so it is pickled along); the time is
    added to its seconds. A failure to build the frames is the outcome's status, as the solve's
    own errors are."""
    if outcome.decision is None:
        return outcome
    start = time.perf_counter()
    try:
        result = build_result(outcome.decision)
    except Exception as error:  # isolation, as in solve_one
        detail = str(error) if isinstance(error, OptirebalError) else f"{error} (please report it)"
        return dataclasses.replace(outcome, status=_status(error), decision=None,
                                   error=type(error).__name__, message=detail,
                                   seconds=outcome.seconds + time.perf_counter() - start)
    done = dataclasses.replace(outcome, seconds=outcome.seconds + time.perf_counter() - start)
    done.__dict__["result"] = result  # what Outcome.result would build: cached_property's slot
    return done


# --- the batch ------------------------------------------------------------------------------------


def solve_many(
    portfolios: Mapping[Hashable, Portfolio] | Any,
    policy: Policy | Mapping[Hashable, Policy] | None = None,
    *,
    client: Any = None,
    processes: int | None = None,
    progress: bool = True,
    frames: bool = False,
) -> BatchResult:
    """Rebalance every portfolio of a batch, each on its own, in parallel.

    Parameters
    ----------
    portfolios : mapping of id to Portfolio, or Book
        The portfolios by id (a household id for a book, :func:`optirebal.load_book`). A book
        builds each household's portfolio on the worker that solves it.
    policy : Policy, mapping of id to Policy, or None
        One policy for every portfolio, or one per id (model portfolios). ``None`` for a book:
        each household follows its model's policy.
    client : dask.distributed.Client, optional
        Run on that cluster (``pip install "optirebal[distributed]"``): each shape hint is
        pinned to one worker, which keeps one rebalancer per policy across tasks.
    processes : int, optional
        Without a client: the size of the local process pool (default: the machine's cores;
        ``1`` or a batch of fewer than :data:`SERIAL_BELOW` runs in this process).
    progress : bool
        Show a tqdm progress bar (households done, rate).
    frames : bool
        Build every solved portfolio's :class:`Result` (its frames) on the worker that solved
        it, in parallel, for a caller that will read the stacked tables or every result (the
        ``solve-many`` command). By default a worker sends back the decision only and each
        result is built on first access, in the calling process: a batch read through
        :attr:`BatchResult.statuses` never pays for the frames.

    Returns
    -------
    BatchResult
        Every portfolio's status and result; nothing is dropped.

    Raises
    ------
    InputError
        No policy for an id, or ``processes`` below 1. Errors of single portfolios never raise:
        they are their outcome's status.
    """
    tasks = _tasks(portfolios, policy)
    order = {key: n for n, (key, _, _) in enumerate(tasks)}  # as given
    digests: dict[int, str] = {}
    tasks.sort(key=lambda t: _hint(t, digests))
    start = time.perf_counter()
    if client is not None:
        outcomes = _on_dask(tasks, client, progress, frames)
        mode = f"dask ({len(client.scheduler_info().get('workers', {}))} workers)"
    else:
        if processes is not None and int(processes) < 1:
            raise InputError(f"must be at least 1, got {processes!r}", field="processes")
        workers = int(processes) if processes is not None else (os.cpu_count() or 1)
        workers = min(workers, max(1, len(tasks)))
        if workers == 1 or len(tasks) < SERIAL_BELOW:
            outcomes = _serial(tasks, progress, frames)
            mode = "serial"
        else:
            outcomes = _on_pool(tasks, workers, progress, frames)
            mode = f"{workers} processes"
    outcomes.sort(key=lambda o: order[o.id])
    return BatchResult(outcomes, seconds=time.perf_counter() - start, mode=mode)


def _tasks(portfolios: Any, policy: Any) -> list[tuple[Hashable, Any, Policy]]:
    """``(id, source, policy)`` per portfolio, in the order given."""
    if not isinstance(portfolios, Mapping):
        raise InputError(f"must be a mapping of id to Portfolio or a Book, got "
                         f"{type(portfolios).__name__}", field="portfolios")
    frames = getattr(portfolios, "frames", None)  # a Book: send raw frames, validate remotely
    tasks = []
    for key in portfolios:
        if policy is None:
            if not hasattr(portfolios, "policy_of"):
                raise InputError("give a policy (only a book knows its households' policies)",
                                 field="policy")
            chosen = portfolios.policy_of(key)
        elif isinstance(policy, Policy):
            chosen = policy
        elif isinstance(policy, Mapping):
            if key not in policy:
                raise InputError("no policy for this id", field="policy", row=key)
            chosen = policy[key]
        else:
            raise InputError(f"must be a Policy or a mapping of id to Policy, got "
                             f"{type(policy).__name__}", field="policy")
        if not isinstance(chosen, Policy):
            raise InputError(f"must be a Policy, got {type(chosen).__name__}", field="policy",
                             row=key)
        tasks.append((key, frames(key) if frames is not None else portfolios[key], chosen))
    return tasks


def _hint(task: tuple[Hashable, Any, Policy], digests: dict[int, str]
          ) -> tuple[str, tuple[str, ...]]:
    """The shape hint: the policy (by its pickled content: equal policies share shapes) and the
    account names, which with a shared universe decide a book's shapes."""
    _, source, policy = task
    if id(policy) not in digests:  # model portfolios are a few objects: pickle each once
        digests[id(policy)] = hashlib.blake2b(pickle.dumps(policy), digest_size=8).hexdigest()
    accounts = getattr(source, "accounts", None)
    if not isinstance(accounts, pd.DataFrame):  # not a portfolio: its outcome will say so
        return digests[id(policy)], ()
    names = accounts["account"] if "account" in accounts.columns else accounts.index
    return digests[id(policy)], tuple(str(a) for a in names)


def _groups(tasks: list[tuple[Hashable, Any, Policy]]) -> list[list[tuple[Hashable, Any, Policy]]]:
    """The tasks cut by shape hint (already sorted by it)."""
    groups: list[list[Any]] = []
    last: object = None
    digests: dict[int, str] = {}
    for task in tasks:
        hint = _hint(task, digests)
        if hint != last:
            groups.append([])
            last = hint
        groups[-1].append(task)
    return groups


def _chunks(group: list[Any], size: int) -> Iterator[list[Any]]:
    for at in range(0, len(group), size):
        yield group[at:at + size]


def _bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="household", disable=not progress, smoothing=0.1)


def _serial(tasks: list[Any], progress: bool, frames: bool = False) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with _bar(len(tasks), progress) as bar:
        for group in _groups(tasks):
            for chunk in _chunks(group, SERIAL_CHUNK):
                outcomes.extend(solve_chunk(chunk, frames))
                bar.update(len(chunk))
    return outcomes


def _on_pool(tasks: list[Any], workers: int, progress: bool, frames: bool = False
             ) -> list[Outcome]:
    size = max(1, math.ceil(len(tasks) / (workers * CHUNKS_PER_WORKER)))
    chunks = [c for group in _groups(tasks) for c in _chunks(group, size)]
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=workers) as pool, _bar(len(tasks), progress) as bar:
        futures: list[Future[list[Outcome]]] = [pool.submit(solve_chunk, c, frames)
                                                       for c in chunks]
        for future in as_completed(futures):
            done = future.result()
            outcomes.extend(done)
            bar.update(len(done))
    return outcomes


def _on_dask(tasks: list[Any], client: Any, progress: bool, frames: bool = False
             ) -> list[Outcome]:
    """Each shape hint pinned to one worker (largest hints first, to the least loaded worker),
    cut into chunks so the progress bar moves and a worker's queue stays balanced."""
    from distributed import as_completed as dask_completed

    workers = sorted(client.scheduler_info().get("workers", {}))
    if not workers:
        raise OptirebalError("the Dask cluster has no workers")
    load = dict.fromkeys(workers, 0)
    size = max(1, math.ceil(len(tasks) / (len(workers) * CHUNKS_PER_WORKER)))
    futures = []
    for group in sorted(_groups(tasks), key=len, reverse=True):
        worker = min(workers, key=lambda w: load[w])
        load[worker] += len(group)
        for chunk in _chunks(group, size):
            futures.append(client.submit(solve_chunk, chunk, frames, workers=[worker],
                                         allow_other_workers=False, pure=False))
    outcomes: list[Outcome] = []
    with _bar(len(tasks), progress) as bar:
        for future in dask_completed(futures):
            done = future.result()
            outcomes.extend(done)
            bar.update(len(done))
            future.release()
    return outcomes


# --- the result -----------------------------------------------------------------------------------


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
