"""The committed schemas are what the models generate, and the models break nothing published.

This is the comparison ``parkstream schemas check`` makes in CI, run in-process so that
``pytest`` fails on drift too. Fix drift with ``parkstream schemas generate``.
"""

from __future__ import annotations

from pathlib import Path

from parkstream.schemas.generate import SchemaStore

REPO_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_the_committed_schemas_match_the_models_and_every_published_schema() -> None:
    problems = SchemaStore(REPO_SCHEMAS).check()

    assert problems == [], "\n".join(
        ["schemas/ is out of step (run `parkstream schemas generate`):", *problems]
    )
