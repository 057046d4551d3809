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

    ``M`` is a sparse matrix whose width is the number of variables when it was made (later
    variables are zero columns); operations pad as needed.
    """

    __slots__ = ("constant", "matrix")
    __array_ufunc__ = None  # numpy arrays defer to Affine's reflected operators

    def __init__(self, matrix: sp.spmatrix, constant: np.ndarray | float = 0.0) -> None:
        self.matrix = matrix if isinstance(matrix, sp.csr_matrix) else sp.csr_matrix(matrix)
        self.constant = np.broadcast_to(np.asarray(constant, dtype=float),
                                        (self.matrix.shape[0],)).copy()

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])

    def padded(self, width: int) -> sp.csr_matrix:
        """The matrix with ``width`` columns."""
        m = self.matrix
        if m.shape[1] == width:
            return m
        return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))

    def __add__(self, other: Affine | np.ndarray | float) -> Affine:
        if isinstance(other, Affine):
            width = max(self.matrix.shape[1], other.matrix.shape[1])
            return Affine(self.padded(width) + other.padded(width),
                          self.constant + other.constant)
        return Affine(self.matrix, self.constant + np.asarray(other, dtype=float))

    __radd__ = __add__

    def __neg__(self) -> Affine:
        return Affine(-self.matrix, -self.constant)

    def __sub__(self, other: Affine | np.ndarray | float) -> Affine:
        return self + (-other)

    def __rsub__(self, other: np.ndarray | float) -> Affine:
        return (-self) + other

    def __mul__(self, scale: np.ndarray | float) -> Affine:
        """Element-wise product with a constant (scalar or vector)."""
        scale = np.asarray(scale, dtype=float)
        if scale.ndim == 0:
            return Affine(self.matrix * float(scale), self.constant * float(scale))
        return Affine(sp.diags(scale) @ self.matrix, self.constant * scale)

    __rmul__ = __mul__

    def __rmatmul__(self, left: np.ndarray | sp.spmatrix) -> Affine:
        """``left @ self`` for a constant matrix ``left``."""
        return Affine(sp.csr_matrix(left) @ self.matrix, left @ self.constant)

    def sum(self) -> Affine:
        return Affine(sp.csr_matrix(self.matrix.sum(axis=0)), self.constant.sum())

    def __getitem__(self, rows: np.ndarray | slice) -> Affine:
        return Affine(self.matrix[rows], self.constant[rows])

    @staticmethod
    def constant_vector(values: np.ndarray, width: int) -> Affine:
        """Constants ``values`` as an expression (no variable in it)."""
        values = np.asarray(values, dtype=float)
        return Affine(sp.csr_matrix((len(values), width)), values)

    @staticmethod
    def ones(size: int, width: int) -> Affine:
        return Affine.constant_vector(np.ones(size), width)

    @staticmethod
    def scatter(size: int, entries: np.ndarray, part: Affine) -> Affine:
        """A vector of ``size`` holding ``part`` at ``entries`` and the constant zero elsewhere."""
        place = sp.csr_matrix((np.ones(len(entries)), (entries, np.arange(len(entries)))),
                              shape=(size, len(entries)))
        return place @ part

    @staticmethod
    def stack(parts: Sequence[Affine]) -> Affine:
        width = max(p.matrix.shape[1] for p in parts)
        return Affine(sp.vstack([p.padded(width) for p in parts], format="csr"),
                      np.concatenate([p.constant for p in parts]))


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
    matrix: sp.csr_matrix
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
        return Affine(sp.csr_matrix((np.ones(m), (np.arange(m), columns)), shape=(m, self.n)))

    # --- objective -----------------------------------------------------------------------

    def minimize(self, expression: Affine, weights: np.ndarray | float = 1.0) -> None:
        """Add ``weights' expression`` (a linear cost) to the objective."""
        if self.elastic:
            return
        w = np.broadcast_to(np.asarray(weights, dtype=float), (expression.size,))
        row = sp.csr_matrix(w) @ expression.matrix
        row = row.tocoo()
        self.linear.append((row.col, row.data))
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
            self.blocks.append(Block(f"{name} slack", NONNEG, (-slack).matrix,
                                     np.zeros(expression.size)))
            expression = expression - slack
            columns = np.arange(self.variables[f"slack: {name}"].start, self.n)
            self.linear.append((columns, np.ones(slack.size)))
            # a small square spreads the slack evenly over rows that can share the conflict, so
            # each of them is named (the sum of slacks alone is flat between them)
            self.quadratic.append((columns, np.full(slack.size, ELASTIC_SPREAD)))
        self.blocks.append(Block(name, NONNEG, expression.matrix, rhs - expression.constant,
                                 labels, relax))

    def equal(self, name: str, expression: Affine, value: np.ndarray | float = 0.0) -> None:
        """``expression == value`` row by row."""
        rhs = np.broadcast_to(np.asarray(value, dtype=float), (expression.size,))
        self.blocks.append(Block(name, ZERO, expression.matrix, rhs - expression.constant))

    def product_at_least(self, name: str, a: Affine, b: Affine, c: Affine) -> None:
        r"""``a b >= c^2`` with ``a, b >= 0``, entry by entry (a rotated cone, as the
        second-order cone ``||(2c, a - b)|| <= a + b`` of size 3)."""
        k = a.size
        stacked = Affine.stack([a + b, 2.0 * c, a - b])
        order = np.arange(3 * k).reshape(3, k).T.ravel()  # interleave: one cone per entry
        cone = stacked[order]
        # s = b - A x = cone: A = -M, rhs = constant
        self.blocks.append(Block(name, SOC, -cone.matrix, cone.constant,
                                 soc_dims=(3,) * k))

    def power_at_least(self, name: str, t: Affine, d: Affine,
                       alpha: np.ndarray | float) -> None:
        r"""``t^alpha >= |d|`` with ``t >= 0``, entry by entry: ``(t, 1, d)`` in the 3-D power
        cone of ``alpha`` (:data:`POW`), so ``t >= |d|^(1 / alpha)``; ``0 < alpha < 1``."""
        k = t.size
        alphas = np.broadcast_to(np.asarray(alpha, dtype=float), (k,))
        stacked = Affine.stack([t, Affine.ones(k, t.matrix.shape[1]), d])
        order = np.arange(3 * k).reshape(3, k).T.ravel()  # interleave: one cone per entry
        cone = stacked[order]
        self.blocks.append(Block(name, POW, -cone.matrix, cone.constant,
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
        rows: list[tuple[sp.csr_matrix, np.ndarray]] = []
        offsets: dict[str, slice] = {}
        cones: list[tuple[str, int]] = []
        powers: list[float] = []
        start = 0
        for blk in ordered:
            m = blk.matrix.shape[0]
            if m == 0:
                continue
            rows.append((sp.csr_matrix((blk.matrix.data, blk.matrix.indices, blk.matrix.indptr),
                                       shape=(m, n)), blk.rhs))
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
        A = sp.vstack([r for r, _ in rows], format="csc") if rows else sp.csc_matrix((0, n))
        b = np.concatenate([rhs for _, rhs in rows]) if rows else np.zeros(0)
        return ConicProgram(P=sp.diags(diagonal, format="csc"), q=q, A=A, b=b, cones=cones,
                            blocks=offsets, variables=dict(self.variables),
                            constant=self.constant, powers=powers)
