"""`sweep(policies, portfolio, market)`: a grid of policies backtested over one market, in
parallel processes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from tqdm.auto import tqdm

from optirebal.backtest.engine import backtest, policy_label
from optirebal.backtest.result import BacktestResult, compare
from optirebal.errors import InputError
from optirebal.market import Market, as_market
from optirebal.policy import Policy
from optirebal.portfolio import Portfolio


def sweep(policies: Mapping[str, Policy] | Sequence[Policy], portfolio: Portfolio,
          market: Market | pd.DataFrame, *, start: object = None, end: object = None,
          flows: pd.DataFrame | None = None, processes: int | None = None,
          progress: bool = True) -> pd.DataFrame:
    """Backtest every policy of a grid over ``market`` and compare them.

    Parameters
    ----------
    policies : mapping of name to Policy, or a sequence of policies
        The grid; a sequence is named by each policy's schedule and trigger.
    portfolio, market, start, end, flows
        As in :func:`optirebal.backtest`, the same for every policy.
    processes : int, optional
        Worker processes; default the machine's cores, at most one per policy. 1 runs in this
        process.
    progress : bool
        A progress bar over the policies (tqdm).

    Returns
    -------
    DataFrame
        :func:`optirebal.compare` of the backtests: one column per policy, in grid order.
    """
    results = run_all(policies, portfolio, market, start=start, end=end, flows=flows,
                      processes=processes, progress=progress)
    return compare(results)


def run_all(policies: Mapping[str, Policy] | Sequence[Policy], portfolio: Portfolio,
            market: Market | pd.DataFrame, *, start: object = None, end: object = None,
            flows: pd.DataFrame | None = None, processes: int | None = None,
            progress: bool = True) -> dict[str, BacktestResult]:
    """The backtests of :func:`sweep` themselves, by name in grid order."""
    if isinstance(policies, Mapping):
        named = dict(policies)
    else:
        named = {}
        for policy in policies:
            label = policy_label(policy)
            named[label if label not in named else f"{label} ({len(named)})"] = policy
    if not named:
        raise InputError("give at least one policy", field="policies")
    for name, policy in named.items():
        if not isinstance(policy, Policy):
            raise InputError(f"must be a Policy, got {type(policy).__name__}",
                             field="policies", row=str(name))
    market = as_market(market)
    workers = min(len(named), processes or os.cpu_count() or 1)
    args = [(portfolio, policy, market, start, end, flows, name)
            for name, policy in named.items()]
    bar = tqdm(total=len(args), desc="backtests", disable=not progress)
    results: dict[str, BacktestResult] = {}
    if workers <= 1:
        for item in args:
            results[str(item[-1])] = _run(item)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_run, args):
                results[result.name] = result
                bar.update()
    bar.close()
    return {name: results[name] for name in named}


def _run(item: tuple[object, ...]) -> BacktestResult:
    portfolio, policy, market, start, end, flows, name = item
    return backtest(portfolio, policy, market, start, end, flows=flows,  # type: ignore[arg-type]
                    name=name)  # type: ignore[arg-type]
