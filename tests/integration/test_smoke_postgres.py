"""Create a table, insert and query through asyncpg against the harness's database."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_create_insert_query(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await conn.execute(
            "CREATE TEMP TABLE smoke_spaces (space_id text PRIMARY KEY, state text NOT NULL, n int)"
        )
        await conn.executemany(
            "INSERT INTO smoke_spaces (space_id, state, n) VALUES ($1, $2, $3)",
            [("bay-1", "FREE", 1), ("bay-2", "OCCUPIED", 2), ("bay-3", "FREE", 3)],
        )
        rows = await conn.fetch(
            "SELECT space_id, n FROM smoke_spaces WHERE state = $1 ORDER BY space_id", "FREE"
        )
        assert [(r["space_id"], r["n"]) for r in rows] == [("bay-1", 1), ("bay-3", 3)]
        expected_db = urlsplit(database_url).path.lstrip("/")
        assert await conn.fetchval("SELECT current_database()") == expected_db
    finally:
        await conn.close()
