"""The fast paths of a household's build and solve give the floats of the scipy and pandas
calls they replace, to the last bit (the batch's answers must not move)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from optirebal.frame_checks import positions
from optirebal.program.conic import Affine, _dense_columns, _sparse_columns, _times
from optirebal.program.solvers import _upper


def _matrix(seed: int, shape: tuple[int, int], density: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(shape) < density, rng.normal(size=shape), 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_dense_and_sparse_columns_are_scipys_csc_arrays(seed: int) -> None:
    dense = _matrix(seed, (7, 11), 0.3)
    expected = sp.csc_matrix(dense)
    for got in (_dense_columns(dense), _sparse_columns(sp.csr_matrix(dense))):
        assert got.shape == expected.shape
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert np.array_equal(got.data, expected.data)


def test_sparse_columns_keep_duplicates_in_their_row_order() -> None:
    # a CSR matrix with a repeated coordinate (not summed) and unsorted indices in a row
    left = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0]), np.array([2, 0, 2, 1]),
                          np.array([0, 3, 4])), shape=(2, 3))
    expected = left.tocsc()
    got = _sparse_columns(left)
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


@pytest.mark.parametrize("seed", range(5))
def test_times_is_scipys_product_to_the_bit(seed: int) -> None:
    left = sp.csr_matrix(_matrix(seed, (9, 40), 0.5))
    vector = np.random.default_rng(seed + 10).normal(size=40) * 1e3
    assert np.array_equal(_times(left, vector), left @ vector)
    dense = _matrix(seed, (4, 40), 0.5)
    assert np.array_equal(_times(dense, vector), dense @ vector)


def test_affine_value_is_the_padded_product_to_the_bit() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    # one entry per row (the trades), some rows constant
    single = Affine.scatter(12, np.array([0, 3, 4, 9]),
                            Affine.of(np.arange(4), np.array([5, 2, 17, 29]), rng.normal(size=4),
                                      (4, 30), rng.normal(size=4)))
    # several entries in a row: through the sparse matrix
    several = Affine.of(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 4, 4, 0, 7, 7]),
                        rng.normal(size=6), (3, 30), rng.normal(size=3))
    for expr in (single, several):
        assert np.array_equal(expr.value(x), expr.padded(30) @ x + expr.constant)
    empty = Affine.constant_vector(np.array([1.5, -2.0]), 30)
    assert np.array_equal(empty.value(x), np.array([1.5, -2.0]))


def test_upper_passes_a_diagonal_through_and_cuts_a_full_matrix() -> None:
    diagonal = sp.diags(np.array([0.0, 2.0, 0.0, 5.0]), format="csc")
    assert _upper(diagonal) is diagonal
    full = sp.csc_matrix(np.array([[2.0, 1.0], [1.0, 3.0]]))
    assert np.array_equal(_upper(full).toarray(), np.array([[2.0, 1.0], [0.0, 3.0]]))
    stored_zero = sp.csc_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 1, 2])),
                                shape=(2, 2))
    assert _upper(stored_zero) is not stored_zero


def test_positions_are_get_indexer_with_minus_one_for_absent() -> None:
    index = pd.Index(["VTI", "BND", "VEA", "VWO"], dtype="str")
    values = pd.Series(["VEA", "XYZ", "VTI", "VTI", "VWO"])
    assert positions(index, values).dtype == np.int64
    assert np.array_equal(positions(index, values),
                          index.get_indexer(values).astype(np.int64))
    assert np.array_equal(positions(index, ["BND"]), [1])
    assert len(positions(index, pd.Series([], dtype=object))) == 0
