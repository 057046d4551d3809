"""`solve_many`: rebalance a batch of portfolios (a book of households) on a process pool or a
Dask cluster, each one isolated, into a :class:`BatchResult`.

How the work is cut: portfolios are sorted by a *shape hint* (their policy, accounts and
securities: what :attr:`~optirebal.program.data.ProblemData.shape_key` is made of, known before
any problem data is built). A worker process keeps one :class:`~optirebal.rebalance.Rebalancer`
per policy for its lifetime (module state, below), so it meets each shape once. On a Dask
cluster each hint is cut into chunks placed on one worker, so a shape is met by that worker,
and by another only when it steals a chunk of it (Dask's work stealing keeps the end of a batch
balanced). A local pool cannot place tasks: it takes the sorted batch in ranges of decreasing
size (:func:`_guided`), which its workers inherit when they fork (:func:`_on_pool`).

What travels: a worker sends back each chunk's decisions packed together, without the
portfolios the gathering process keeps (``inputs_kept`` of :func:`solve_chunk`): that process
attaches its own when a decision is first read.

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
import hashlib
import math
import multiprocessing
import os
import pickle
import sys
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

import pandas as pd

from optirebal.batch_result import (
    ID,
    STATUSES,
    TABLES,
    BatchResult,
    Outcome,
    attach_portfolios,
    pack_decisions,
)
from optirebal.decode.frames import build_result
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

SERIAL_BELOW = 40
"""Batches smaller than this run in the calling process: starting a pool costs about a second,
more than forty households take to solve."""
SERIAL_CHUNK = 64
"""Households per chunk in the calling process: a book's households are validated together
(:func:`optirebal.datasets.book.build_together`), whose schema checks cost per chunk (about
8 ms a frame) and not per household; the progress bar moves about once a second."""
SMALLEST_CHUNK = 16
"""The smallest chunk of a local pool (:func:`_guided`): its fixed cost (about 15 ms) stays
below a millisecond per household."""
CHUNKS_PER_WORKER = 8
"""Chunks per Dask worker: enough for the cluster to balance uneven chunks and for the progress
bar to move, few enough that each chunk's overhead (about 5 ms) stays small."""


__all__ = ["ID", "STATUSES", "TABLES", "BatchResult", "Outcome", "solve_chunk", "solve_many",
           "solve_one"]


# --- the work of one portfolio, run wherever the batch runs ---------------------------------------


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


def solve_chunk(chunk: Sequence[tuple[Hashable, Any, Policy]], frames: bool = False,
                inputs_kept: bool = False) -> list[Outcome]:
    """Solve a chunk of ``(id, portfolio or source, policy)`` in order (one task); with
    ``frames``, build each solved outcome's :attr:`Outcome.result` here too (it travels back
    with the decision). With ``inputs_kept``, the process that gathers the outcomes keeps the
    chunk: the portfolios given or built here are not pickled back with the decisions, and
    that process attaches its own (:func:`_attach`)."""
    worker = ""
    if "distributed" in sys.modules:  # a Dask worker has imported it; a pool need not (0.4 s)
        with contextlib.suppress(ValueError):  # off a Dask worker: no name
            worker = sys.modules["distributed"].get_worker().address
    start = time.perf_counter()
    sources = _sources(chunk)
    built = [n for n, (_, source, _) in enumerate(chunk) if not isinstance(source, Portfolio)]
    share = (time.perf_counter() - start) / max(1, len(built))  # the validation, shared
    outcomes = [solve_one(key, source, policy, worker)
                for (key, _, policy), source in zip(chunk, sources, strict=True)]
    for n in built:
        outcomes[n] = outcomes[n].replace(seconds=outcomes[n].seconds + share)
    if frames:
        outcomes = [_with_frames(o) for o in outcomes]
    return pack_decisions(outcomes, _portfolios(sources) if inputs_kept else ())


def _sources(chunk: Sequence[tuple[Hashable, Any, Policy]]) -> list[Any]:
    """Each task's portfolio or source, with a book's households built into portfolios where
    they pass their checks validated together (the schema checks cost per call, not per row);
    one that fails stays a source, built alone by :func:`solve_one` to name its error."""
    from optirebal.datasets.book import HouseholdFrames, build_together

    sources: list[Any] = [source for _, source, _ in chunk]
    books = [n for n, source in enumerate(sources) if isinstance(source, HouseholdFrames)]
    for n, portfolio in zip(books, build_together([sources[n] for n in books]), strict=True):
        if portfolio is not None:
            sources[n] = portfolio
    return sources


def _portfolios(sources: Sequence[Any]) -> list[Portfolio | None]:
    return [source if isinstance(source, Portfolio) else None for source in sources]


def _attach(outcomes: list[Outcome], chunk: Sequence[tuple[Hashable, Any, Policy]]) -> None:
    """The gathering side of ``inputs_kept`` (:func:`solve_chunk`): outcomes received from a
    worker find their portfolios in ``chunk``, built again here (the same checks on the same
    frames give the same portfolio) when a decision is first read; a batch read through its
    statuses never builds them."""
    attach_portfolios(outcomes, lambda: _portfolios(_sources(chunk)))


def solve_packed_chunk(packed: bytes, frames: bool = False) -> bytes:
    """:func:`solve_chunk` on a chunk pickled into one ``bytes`` (:func:`_pack`), its outcomes
    pickled back into one: what a Dask task takes and returns. Dask serializes every array of
    a structure as a buffer of its own, at a cost per buffer; a chunk holds thousands of them
    (the columns of its households' frames), and one opaque bytes object makes the transfer a
    copy. The chunk's decisions are packed together inside (:func:`pack_decisions`), without
    the portfolios the client keeps (``inputs_kept``)."""
    return _pack(solve_chunk(_arrived(pickle.loads(packed)), frames, inputs_kept=True))


def _pack(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _travelling(chunk: list[tuple[Hashable, Any, Policy]]) -> Any:
    """``chunk`` as it travels to a Dask worker: a book's households with their frames stacked,
    one frame per kind (:func:`~optirebal.datasets.book.stack_households`), since pickling and
    unpickling cost per frame (the book's 1,000 households: 0.40 s to pickle and 0.69 s to
    unpickle one by one, 0.18 s and 0.22 s stacked, slicing back included); as it is when they
    cannot be stacked. :func:`_arrived` turns it back into the chunk."""
    from optirebal.datasets.book import HouseholdFrames, stack_households

    sources = [source for _, source, _ in chunk]
    if all(isinstance(source, HouseholdFrames) for source in sources):
        stacked = stack_households(sources)
        if stacked is not None:
            return [(key, policy) for key, _, policy in chunk], stacked
    return chunk


def _arrived(travelled: Any) -> list[tuple[Hashable, Any, Policy]]:
    """The chunk that :func:`_travelling` sent."""
    if isinstance(travelled, tuple):
        tasks, stacked = travelled
        return [(key, source, policy) for (key, policy), source
                in zip(tasks, stacked.households(), strict=True)]
    return travelled


def _with_frames(outcome: Outcome) -> Outcome:
    """The outcome with its result built (kept on it, so it is pickled along); the time is
    added to its seconds. A failure to build the frames is the outcome's status, as the solve's
    own errors are."""
    if outcome.decision is None:
        return outcome
    start = time.perf_counter()
    try:
        result = build_result(outcome.decision)
    except Exception as error:  # isolation, as in solve_one
        detail = str(error) if isinstance(error, OptirebalError) else f"{error} (please report it)"
        return outcome.replace(status=_status(error), decision=None, error=type(error).__name__,
                               message=detail,
                               seconds=outcome.seconds + time.perf_counter() - start)
    return outcome.replace(seconds=outcome.seconds + time.perf_counter() - start,
                           result=result)


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
        placed on one worker, which keeps one rebalancer per policy across tasks (an idle
        worker may steal a chunk, and meets its shape once more).
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
    groups = _by_hint(tasks)
    tasks = [task for group in groups for task in group]
    start = time.perf_counter()
    if client is not None:
        outcomes = _on_dask(groups, client, progress, frames)
        mode = f"dask ({len(client.scheduler_info().get('workers', {}))} workers)"
    else:
        if processes is not None and int(processes) < 1:
            raise InputError(f"must be at least 1, got {processes!r}", field="processes")
        workers = int(processes) if processes is not None else (os.cpu_count() or 1)
        workers = min(workers, max(1, len(tasks)))
        if workers == 1 or len(tasks) < SERIAL_BELOW:
            outcomes = _serial(groups, progress, frames)
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


def _by_hint(tasks: list[tuple[Hashable, Any, Policy]]
             ) -> list[list[tuple[Hashable, Any, Policy]]]:
    """The tasks sorted by shape hint (stable) and cut where it changes; each hint is read
    once (a tenth of a millisecond a household, in the calling process)."""
    digests: dict[int, str] = {}
    hints = [_hint(task, digests) for task in tasks]
    groups: list[list[Any]] = []
    last: object = None
    for n in sorted(range(len(tasks)), key=hints.__getitem__):
        if not groups or hints[n] != last:
            groups.append([])
            last = hints[n]
        groups[-1].append(tasks[n])
    return groups


def _chunks(group: list[Any], size: int) -> Iterator[list[Any]]:
    """``group`` cut into the fewest chunks of at most ``size``, of even sizes: a chunk has a
    fixed cost (its schema checks, about 15 ms), which a short last chunk pays for a few
    households."""
    parts = math.ceil(len(group) / size)
    for n in range(parts):
        yield group[n * len(group) // parts:(n + 1) * len(group) // parts]


def _guided(total: int, workers: int) -> Iterator[tuple[int, int]]:
    """Ranges of the (hint-sorted) tasks for a pool, in the order given to the workers: each
    a ``1 / (2 workers)`` share of what remains, and no fewer than :data:`SMALLEST_CHUNK`
    (guided self-scheduling). Large chunks first pay the fixed cost of a chunk rarely, small
    ones last let the workers end together; a pool cannot place tasks by shape, so a range may
    span two hints (each worker still meets each shape at most once)."""
    at = 0
    while at < total:
        size = max(SMALLEST_CHUNK, math.ceil((total - at) / (2 * workers)))
        yield at, min(total, at + size)
        at += size


def _bar(total: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="household", disable=not progress, smoothing=0.1)


def _serial(groups: list[list[Any]], progress: bool, frames: bool = False) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with _bar(sum(map(len, groups)), progress) as bar:
        for group in groups:
            for chunk in _chunks(group, SERIAL_CHUNK):
                outcomes.extend(solve_chunk(chunk, frames))
                bar.update(len(chunk))
    return outcomes


_INHERITED: list[Any] = []
"""The batch a forked pool's workers inherit (:func:`_on_pool`): set in the calling process
just before the workers fork, cleared when the pool closes."""


def _pool_forks() -> bool:
    """Whether a local pool forks its workers: on Linux, as Python's default did there before
    3.14 (the workers fork before this module starts a thread); elsewhere they are spawned,
    as macOS and Windows do by default."""
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _solve_inherited(start: int, stop: int, frames: bool = False) -> list[Outcome]:
    """:func:`solve_chunk` on ``tasks[start:stop]`` of the batch this forked worker inherited."""
    return solve_chunk(_INHERITED[start:stop], frames, inputs_kept=True)


def _on_pool(tasks: list[Any], workers: int, progress: bool, frames: bool = False
             ) -> list[Outcome]:
    """The sorted batch in guided ranges (:func:`_guided`) on a local process pool. Where the
    platform forks (Linux), the workers inherit the batch (copy on write) and each task names a
    range of it:
    the calling process pickles no household and the workers unpickle none, where sending the
    frames cost about 0.4 ms of CPU per household on a 2-core machine that has none to spare.
    Elsewhere (``spawn``: macOS, Windows) each chunk is pickled to its worker."""
    ranges = list(_guided(len(tasks), workers))
    forks = _pool_forks()
    context = multiprocessing.get_context("fork" if forks else "spawn")
    outcomes: list[Outcome] = []
    _INHERITED[:] = tasks if forks else []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # the workers fork at the first submit: before the progress bar starts its thread
            futures: list[Future[list[Outcome]]] = [
                pool.submit(_solve_inherited, start, stop, frames) if forks else
                pool.submit(solve_chunk, tasks[start:stop], frames, True)
                for start, stop in ranges]
            chunks = dict(zip(futures, ranges, strict=True))
            with _bar(len(tasks), progress) as bar:
                for future in as_completed(futures):
                    done = future.result()
                    start, stop = chunks[future]
                    _attach(done, tasks[start:stop])
                    outcomes.extend(done)
                    bar.update(len(done))
    finally:
        _INHERITED.clear()
    return outcomes


def _on_dask(groups: list[list[Any]], client: Any, progress: bool, frames: bool = False
             ) -> list[Outcome]:
    """Each shape hint placed on one worker (largest hints first, to the least loaded worker),
    cut into chunks so the progress bar moves and a worker's queue stays balanced. Placed, not
    pinned: a worker that runs out of work steals a chunk (and meets its shape once more),
    where pinned hints left one worker idle at the end of the book (2 workers, 1,000
    households: 106 households/s pinned, 118 placed)."""
    from distributed import as_completed as dask_completed

    workers = sorted(client.scheduler_info().get("workers", {}))
    if not workers:
        raise OptirebalError("the Dask cluster has no workers")
    load = dict.fromkeys(workers, 0)
    total = sum(map(len, groups))
    size = max(1, math.ceil(total / (len(workers) * CHUNKS_PER_WORKER)))
    futures, chunks = [], {}
    for group in sorted(groups, key=len, reverse=True):
        worker = min(workers, key=lambda w: load[w])
        load[worker] += len(group)
        for chunk in _chunks(group, size):
            futures.append(client.submit(solve_packed_chunk, _pack(_travelling(chunk)), frames,
                                         workers=[worker], allow_other_workers=True,
                                         pure=False))
            chunks[futures[-1].key] = chunk
    outcomes: list[Outcome] = []
    with _bar(total, progress) as bar:
        for future in dask_completed(futures):
            done = pickle.loads(future.result())
            _attach(done, chunks.pop(future.key))
            outcomes.extend(done)
            bar.update(len(done))
            future.release()
    return outcomes
