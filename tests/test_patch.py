"""A re-solve that only closes trades, solved as the last program without them
(``optirebal.program.patch``): the same optimum as the program assembled afresh, and anything
else assembled afresh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optirebal as orb
from optirebal.program.data import ProblemData
from optirebal.program.patch import closes_only, without_closed
from optirebal.program.pooling import pooled
from optirebal.program.prepare import build_problem_data
from optirebal.program.solve import Infeasible, solve_program

BOOK = Path(__file__).resolve().parents[1] / "models" / "book"


@pytest.fixture(scope="module")
def households() -> list[tuple[orb.Portfolio, orb.Policy]]:
    book = orb.load_book(BOOK)
    return [(book[h], book.policy_of(h)) for h in list(book)[:6]]


def _view(data: ProblemData) -> ProblemData:
    """The data a program is built from: the pooled view when lots pool."""
    view = pooled(data)
    return data if view is None else view[0]


@pytest.mark.parametrize("n", range(6))
def test_closing_trades_gives_the_optimum_of_the_program_assembled_afresh(
        households: list[tuple[orb.Portfolio, orb.Policy]], n: int) -> None:
    """Close the smallest buy and every lot of the pair sold least, as a minimum trade does
    (pooled lots close whole): the program without them has the optimum of the one assembled
    for the closed data (objectives to 1e-10, trades to the solver's accuracy along weakly
    curved directions, 2e-6 of NAV), or both are infeasible."""
    portfolio, policy = households[n]
    data = build_problem_data(portfolio, policy)
    view = pooled(data)
    first = solve_program(_view(data))
    assert first.built is not None
    sells = data.pair_sells(first.sells if view is None else view[1].lot_sells(first.sells))
    buys = np.where(first.buys > 1e-7, first.buys, np.inf)
    sold = np.where(sells > 1e-7, sells, np.inf)
    closed = data.with_closed(np.array([int(np.argmin(buys))]),
                              np.flatnonzero(data.lot_pair == int(np.argmin(sold))),
                              "test", "test")
    assert closes_only(data, closed)
    derived = without_closed(*first.built, _view(data), _view(closed))
    assert derived is not None
    assert derived[0].n < first.built[0].n
    assert derived[0].A.shape[0] < first.built[0].A.shape[0]
    try:
        afresh = solve_program(_view(closed))
    except Infeasible:
        with pytest.raises(Infeasible):
            solve_program(_view(closed), derived)
        return
    patched = solve_program(_view(closed), derived)
    assert patched.buys[int(np.argmin(buys))] == 0.0
    assert patched.objective == pytest.approx(afresh.objective, abs=1e-10)
    np.testing.assert_allclose(patched.buys, afresh.buys, atol=2e-6)
    np.testing.assert_allclose(patched.sells, afresh.sells, atol=2e-6)


def test_anything_but_closed_trades_is_assembled_afresh(
        households: list[tuple[orb.Portfolio, orb.Policy]]) -> None:
    portfolio, policy = households[0]
    data = build_problem_data(portfolio, policy)
    assert closes_only(data, data.with_closed(np.array([0]), np.array([], dtype=int), "t", "t"))
    assert not closes_only(data, data.replaced(credit_cap=1e-4))  # the soft bands' credit
    lowered = data.sell_cap.copy()
    lowered[np.argmax(lowered)] /= 2  # a cap lowered, not closed
    assert not closes_only(data, data.replaced(sell_cap=lowered))
    reopened = data.with_closed(np.array([0]), np.array([], dtype=int), "t", "t")
    assert not closes_only(reopened, data)  # a trade opened again
    # a pooled sale whose lots close only in part changes the pooled cap: assembled afresh
    view = pooled(data)
    if view is not None:
        pools = view[1].pool_of
        shared = np.flatnonzero(np.bincount(pools) > 1)
        lots = np.flatnonzero(pools == shared[0])[:1]
        partly = data.with_closed(np.array([], dtype=int), lots, "t", "t")
        first = solve_program(view[0])
        assert first.built is not None
        assert without_closed(*first.built, view[0], _view(partly)) is None
