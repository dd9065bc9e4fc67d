"""Row changes and how they merge into a table: the contract between projections and the store.

A projection turns events into *rows* of a :class:`Spec` (a tuple of the spec's keys and
columns, ``None`` for "not set by this event"). Each column says how a new value merges
with the stored one:

- ``set``: the new value replaces the old one;
- ``lww``: last writer wins by the event time in the column's ``guard`` column: the new
  value replaces the old one when its guard is set and not older (ties: the later write);
- ``first``: the first value that is not null stays;
- ``min`` / ``max``: the least / greatest value;
- ``add``: the values are summed.

Every rule is associative, so reducing a batch in Python (:class:`RowSet`) and then
merging the result into the table gives what merging each row on its own would have:
the outcome does not depend on where batches begin and end. The same rules, written as
``INSERT ... ON CONFLICT DO UPDATE``, are :func:`upsert_sql`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from parkstream.projector.records import BadRecord, Event

Merge = Literal["set", "lww", "first", "min", "max", "add"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    merge: Merge = "set"
    guard: str | None = None  # lww: the event-time column of its group
    default: str | None = None  # SQL value inserted instead of NULL (NOT NULL columns)
    # numeric columns: rows carry an integer count of 10**-scale units, staged as bigint
    # (asyncpg encodes a Decimal through Python; an int is cheap) and scaled in SQL
    scale: int | None = None


@dataclass(frozen=True)
class Spec:
    """How rows of one kind go into ``table``: ``merge`` them, or ``insert`` new keys only."""

    table: str
    keys: tuple[str, ...]
    columns: tuple[Column, ...]
    mode: Literal["merge", "insert"] = "merge"
    returning: tuple[str, ...] = ()  # insert: columns of the rows actually inserted
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    # What RowSet.add walks: (guard position, positions of its lww columns) per guard,
    # then (position, merge) of every other column
    _groups: tuple[tuple[int, tuple[int, ...]], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _rest: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index = {name: i for i, name in enumerate(self.names)}
        object.__setattr__(self, "_index", index)
        for col in self.columns:
            if col.merge == "lww" and (col.guard is None or col.guard not in index):
                raise ValueError(f"{self.table}.{col.name}: lww needs a guard column")
        groups: dict[int, list[int]] = {}
        for col in self.columns:
            if col.merge == "lww":
                assert col.guard is not None
                groups.setdefault(index[col.guard], []).append(index[col.name])
        lww = {i for cols in groups.values() for i in cols}
        if lww & set(groups):
            raise ValueError(f"{self.table}: a guard column cannot be lww itself")
        object.__setattr__(self, "_groups", tuple((g, tuple(c)) for g, c in groups.items()))
        rest = tuple((index[c.name], c.merge) for c in self.columns if c.merge != "lww")
        object.__setattr__(self, "_rest", rest)

    @property
    def names(self) -> tuple[str, ...]:
        return self.keys + tuple(c.name for c in self.columns)

    @property
    def index(self) -> dict[str, int]:
        """Column name -> position in a row."""
        return self._index

    def position(self, name: str) -> int:
        return self._index[name]

    @property
    def staging(self) -> str:
        return f"stage_{self.table}"


# --- reducing a batch ------------------------------------------------------------------


@dataclass
class RowSet:
    """The rows of one spec in a batch, merged per key with the spec's rules."""

    spec: Spec
    rows: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)

    def add(self, row: Sequence[Any]) -> None:
        spec = self.spec
        key = tuple(row[: len(spec.keys)])
        current = self.rows.get(key)
        if current is None:
            # The row itself is kept (and merged into): a projection may still amend it.
            self.rows[key] = row if isinstance(row, list) else list(row)
            return
        if spec.mode == "insert":
            return  # the first row of a key is the one inserted
        # lww first: it compares with the guards before this row moves them
        for g, columns in spec._groups:
            new_guard = row[g]
            if new_guard is not None:
                old_guard = current[g]
                if old_guard is None or new_guard >= old_guard:
                    for i in columns:
                        current[i] = row[i]
        for i, merge in spec._rest:
            new = row[i]
            if merge == "max":
                if new is not None:
                    old = current[i]
                    if old is None or new > old:
                        current[i] = new
            elif merge == "set":
                current[i] = new
            elif merge == "first":
                if current[i] is None:
                    current[i] = new
            elif merge == "min":
                if new is not None:
                    old = current[i]
                    if old is None or new < old:
                        current[i] = new
            else:  # add
                current[i] = (current[i] or 0) + (new or 0)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return (tuple(row) for row in self.rows.values())

    def values(self) -> list[list[Any]]:
        """The merged rows themselves (lists, as COPY takes them: no tuple per row)."""
        return list(self.rows.values())


@dataclass
class Changes:
    """Row sets of a batch, one per spec, in the order they were first touched, and the
    events that could not be projected (keyed by partition and offset)."""

    sets: dict[str, RowSet] = field(default_factory=dict)
    rejected: dict[tuple[int, int], BadRecord] = field(default_factory=dict)

    def add(self, spec: Spec, row: Sequence[Any]) -> None:
        rows = self.sets.get(spec.table)
        if rows is None:
            rows = self.sets[spec.table] = RowSet(spec)
        rows.add(row)

    def of(self, spec: Spec) -> RowSet:
        return self.sets.get(spec.table) or RowSet(spec)

    def __iter__(self) -> Iterator[RowSet]:
        return iter(self.sets.values())


Rows = list[tuple[Spec, list[Any]]]
"""What one event changes: rows of one or more specs."""


def project_with(handlers: dict[str, Callable[[Event], Rows]], events: Iterable[Event]) -> Changes:
    """Apply ``handlers`` by event type; an event whose handler raises changes nothing."""
    from parkstream.projector.records import BadRecord

    out = Changes()
    for e in events:
        handler = handlers.get(e.type)
        if handler is None:
            continue
        try:
            rows = handler(e)
        except BadRecord as exc:
            out.rejected[(e.partition, e.offset)] = exc
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            out.rejected[(e.partition, e.offset)] = BadRecord("invalid_record", repr(exc))
            continue
        for spec, row in rows:
            out.add(spec, row)
    return out


# --- SQL ----------------------------------------------------------------------------------


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    """``"name"`` for the plain identifiers parkstream uses; anything else is refused."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unexpected SQL identifier {name!r}")
    return f'"{name}"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def staging_sql(spec: Spec, schema: str) -> str:
    """A temporary table with the spec's columns, emptied at every commit."""
    scaled = {c.name for c in spec.columns if c.scale is not None}
    cols = ", ".join(
        f"NULL::bigint AS {quote_ident(n)}" if n in scaled else quote_ident(n) for n in spec.names
    )
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(spec.staging)} ON COMMIT DELETE ROWS AS "  # noqa: S608 - quoted identifiers of our own specs
        f"SELECT {cols} FROM {qualified(schema, spec.table)} WITH NO DATA"
    )


def _merge_expr(col: Column) -> str:
    c, new, old = (
        quote_ident(col.name),
        f"EXCLUDED.{quote_ident(col.name)}",
        f"t.{quote_ident(col.name)}",
    )
    if col.merge == "set":
        return f"{c} = {new}"
    if col.merge == "lww":
        assert col.guard is not None
        g = quote_ident(col.guard)
        return (
            f"{c} = CASE WHEN EXCLUDED.{g} IS NOT NULL AND (t.{g} IS NULL OR "
            f"EXCLUDED.{g} >= t.{g}) THEN {new} ELSE {old} END"
        )
    if col.merge == "first":
        return f"{c} = COALESCE({old}, {new})"
    if col.merge == "min":
        return f"{c} = LEAST({old}, {new})"
    if col.merge == "max":
        return f"{c} = GREATEST({old}, {new})"
    return f"{c} = {old} + {new}"


def _value(col: Column) -> str:
    value = f"s.{quote_ident(col.name)}"
    if col.scale is not None:
        value = f"({value} * 1e-{int(col.scale)}::numeric)"  # exact: a power of ten
    return f"COALESCE({value}, {col.default})" if col.default else value


def upsert_sql(spec: Spec, schema: str) -> str:
    """Merge (or insert) the staged rows of ``spec`` into its table."""
    names = ", ".join(quote_ident(n) for n in spec.names)
    values = ", ".join(
        [f"s.{quote_ident(k)}" for k in spec.keys] + [_value(c) for c in spec.columns]
    )
    head = (
        f"INSERT INTO {qualified(schema, spec.table)} AS t ({names}) "  # noqa: S608 - quoted identifiers of our own specs
        f"SELECT {values} FROM {quote_ident(spec.staging)} s "
    )
    if spec.mode == "insert":
        sql = head + "ON CONFLICT DO NOTHING"
        if spec.returning:
            sql += " RETURNING " + ", ".join(quote_ident(n) for n in spec.returning)
        return sql
    keys = ", ".join(quote_ident(k) for k in spec.keys)
    sets = ", ".join(_merge_expr(c) for c in spec.columns)
    # In key order: projectors sharing rows (a site's day) lock them in the same order.
    order = ", ".join(f"s.{quote_ident(k)}" for k in spec.keys)
    return head + f"ORDER BY {order} ON CONFLICT ({keys}) DO UPDATE SET {sets}"
