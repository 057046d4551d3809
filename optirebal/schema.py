"""Input schemas: every policy value and every input frame's columns, declared once.

Two libraries do the checking, and this module turns what they find into an
:class:`~optirebal.errors.InputError` naming the field (and the row):

- **policy values** (:class:`~optirebal.policy.Policy` and its parts) go through pydantic's
  strict validators (``TypeAdapter``): a number is a real, finite number (``True`` and ``"0.5"``
  are not numbers), a boolean is ``True`` or ``False`` (not ``"false"``, not ``1``), a count is
  an ``int``; numpy scalars are taken as the Python values they hold;
- **frames** are declared as :class:`FrameSchema` (required and optional columns, defaults,
  ranges) and checked by pandera (types, empty cells, ranges); an unknown column is refused
  with the nearest known name, and dates are ISO 8601 only (``YYYY-MM-DD`` text, or date,
  datetime and timestamp objects).

``docs/formulation.md`` (section "Input validation") says why these two libraries.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, TypeAdapter, ValidationError

from optirebal.errors import InputError

# --- policy values (pydantic) ------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.float64(1.0)`` -> ``1.0``)."""
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64 | np.timedelta64):
        return value.item()
    return value


@cache
def _adapter(kind: str, ge: float | None = None, gt: float | None = None,
             le: float | None = None, lt: float | None = None,
             allow_inf: bool = False) -> TypeAdapter[Any]:
    if kind == "number":
        return TypeAdapter(Annotated[float, Field(strict=True, allow_inf_nan=allow_inf, ge=ge,
                                                  gt=gt, le=le, lt=lt)])
    if kind == "int":
        return TypeAdapter(Annotated[int, Field(strict=True, ge=ge, gt=gt, le=le, lt=lt)])
    if kind == "bool":
        return TypeAdapter(Annotated[bool, Field(strict=True)])
    return TypeAdapter(Annotated[str, Field(strict=True, min_length=1)])


def _bounds(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    low = f"[{ge:g}" if ge is not None else f"({gt:g}" if gt is not None else None
    high = f"{le:g}]" if le is not None else f"{lt:g})" if lt is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" >= {ge:g}" if ge is not None else f" > {gt:g}"
    if high:
        return f" <= {le:g}" if le is not None else f" < {lt:g}"
    return ""


def describe(kind: str, ge: float | None = None, gt: float | None = None,
             le: float | None = None, lt: float | None = None, allow_inf: bool = False) -> str:
    """The rule in words, as error messages give it: ``"a finite number >= 0"``."""
    base = {"number": "a number" if allow_inf else "a finite number",
            "int": "a whole number (int)", "bool": "true or false",
            "text": "non-empty text"}[kind]
    return base + _bounds(ge, gt, le, lt)


def _check(kind: str, name: str, value: Any, row: object = None, *, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None,
           allow_inf: bool = False) -> Any:
    value = plain(value)
    try:
        return _adapter(kind, ge, gt, le, lt, allow_inf).validate_python(value)
    except ValidationError:
        rule = describe(kind, ge, gt, le, lt, allow_inf)
        raise InputError(f"must be {rule}, got {value!r}", field=name, row=row) from None


def number(name: str, value: Any, row: object = None, *, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None,
           allow_inf: bool = False) -> float:
    """A real number (not a bool, not text), finite unless ``allow_inf``, within the bounds."""
    return float(_check("number", name, value, row, ge=ge, gt=gt, le=le, lt=lt,
                        allow_inf=allow_inf))


def optional_number(name: str, value: Any, *, ge: float | None = None) -> float | None:
    """``None`` or a finite :func:`number`."""
    return None if value is None else number(name, value, ge=ge)


def integer(name: str, value: Any, *, ge: int | None = 0, le: int | None = None) -> int:
    """A count: an ``int`` (not ``2.5``, not ``2.0``, not ``True``) within the bounds."""
    return int(_check("int", name, value, ge=ge, le=le))


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy booleans too); not ``"false"``, not ``0``."""
    return bool(_check("bool", name, value))


def text(name: str, value: Any, row: object = None) -> str:
    """Non-empty text."""
    return str(_check("text", name, value, row))


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Text from ``allowed``; the error suggests the nearest allowed value."""
    allowed = tuple(allowed)
    value = plain(value)
    if isinstance(value, str) and value in allowed:
        return value
    near = difflib.get_close_matches(str(value), allowed, n=1) if isinstance(value, str) else []
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise InputError(f"must be one of {allowed}, got {value!r}{hint}", field=name)


def texts(name: str, value: Any, example: str = "('AAA',)") -> tuple[str, ...]:
    """A list or tuple of non-empty strings (a bare string is refused: ``("AAA",)``)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InputError(f"must be a list of names, such as {example}, got {value!r}",
                         field=name)
    items = sorted(value) if isinstance(value, set | frozenset) else list(value)
    return tuple(text(name, item, row=n) for n, item in enumerate(items))


def table(name: str, value: Any) -> dict[str, Any]:
    """A mapping with non-empty text keys (values are checked by the caller)."""
    if not isinstance(value, Mapping):
        raise InputError(f"must be a mapping (a TOML table), such as {{'equity': 0.6}}, got "
                         f"{value!r}", field=name)
    return {text(name, key, row=key): item for key, item in value.items()}


def instance(name: str, value: Any, kind: type, example: str) -> Any:
    """``value`` itself when it is a ``kind``; otherwise an error showing ``example``."""
    if not isinstance(value, kind):
        raise InputError(f"must be a {kind.__name__} such as {example}, got {value!r}",
                         field=name)
    return value


# --- dates -------------------------------------------------------------------------------------

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_RULE = "an ISO 8601 date (YYYY-MM-DD)"


def date(value: Any, name: str, row: object = None) -> dt.date:
    """One date: ``YYYY-MM-DD`` text, or a date, datetime, pandas timestamp or datetime64.

    Anything else (``20261120``, ``"11-20-2026"``, ``"20/11/2026"``, ``"Nov 20 2026"``, a
    missing value) is an :class:`InputError` naming ``name`` (and ``row``).
    """
    value = plain(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):  # pd.Timestamp too
        if pd.isna(value):
            raise InputError(f"missing date: give {DATE_RULE}", field=name, row=row)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"not a date: {value!r} is no calendar day", field=name,
                             row=row) from None
    raise InputError(f"not a date: {value!r}; give {DATE_RULE}", field=name, row=row)


def dates(column: pd.Series, name: str) -> pd.Series:
    """A column of :func:`date` values as ``datetime64[ns]`` (same index)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        bad = column.isna()
        if bad.any():
            raise InputError(f"missing date: give {DATE_RULE}", field=name,
                             row=column.index[bad][0])
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_localize(None)
        return column.dt.normalize().astype("datetime64[ns]")
    values = column.to_numpy(dtype=object)
    is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    out = np.empty(len(values), dtype="datetime64[ns]")
    if is_text.all() and len(values):  # the usual CSV case, vectorized
        stripped = pd.Series(values, dtype=object).str.strip()
        ok = stripped.str.fullmatch(ISO_DATE.pattern).to_numpy(dtype=bool)
        parsed = pd.to_datetime(stripped.where(ok), format="%Y-%m-%d", errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            n = int(np.argmax(bad))
            date(values[n], name, column.index[n])  # raises with the reason
        return pd.Series(parsed.to_numpy(dtype="datetime64[ns]"), index=column.index)
    kinds = {type(v) for v in values}
    if kinds and kinds <= {dt.date, dt.datetime, pd.Timestamp}:  # objects: no parsing needed
        try:
            stamps = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce")
        except (TypeError, ValueError):  # mixed time zones: one by one below
            stamps = None
        if stamps is not None and not stamps.isna().any():
            if stamps.dt.tz is not None:
                stamps = stamps.dt.tz_localize(None)
            return pd.Series(stamps.dt.normalize().to_numpy(dtype="datetime64[ns]"),
                             index=column.index)
    for n, value in enumerate(values):
        out[n] = np.datetime64(date(value, name, column.index[n]), "ns")
    return pd.Series(out, index=column.index)


# --- frames (pandera) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """One column of an input frame.

    Parameters
    ----------
    kind
        ``"number"``, ``"text"``, ``"date"`` (ISO 8601) or ``"any"`` (kept as given, e.g. a
        descriptive ``name``).
    required
        The column must be present.
    default
        Fills a missing column (numbers only); ``None``: no default.
    fill_empty
        Empty cells take the ``default`` too (otherwise an empty cell is an error).
    empty
        Empty cells are allowed and left empty (``NaN``).
    ge, gt, le
        Bounds of a number.
    allow_inf
        ``inf`` is a valid number here (``daily_traded_value``: no impact).
    whole
        A whole number (``contracts``).
    """

    kind: str = "number"
    required: bool = False
    default: float | None = None
    fill_empty: bool = True
    empty: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    allow_inf: bool = False
    whole: bool = False

    def holds(self, values: pd.Series) -> pd.Series:
        """Per cell of a number column, whether it keeps the rule (finite, bounds, whole)."""
        v = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok = ~np.isnan(v) if self.allow_inf else np.isfinite(v)
            if self.ge is not None:
                ok &= v >= self.ge
            if self.gt is not None:
                ok &= v > self.gt
            if self.le is not None:
                ok &= v <= self.le
            if self.whole:
                ok &= v == np.round(v)
        return pd.Series(ok, index=values.index)

    @property
    def rule(self) -> str:
        """The rule in words."""
        if self.kind == "date":
            return DATE_RULE
        if self.kind == "text":
            return "non-empty text"
        if self.kind == "any":
            return "any value"
        base = "a whole number" if self.whole else describe("number", allow_inf=self.allow_inf)
        return base + _bounds(self.ge, self.gt, self.le, None)


@dataclass(frozen=True, eq=False)
class FrameSchema:
    """The columns of one input frame.

    Parameters
    ----------
    what
        The frame's name in messages (``"securities"``).
    columns
        Column name -> :class:`Col`.
    prefixes
        Families of columns by prefix (``"exposure_"`` -> one column per class).
    field_prefix
        Prepended to column names in the ``field`` of errors (``"history."``).
    """

    what: str
    columns: Mapping[str, Col]
    prefixes: Mapping[str, Col] = field(default_factory=dict)
    field_prefix: str = ""

    def col(self, name: str) -> Col | None:
        """The declaration of column ``name`` (a prefix family included), or ``None``."""
        if name in self.columns:
            return self.columns[name]
        for prefix, col in self.prefixes.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                return col
        return None

    def known(self) -> list[str]:
        """Every declared column name, prefix families as ``exposure_<class>``."""
        return [*self.columns, *(f"{p}<class>" for p in self.prefixes)]


@cache
def _pandera(schema: FrameSchema, present: tuple[str, ...]) -> Any:
    """The pandera schema of ``schema`` for the columns ``present`` in a frame."""
    import pandera.pandas as pa

    columns = {}
    for name in present:
        col = schema.col(name)
        if col is None or col.kind in ("any", "date"):
            continue  # dates: :func:`dates`; "any": kept as given
        fills = col.default is not None and col.fill_empty
        nullable = col.empty or fills
        if col.kind == "text":
            columns[name] = pa.Column(str, pa.Check.str_length(min_value=1), coerce=True,
                                      nullable=nullable)
            continue
        columns[name] = pa.Column(float, pa.Check(col.holds, name=col.rule, ignore_na=True),
                                  coerce=True, nullable=nullable,
                                  default=col.default if fills else None)
    return pa.DataFrameSchema(columns, name=schema.what)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def validate_frame(frame: pd.DataFrame, schema: FrameSchema
                   ) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """Check ``frame`` (already indexed by its ids) against ``schema``.

    Returns
    -------
    DataFrame, dict
        The frame with numbers as floats, text as ``str``, dates as ``datetime64[ns]`` and every
        column with a default present and filled; and, per column with a default, the rows
        (index labels as text) that took it (every row when the column was missing).

    Raises
    ------
    InputError
        An unknown column (with the nearest known name), a missing required column, or the
        first cell against its column's rule (naming the field and row).
    """
    from pandera.errors import SchemaError, SchemaErrors

    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    fp = schema.field_prefix
    for name in out.columns:
        if schema.col(name) is None:
            near = difflib.get_close_matches(name, schema.known(), n=1, cutoff=0.7)
            hint = (f"; did you mean {near[0]!r}?" if near
                    else f"; known columns: {', '.join(schema.known())}")
            raise InputError(f"unknown column in {schema.what}{hint}", field=fp + name)
    if out.columns.duplicated().any():
        raise InputError(f"duplicate column in {schema.what}",
                         field=fp + out.columns[out.columns.duplicated()][0])
    defaulted: dict[str, tuple[str, ...]] = {}
    for name, col in schema.columns.items():
        if name not in out.columns:
            if col.required:
                raise InputError(f"missing column in {schema.what}", field=fp + name)
            if col.default is not None:
                defaulted[name] = tuple(map(str, out.index))
                out[name] = col.default
        elif col.default is not None and col.fill_empty:
            empty = out[name].isna().to_numpy()
            if empty.any():
                defaulted[name] = tuple(map(str, out.index[empty]))
    for name in out.columns:
        declared = schema.col(name)
        if declared is not None and declared.kind == "number":
            # a number dtype holds no true/false, a bool dtype nothing else; object cells are
            # read one by one
            kind = out[name].dtype.kind if isinstance(out[name].dtype, np.dtype) else "O"
            flags = np.zeros(len(out), dtype=bool) if kind in "fiuc" else \
                np.ones(len(out), dtype=bool) if kind == "b" else \
                out[name].map(_is_bool).to_numpy(dtype=bool)
            if flags.any():
                n = int(np.argmax(flags))
                raise InputError(f"must be {declared.rule}, got {out[name].iloc[n]!r} "
                                 "(true/false is not a number)", field=fp + name,
                                 row=out.index[n])
    try:
        out = _pandera(schema, tuple(out.columns)).validate(out, lazy=False)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        first = cases[cases["column"].notna()].iloc[0] if cases["column"].notna().any() \
            else cases.iloc[0]
        _raise(schema, frame, str(first["column"]), first["index"], first["failure_case"])
    except SchemaError as exc:
        cases = exc.failure_cases
        name = str(getattr(exc.schema, "name", None))
        if isinstance(cases, pd.DataFrame) and len(cases):
            _raise(schema, frame, name, cases["index"].iloc[0], cases["failure_case"].iloc[0])
        _raise(schema, frame, name, None, cases)
    for name in out.columns:
        declared = schema.col(name)
        if declared is not None and declared.kind == "date":
            out[name] = dates(out[name], fp + name)
        elif declared is not None and declared.kind == "text":
            out[name] = out[name].astype(object)
    return out.copy(), defaulted  # one block per dtype again (pandera sets column by column)


def _raise(schema: FrameSchema, frame: pd.DataFrame, name: str, row: Any, value: Any) -> None:
    """The first pandera failure as an :class:`InputError` with the value as given."""
    col = schema.col(name)
    rule = col.rule if col is not None else "valid"
    original = value
    if row is not None and not (isinstance(row, float) and math.isnan(row)):
        try:
            given = frame.loc[row, name] if name in frame.columns else value
            if not isinstance(given, pd.Series | pd.DataFrame):
                original = given
        except (KeyError, TypeError):
            pass  # a duplicated or odd label: keep the value pandera reported
    else:
        row = None
    original = plain(original)
    got = "the cell is empty" if original is None or (
        isinstance(original, float) and math.isnan(original)) else f"got {original!r}"
    raise InputError(f"must be {rule}, {got}", field=schema.field_prefix + name, row=plain(row))


def check_ids(index: pd.Index, name: str, what: str) -> None:
    """Refuse empty ids (``NaN``, ``None``, blank): they would become the text ``"nan"``."""
    if isinstance(index.dtype, pd.StringDtype):  # text only: one vectorized pass
        blank = pd.array(index.str.strip() == "").to_numpy(dtype=bool, na_value=False)
        empty = np.asarray(index.isna()) | blank
        if empty.any():
            position = int(np.argmax(empty))
            raise InputError(f"missing {name} id in {what} (row {position} of the frame)",
                             field=name, row=position)
        return
    for position, label in enumerate(index):
        if label is None or (isinstance(label, float) and math.isnan(label)) \
                or label is pd.NaT or (isinstance(label, str) and not label.strip()):
            raise InputError(f"missing {name} id in {what} (row {position} of the frame)",
                             field=name, row=position)
        if _is_bool(label):
            raise InputError(f"{name} id must be text, got {label!r}", field=name, row=position)


def numeric_matrix(matrix: Any, name: str) -> pd.DataFrame:
    """A frame of numbers only (a covariance, exposures, loadings): text or a bool in a cell is
    an :class:`InputError` naming the row and column; empty labels are refused."""
    if not isinstance(matrix, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(matrix).__name__}",
                         field=name)
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError(f"{name} is empty", field=name)
    for labels, what in ((matrix.index, "row"), (matrix.columns, "column")):
        check_ids(labels, f"{name} {what}", name)
        text_labels = labels.map(str)
        if text_labels.duplicated().any():
            raise InputError(f"duplicate {what} label {text_labels[text_labels.duplicated()][0]!r}",
                             field=name, row=text_labels[text_labels.duplicated()][0])
    out = matrix.copy()
    for column in out.columns:
        values = out[column]
        flags = values.map(_is_bool).to_numpy(dtype=bool)
        numeric = pd.to_numeric(values, errors="coerce") if not flags.any() else None
        bad = flags if numeric is None else (numeric.isna() & values.notna()).to_numpy()
        if bad.any():
            n = int(np.argmax(bad))
            raise InputError(f"must be a number, got {plain(values.iloc[n])!r} in column "
                             f"{str(column)!r}", field=name, row=str(out.index[n]))
        assert numeric is not None
        out[column] = numeric.astype(float)
    return out
