"""What ships with the package: the migrations, and NDJSON lines that keep records exact."""

from __future__ import annotations

from parkstream.domain.contract import encode
from parkstream.projector.migrate import load_migrations
from parkstream.projector.ndjson import from_line, to_line

from .lot import scripted


def test_the_migrations_are_found_in_order_through_importlib_resources() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert [m.name for m in migrations][:4] == ["registry", "reservations", "activity", "offsets"]
    assert "CREATE TABLE actuations" in migrations[2].sql


def test_an_ndjson_line_gives_back_the_exact_key_and_bytes() -> None:
    for event in scripted(bays=2, hours=4).events:
        key, value = (event.space_id or event.dev_eui or "").encode(), encode(event)
        line = to_line(key, value)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert from_line(line) == (key, value)


def test_values_that_are_not_json_and_keys_that_are_not_text_survive() -> None:
    line = to_line(b"\xff\x00", b"\x00garbage")
    assert from_line(line) == (b"\xff\x00", b"\x00garbage")
    assert from_line(to_line(None, b"{}")) == (None, b"{}")
