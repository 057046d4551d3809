r"""Conic data assembled directly from numpy: the program's one modelling layer.

The terms (:mod:`optirebal.program.terms`) write their rows here, and the solvers read the
result in their own standard forms. Clarabel's form is the reference:

.. math::

    \min\; \tfrac12 x^\top P x + q^\top x \quad \text{s.t.}\quad A x + s = b,\; s \in K,

with ``K`` a product of zero cones (equalities), non-negative cones (``A x <= b``),
second-order cones and 3-D power cones (:data:`POW`, which only Clarabel takes). ``P`` is
diagonal here (every quadratic of the program is a sum of squares of single variables), which lets
ECOS take the same data through one extra cone.

Why not cvxpy: its DPP compilation of parameter-times-variable products needs memory that grows
with the square of the lots (4.9 GB at 5,000 lots; 20,000 lots does not fit in 24 GB), and
building from constants costs cvxpy 0.1 to 0.8 s per call. Assembling the sparse arrays here is
linear in the size and takes milliseconds, so every call builds afresh from values; what a
:class:`~optirebal.rebalance.Rebalancer` keeps between calls is a
:class:`~optirebal.program.workspace.Workspace` per shape (``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

ZERO, NONNEG, SOC = "zero", "nonneg", "soc"
POW = "pow"
"""The 3-D power cone ``{(x, y, z): x^alpha y^(1 - alpha) >= |z|, x, y >= 0}`` (Clarabel's
``PowerConeT(alpha)``); its ``alpha`` is in :attr:`ConicProgram.powers`."""

ELASTIC_SPREAD = 1e-2
"""Weight of the sum of squared slacks in the elastic objective (beside their sum)."""
CONE_ORDER = (ZERO, NONNEG, SOC, POW)


class Affine:
    """A vector of affine functions of the program's variables: ``M x + c``.

    ``M`` is held as coordinate triplets (``rows``, ``cols``, ``vals``; repeated coordinates add
    up) of shape ``(size, width)``, where ``width`` is the number of variables when it was made
    (later variables are zero columns); operations pad as needed. Triplets make the operations
    of a build (sums, scalings, selections, stacking) plain numpy concatenations: one sparse
    matrix is formed per program, in :meth:`Builder.assemble`, instead of one per operation.
    """

    __slots__ = ("cols", "constant", "rows", "shape", "vals")
    __array_ufunc__ = None  # numpy arrays defer to Affine's reflected operators

    def __init__(self, matrix: sp.spmatrix, constant: np.ndarray | float = 0.0) -> None:
        coo = sp.coo_matrix(matrix)
        self._fill(coo.row.astype(np.int64), coo.col.astype(np.int64),
                   coo.data.astype(float), (int(coo.shape[0]), int(coo.shape[1])), constant)

    def _fill(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray,
              shape: tuple[int, int], constant: np.ndarray | float) -> None:
        self.rows, self.cols, self.vals, self.shape = rows, cols, vals, shape
        # the two common cases without np.broadcast_to, whose overhead (a few microseconds)
        # was a tenth of a build: thousands of expressions are made per program
        if isinstance(constant, float | int):
            self.constant = np.full(shape[0], float(constant))
        elif (type(constant) is np.ndarray and constant.dtype == np.float64
              and constant.shape == (shape[0],)):
            self.constant = constant.copy()
        else:
            self.constant = np.broadcast_to(np.asarray(constant, dtype=float),
                                            (shape[0],)).copy()

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int],
           constant: np.ndarray | float = 0.0) -> Affine:
        """From triplets (no copy of the arrays)."""
        out = cls.__new__(cls)
        out._fill(rows, cols, vals, shape, constant)
        return out

    @property
    def size(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def matrix(self) -> sp.csr_matrix:
        """``M`` as a sparse matrix (repeated coordinates summed)."""
        return self.padded(self.width)

    def padded(self, width: int) -> sp.csr_matrix:
        """``M`` with ``width`` columns."""
        return sp.csr_matrix((self.vals, (self.rows, self.cols)), shape=(self.size, width))

    def value(self, x: np.ndarray) -> np.ndarray:
        """``M x + c`` at the point ``x`` (one entry per variable of the program).

        When no row has two entries (the trades: one variable per open buy or sell), each
        row's value is ``v x_j + c`` computed as ``padded(len(x)) @ x + c`` computes it (a sum
        starting from zero), without building the sparse matrix; otherwise through it."""
        if len(self.rows) == 0:
            return np.zeros(self.size) + self.constant
        if np.bincount(self.rows, minlength=self.size).max() <= 1:
            return np.bincount(self.rows, weights=self.vals * x[self.cols],
                               minlength=self.size) + self.constant
        return self.padded(len(x)) @ x + self.constant

    def nonzero_rows(self) -> np.ndarray:
        """Whether each row involves a variable (a nonzero coefficient)."""
        return np.bincount(self.rows[self.vals != 0], minlength=self.size) > 0

    def __add__(self, other: Affine | np.ndarray | float) -> Affine:
        if isinstance(other, Affine):
            return Affine.of(np.concatenate([self.rows, other.rows]),
                             np.concatenate([self.cols, other.cols]),
                             np.concatenate([self.vals, other.vals]),
                             (self.size, max(self.width, other.width)),
                             self.constant + other.constant)
        return Affine.of(self.rows, self.cols, self.vals, self.shape,
                         self.constant + np.asarray(other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine.of(self.rows, self.cols, -self.vals, self.shape, -self.constant)

    def __sub__(self, other: Affine | np.ndarray | float) -> Affine:
        return self + (-other)

    def __rsub__(self, other: np.ndarray | float) -> Affine:
        return (-self) + other

    def __mul__(self, scale: np.ndarray | float) -> Affine:
        """Element-wise product with a constant (scalar or vector)."""
        scale = np.asarray(scale, dtype=float)
        if scale.ndim == 0:
            return Affine.of(self.rows, self.cols, self.vals * float(scale), self.shape,
                             self.constant * float(scale))
        scale = np.broadcast_to(scale, (self.size,))
        return Affine.of(self.rows, self.cols, self.vals * scale[self.rows], self.shape,
                         self.constant * scale)

    __rmul__ = __mul__

    def __rmatmul__(self, left: np.ndarray | sp.spmatrix) -> Affine:
        """``left @ self`` for a constant matrix ``left``."""
        by_column = _by_column(left)
        # each entry (r, c, v) meets every nonzero (i, r) of column r of ``left``
        counts = np.diff(by_column.indptr)[self.rows]
        entry = np.repeat(np.arange(len(self.rows)), counts)
        first = np.repeat(by_column.indptr[self.rows] - np.cumsum(counts) + counts, counts)
        where = first + np.arange(int(counts.sum()))
        return Affine.of(by_column.indices[where].astype(np.int64), self.cols[entry],
                         by_column.data[where] * self.vals[entry],
                         (int(by_column.shape[0]), self.width), _times(left, self.constant))

    def sum(self) -> Affine:
        return Affine.of(np.zeros_like(self.rows), self.cols, self.vals, (1, self.width),
                         self.constant.sum())

    def __getitem__(self, rows: np.ndarray | slice) -> Affine:
        """The rows listed (in that order, repeats allowed), or a slice of them."""
        chosen = np.arange(self.size)[rows]
        order = np.argsort(self.rows, kind="stable")
        ranked = self.rows[order]
        starts = np.searchsorted(ranked, chosen, side="left")
        counts = np.searchsorted(ranked, chosen, side="right") - starts
        # every entry of every chosen row, row by row
        first = np.repeat(starts - np.cumsum(counts) + counts, counts)
        taken = order[first + np.arange(int(counts.sum()))]
        return Affine.of(np.repeat(np.arange(len(chosen)), counts), self.cols[taken],
                         self.vals[taken], (len(chosen), self.width), self.constant[chosen])

    @staticmethod
    def constant_vector(values: np.ndarray, width: int) -> Affine:
        """Constants ``values`` as an expression (no variable in it)."""
        values = np.asarray(values, dtype=float)
        empty = np.zeros(0, dtype=np.int64)
        return Affine.of(empty, empty, np.zeros(0), (len(values), width), values)

    @staticmethod
    def ones(size: int, width: int) -> Affine:
        return Affine.constant_vector(np.ones(size), width)

    @staticmethod
    def scatter(size: int, entries: np.ndarray, part: Affine) -> Affine:
        """A vector of ``size`` holding ``part`` at ``entries`` (distinct) and the constant zero
        elsewhere."""
        entries = np.asarray(entries, dtype=np.int64)
        constant = np.zeros(size)
        constant[entries] = part.constant
        return Affine.of(entries[part.rows], part.cols, part.vals, (size, part.width), constant)

    @staticmethod
    def stack(parts: Sequence[Affine]) -> Affine:
        offsets = np.cumsum([0, *(p.size for p in parts)])
        return Affine.of(np.concatenate([p.rows + o for p, o in zip(parts, offsets, strict=False)]),
                         np.concatenate([p.cols for p in parts]),
                         np.concatenate([p.vals for p in parts]),
                         (int(offsets[-1]), max(p.width for p in parts)),
                         np.concatenate([p.constant for p in parts]))


def _times(left: np.ndarray | sp.spmatrix, vector: np.ndarray) -> np.ndarray:
    """``left @ vector``. For a CSR ``left``, each row's products are added in storage order
    from zero, as scipy's CSR product adds them (the same floats), without its dispatch, which
    cost more than the product for the maps of a build."""
    if isinstance(left, sp.csr_matrix) and left.indptr.size == left.shape[0] + 1:
        m = int(left.shape[0])
        row = np.repeat(np.arange(m), np.diff(left.indptr))
        return np.bincount(row, weights=left.data * vector[left.indices], minlength=m)
    return np.asarray(left @ vector, dtype=float)


def _sparse_columns(left: sp.csr_matrix) -> _Columns:
    """The CSC arrays of CSR ``left``, equal to those of ``left.tocsc()``: entries by column,
    and within a column in their CSR order (rows ascending), which a stable sort of the column
    indices gives; without scipy's checks, which cost more than the sort here."""
    n = int(left.shape[1])
    order = np.argsort(left.indices, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(left.indices, minlength=n), out=indptr[1:])
    rows = np.repeat(np.arange(int(left.shape[0]), dtype=np.int64), np.diff(left.indptr))
    return _Columns(indptr, rows[order], np.asarray(left.data, dtype=float)[order],
                    (int(left.shape[0]), n))


_COLUMNS: dict[int, tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray, _Columns]] = {}
"""Recent CSR matrices by id, with a copy of their arrays and their CSC form (see
:func:`_by_column`)."""
_COLUMNS_KEPT = 32


def _by_column(left: np.ndarray | sp.spmatrix) -> sp.csc_matrix | _Columns:
    """``left`` in CSC form. The problem data's maps (lots to pairs, pairs to accounts,
    exposures) are CSR and meet several products per build and the same ones on a re-solve:
    their conversion is kept, and re-used only for the same object with the same arrays (a
    matrix changed in place is converted again). A dense ``left`` (a class-by-one column of
    band credits, a factor matrix) is read into the same arrays directly (:func:`_dense_columns`).
    """
    if type(left) is np.ndarray and left.ndim == 2:
        return _dense_columns(left)
    if not isinstance(left, sp.csr_matrix):
        return sp.csc_matrix(left)
    kept = _COLUMNS.get(id(left))
    if (kept is not None and kept[0] is left and kept[4].shape == left.shape
            and np.array_equal(kept[3], left.indptr) and np.array_equal(kept[2], left.indices)
            and np.array_equal(kept[1], left.data)):
        return kept[4]
    out = _sparse_columns(left)
    if len(_COLUMNS) >= _COLUMNS_KEPT:
        del _COLUMNS[next(iter(_COLUMNS))]  # the oldest
    _COLUMNS[id(left)] = (left, left.data.copy(), left.indices.copy(), left.indptr.copy(), out)
    return out


@dataclass(frozen=True, eq=False)
class _Columns:
    """The CSC arrays of a dense matrix, as :func:`_by_column` hands them to
    :meth:`Affine.__rmatmul__`."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]


def _dense_columns(left: np.ndarray) -> _Columns:
    """The CSC arrays of dense ``left``, equal to those of ``scipy.sparse.csc_matrix(left)``
    (explicit zeros dropped, rows ascending within each column) without its checks and
    conversions, which cost more than the small matrices of a build."""
    values = np.asarray(left, dtype=float)
    by_column = values.T
    cols, rows = np.nonzero(by_column)  # row-major over the transpose: by column, then row
    indptr = np.zeros(values.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=values.shape[1]), out=indptr[1:])
    return _Columns(indptr, rows.astype(np.int64), by_column[cols, rows],
                    (int(values.shape[0]), int(values.shape[1])))


@dataclass(eq=False)
class Block:
    """Rows of one constraint family: ``A x + s = b``, ``s`` in ``cone``.

    ``labels`` names each row (for the infeasibility diagnosis); ``relax`` says whether the
    diagnosis may relax them (policy limits, not physical ones); ``soc_dims`` gives the sizes of
    the second-order cones of a ``soc`` block, ``alphas`` the exponents of the power cones (of
    size 3) of a ``pow`` block.
    """

    name: str
    cone: str
    coefficients: Affine  # A's rows (the constant is not read)
    rhs: np.ndarray
    labels: Callable[[int], str] | None = None
    relax: bool = False
    soc_dims: tuple[int, ...] = ()
    alphas: tuple[float, ...] = ()


@dataclass
class ConicProgram:
    """The assembled data, ready for a solver (see the module docstring)."""

    P: sp.csc_matrix  # diagonal
    q: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    cones: list[tuple[str, int]]  # (kind, size) in row order; SOC entries one per cone
    blocks: dict[str, slice]  # rows of each named block
    variables: dict[str, slice]
    constant: float  # objective constant (not seen by the solver)
    powers: list[float] = field(default_factory=list)  # alpha of each POW cone, in row order

    @property
    def n(self) -> int:
        return int(self.A.shape[1])

    @property
    def has_soc(self) -> bool:
        return any(kind == SOC for kind, _ in self.cones)

    @property
    def has_pow(self) -> bool:
        return bool(self.powers)


@dataclass(eq=False)
class Builder:
    """Collects variables, objective terms and constraint blocks; :meth:`assemble` ends it."""

    n: int = 0
    variables: dict[str, slice] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    linear: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    quadratic: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    constant: float = 0.0
    elastic: bool = False
    """In the elastic form (the infeasibility diagnosis) every relaxable block gets a
    non-negative slack per row, the objective is the sum of slacks, and cost terms are dropped."""
    slacks: dict[str, tuple[slice, Callable[[int], str] | None]] = field(default_factory=dict)
    slack_costs: dict[str, np.ndarray] = field(default_factory=dict)
    """Per relaxable block, the cost of each row's slack in the elastic form (1 where absent):
    the diagnosis prices the rows it has named high to find the rows they conflict with."""

    def variable(self, name: str, size: int) -> Affine:
        """A new variable block of ``size`` entries, as an affine expression."""
        start = self.n
        self.n += size
        self.variables[name] = slice(start, self.n)
        return self.select(name)

    def select(self, name: str, entries: np.ndarray | None = None) -> Affine:
        """Variable ``name`` (or the listed ``entries`` of it) as an affine expression."""
        where = self.variables[name]
        columns = np.arange(where.start, where.stop)
        if entries is not None:
            columns = columns[entries]
        m = len(columns)
        return Affine.of(np.arange(m), columns, np.ones(m), (m, self.n))

    # --- objective -----------------------------------------------------------------------

    def minimize(self, expression: Affine, weights: np.ndarray | float = 1.0) -> None:
        """Add ``weights' expression`` (a linear cost) to the objective."""
        if self.elastic:
            return
        w = np.broadcast_to(np.asarray(weights, dtype=float), (expression.size,))
        self.linear.append((expression.cols, w[expression.rows] * expression.vals))
        self.constant += float(w @ expression.constant)

    def minimize_squares(self, name: str, weights: np.ndarray | float) -> None:
        """Add ``sum(weights * x**2)`` over variable ``name`` to the objective."""
        if self.elastic:
            return
        where = self.variables[name]
        columns = np.arange(where.start, where.stop)
        self.quadratic.append((columns, np.broadcast_to(np.asarray(weights, dtype=float),
                                                         columns.shape).copy()))

    # --- constraints ---------------------------------------------------------------------

    def at_most(self, name: str, expression: Affine, bound: np.ndarray | float = 0.0, *,
                labels: Callable[[int], str] | None = None, relax: bool = False) -> None:
        """``expression <= bound`` row by row."""
        rhs = np.broadcast_to(np.asarray(bound, dtype=float), (expression.size,))
        if relax and self.elastic:
            slack = self.variable(f"slack: {name}", expression.size)
            self.slacks[name] = (self.variables[f"slack: {name}"], labels)
            self.blocks.append(Block(f"{name} slack", NONNEG, -slack,
                                     np.zeros(expression.size)))
            expression = expression - slack
            columns = np.arange(self.variables[f"slack: {name}"].start, self.n)
            self.linear.append((columns, self.slack_costs.get(name, np.ones(slack.size))))
            # a small square spreads the slack evenly over rows that can share the conflict, so
            # each of them is named (the sum of slacks alone is flat between them)
            self.quadratic.append((columns, np.full(slack.size, ELASTIC_SPREAD)))
        self.blocks.append(Block(name, NONNEG, expression, rhs - expression.constant,
                                 labels, relax))

    def equal(self, name: str, expression: Affine, value: np.ndarray | float = 0.0) -> None:
        """``expression == value`` row by row."""
        rhs = np.broadcast_to(np.asarray(value, dtype=float), (expression.size,))
        self.blocks.append(Block(name, ZERO, expression, rhs - expression.constant))

    def product_at_least(self, name: str, a: Affine, b: Affine, c: Affine) -> None:
        r"""``a b >= c^2`` with ``a, b >= 0``, entry by entry (a rotated cone, as the
        second-order cone ``||(2c, a - b)|| <= a + b`` of size 3)."""
        k = a.size
        stacked = Affine.stack([a + b, 2.0 * c, a - b])
        order = np.arange(3 * k).reshape(3, k).T.ravel()  # interleave: one cone per entry
        cone = stacked[order]
        # s = b - A x = cone: A = -M, rhs = constant
        self.blocks.append(Block(name, SOC, -cone, cone.constant,
                                 soc_dims=(3,) * k))

    def squares_at_most(self, name: str, w: Affine, a: Affine, b: Affine) -> None:
        r"""``||w||^2 <= a b`` with ``a, b >= 0`` (scalars): one rotated cone, as the
        second-order cone ``||(2w, a - b)|| <= a + b`` of size ``len(w) + 2``."""
        cone = Affine.stack([a + b, 2.0 * w, a - b])
        self.blocks.append(Block(name, SOC, -cone, cone.constant, soc_dims=(cone.size,)))

    def power_at_least(self, name: str, t: Affine, d: Affine,
                       alpha: np.ndarray | float) -> None:
        r"""``t^alpha >= |d|`` with ``t >= 0``, entry by entry: ``(t, 1, d)`` in the 3-D power
        cone of ``alpha`` (:data:`POW`), so ``t >= |d|^(1 / alpha)``; ``0 < alpha < 1``."""
        k = t.size
        alphas = np.broadcast_to(np.asarray(alpha, dtype=float), (k,))
        stacked = Affine.stack([t, Affine.ones(k, t.width), d])
        order = np.arange(3 * k).reshape(3, k).T.ravel()  # interleave: one cone per entry
        cone = stacked[order]
        self.blocks.append(Block(name, POW, -cone, cone.constant,
                                 alphas=tuple(float(a) for a in alphas)))

    # --- assembly ------------------------------------------------------------------------

    def assemble(self) -> ConicProgram:
        n = self.n
        q = np.zeros(n)
        for columns, values in self.linear:
            np.add.at(q, columns, values)
        diagonal = np.zeros(n)
        for columns, values in self.quadratic:
            np.add.at(diagonal, columns, 2.0 * values)  # 1/2 x'Px
        ordered = sorted(self.blocks, key=lambda blk: CONE_ORDER.index(blk.cone))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        rhs: list[np.ndarray] = []
        offsets: dict[str, slice] = {}
        cones: list[tuple[str, int]] = []
        powers: list[float] = []
        start = 0
        for blk in ordered:
            m = blk.coefficients.size
            if m == 0:
                continue
            c = blk.coefficients
            parts.append((c.rows + start, c.cols, c.vals))
            rhs.append(blk.rhs)
            offsets[blk.name] = slice(start, start + m)
            start += m
            if blk.cone == SOC:
                cones.extend((SOC, d) for d in blk.soc_dims)
            elif blk.cone == POW:
                cones.extend((POW, 3) for _ in blk.alphas)
                powers.extend(blk.alphas)
            elif cones and cones[-1][0] == blk.cone:
                cones[-1] = (blk.cone, cones[-1][1] + m)
            else:
                cones.append((blk.cone, m))
        if parts:
            rows, cols, vals = (np.concatenate(x) for x in zip(*parts, strict=True))
            A = sp.csc_matrix((vals, (rows, cols)), shape=(start, n))
            A.sum_duplicates()
            b = np.concatenate(rhs)
        else:
            A, b = sp.csc_matrix((0, n)), np.zeros(0)
        return ConicProgram(P=_diagonal(diagonal), q=q, A=A, b=b, cones=cones,
                            blocks=offsets, variables=dict(self.variables),
                            constant=self.constant, powers=powers)


def _diagonal(values: np.ndarray) -> sp.csc_matrix:
    """The diagonal matrix of ``values`` in CSC form without its zeros, as
    ``scipy.sparse.diags(values, format="csc")`` makes it, from its arrays directly (a
    quarter of the cost, once per build)."""
    stored = np.flatnonzero(values)
    indptr = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(values != 0, out=indptr[1:])
    return sp.csc_matrix((values[stored], stored.astype(np.int32), indptr),
                         shape=(len(values), len(values)))
