"""Merging rows: reducing a batch first gives what merging each row on its own gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parkstream.projector.tables import Column, RowSet, Spec, upsert_sql

T0 = datetime(2026, 3, 2, tzinfo=UTC)

SPEC = Spec(
    "things",
    ("k",),
    (
        Column("name", "lww", guard="name_at"),
        Column("name_at", "max"),
        Column("first_seen", "min"),
        Column("ref", "first"),
        Column("hits", "add"),
    ),
)


def merge_one_by_one(rows: list[list[object]]) -> dict[object, tuple[object, ...]]:
    """What the table holds after each row is merged on its own (a batch per row)."""
    table: dict[object, tuple[object, ...]] = {}
    for row in rows:
        batch = RowSet(SPEC)
        if row[0] in table:
            batch.add(list(table[row[0]]))
        batch.add(list(row))
        table.update({r[0]: r for r in batch})
    return table


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
        st.one_of(st.none(), st.integers(0, 3).map(lambda h: T0 + timedelta(hours=h))),
        st.integers(0, 5).map(lambda h: T0 + timedelta(hours=h)),
        st.one_of(st.none(), st.sampled_from(["r1", "r2"])),
        st.integers(0, 3),
    ).map(lambda t: [t[0], t[1] if t[2] else None, t[2], t[3], t[4], t[5]]),
    max_size=12,
)


@given(rows_strategy, st.integers(0, 12))
def test_a_batch_split_anywhere_merges_to_the_same_rows(rows: list[list[object]], cut: int) -> None:
    # A row set keeps (and merges into) the lists it is given: each gets its own copy.
    whole = RowSet(SPEC)
    for row in rows:
        whole.add(list(row))
    first, second = RowSet(SPEC), RowSet(SPEC)
    for row in rows[:cut]:
        first.add(list(row))
    table = {r[0]: r for r in first}
    for row in rows[cut:]:
        second.add(list(row))
    for row in second:
        merged = RowSet(SPEC)
        if row[0] in table:
            merged.add(list(table[row[0]]))
        merged.add(list(row))
        table.update({r[0]: r for r in merged})
    assert {r[0]: r for r in whole} == table == merge_one_by_one(rows)


def test_last_writer_wins_by_event_time_not_by_arrival() -> None:
    rows = RowSet(SPEC)
    rows.add(["a", "new", T0 + timedelta(hours=2), T0, None, 1])
    rows.add(["a", "old", T0 + timedelta(hours=1), T0, None, 1])  # late, older
    rows.add(["a", None, None, T0, None, 1])  # another group only
    assert list(rows) == [("a", "new", T0 + timedelta(hours=2), T0, None, 3)]


def test_an_equal_time_goes_to_the_later_write() -> None:
    rows = RowSet(SPEC)
    rows.add(["a", "first", T0, T0, None, 0])
    rows.add(["a", "second", T0, T0, None, 0])
    assert next(iter(rows))[1] == "second"


def test_the_sql_merges_with_the_same_rules() -> None:
    sql = upsert_sql(SPEC, "public")
    assert sql.startswith('INSERT INTO "public"."things" AS t')
    assert 'ON CONFLICT ("k") DO UPDATE SET' in sql
    assert (
        '"name" = CASE WHEN EXCLUDED."name_at" IS NOT NULL AND (t."name_at" IS NULL OR '
        'EXCLUDED."name_at" >= t."name_at") THEN EXCLUDED."name" ELSE t."name" END'
    ) in sql
    assert '"first_seen" = LEAST(t."first_seen", EXCLUDED."first_seen")' in sql
    assert '"ref" = COALESCE(t."ref", EXCLUDED."ref")' in sql
    assert '"hits" = t."hits" + EXCLUDED."hits"' in sql


def test_insert_only_specs_keep_the_first_row_of_a_key() -> None:
    spec = Spec("log", ("id",), (Column("v"),), mode="insert", returning=("id",))
    rows = RowSet(spec)
    rows.add(["e1", 1])
    rows.add(["e1", 2])
    assert list(rows) == [("e1", 1)]
    assert upsert_sql(spec, "s").endswith('ON CONFLICT DO NOTHING RETURNING "id"')
