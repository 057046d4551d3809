"""Lots the program cannot tell apart, solved as one variable (``optirebal.program.pooling``):
the same optimum as lot by lot, sales taken oldest first, and only lots of tax-free accounts
with equal coefficients merged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import multi_asset

import optirebal as orb
import optirebal.rebalance as rebalance
from optirebal.program.pooling import _groups, pooled
from optirebal.program.prepare import build_problem_data

TARGETS = {"equity": 0.3, "bonds": 0.5, "real_estate": 0.18, "cash": 0.02}


def household() -> orb.Portfolio:
    # a taxable account and an IRA, four lots a position
    return multi_asset(seed=5, n_securities=6, accounts=("taxable", "ira"), lots_per_position=4)


def policy(**changes: object) -> orb.Policy:
    base = orb.Policy(TARGETS, band=orb.Band.absolute(0.02), risk_aversion=2.0,
                      costs=orb.Costs(impact="power"))
    return dataclasses.replace(base, **changes)


def test_only_tax_free_lots_of_one_pair_merge() -> None:
    data = build_problem_data(household(), policy())
    view, pools = pooled(data)  # type: ignore[misc]
    free = ~data.taxable_lot
    # every taxable lot alone; the IRA's 4 lots of each of 6 securities in one pool each
    assert len(view.lot_ids) == int((~free).sum()) + 6
    for p in np.unique(pools.pool_of[free]):
        members = np.flatnonzero(pools.pool_of == p)
        assert len(members) == 4 and len(set(data.lot_pair[members])) == 1
    assert all(np.sum(pools.pool_of == p) == 1 for p in pools.pool_of[~free])
    assert view.lot_weight.sum() == pytest.approx(data.lot_weight.sum(), abs=1e-15)


def test_a_fixed_relief_order_keeps_every_lot() -> None:
    tax = orb.Tax(lot_relief="fifo")
    assert pooled(build_problem_data(household(), policy(tax=tax))) is None


def test_pooled_sales_are_taken_oldest_first_and_add_up() -> None:
    data = build_problem_data(household(), policy())
    view, pools = pooled(data)  # type: ignore[misc]
    pool = int(pools.pool_of[np.flatnonzero(~data.taxable_lot)[0]])
    members = np.flatnonzero(pools.pool_of == pool)
    oldest = members[np.argsort(-data.days_held[members], kind="stable")]
    sale = np.zeros(len(view.lot_ids))
    sale[pool] = data.lot_weight[oldest[0]] + 0.5 * data.lot_weight[oldest[1]]
    lots = pools.lot_sells(sale)
    assert lots[oldest[0]] == pytest.approx(data.lot_weight[oldest[0]], rel=1e-15)
    assert lots[oldest[1]] == pytest.approx(0.5 * data.lot_weight[oldest[1]], rel=1e-15)
    assert lots[oldest[2:]].sum() == 0.0
    assert lots.sum() == sale.sum()  # exactly: the last lot takes what rounding left


def test_pooling_leaves_the_optimum_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    portfolio = household()
    result = orb.solve(portfolio, policy())
    monkeypatch.setattr(rebalance, "pooled", lambda data: None)
    lot_by_lot = orb.solve(portfolio, policy())
    assert result.objective == pytest.approx(lot_by_lot.objective, abs=1e-9)
    np.testing.assert_allclose(result.weights["after"], lot_by_lot.weights["after"], atol=1e-7)
    assert result.traded and len(result.lots_sold)


def test_groups_are_those_of_numpy_unique() -> None:
    """The lexicographic grouping returns what ``np.unique(axis=0)`` returns, on rows with
    many repeats (pairs of tax-free lots) and unique ones (taxable lots)."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 300))
        rows = np.column_stack([rng.integers(-5, 8, n).astype(float),
                                rng.choice([0.0, 0.1, 0.25], size=(n, 4))])
        _, first, group = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        got_first, got_group = _groups(rows)
        assert np.array_equal(got_first, first)
        assert np.array_equal(got_group, group.ravel())
