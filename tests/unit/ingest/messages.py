"""Captured ChirpStack messages and topic helpers shared by the ingest tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "chirpstack"
V4_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
V3_APP = "12"
RECORDED_AT = datetime(2026, 7, 23, 12, 0, 0, tzinfo=UTC)

BOSCH_EUI = "0101010101010101"
NWAVE_EUI = "70b3d5e75e00aa01"
KUANDO_EUI = "2020204100c30a01"
CODEC_EUI = "a84041000181c4e1"


def v4_topic(dev_eui: str, event: str = "up") -> str:
    return f"application/{V4_APP}/device/{dev_eui}/event/{event}"


def v3_topic(dev_eui: str, event: str = "up") -> str:
    return f"application/{V3_APP}/device/{dev_eui}/event/{event}"


def v3_legacy_topic(dev_eui: str, event: str = "rx") -> str:
    return f"application/{V3_APP}/device/{dev_eui}/{event}"


def raw(name: str) -> bytes:
    """The bytes of ``tests/fixtures/chirpstack/<name>`` exactly as captured."""
    return (FIXTURES / name).read_bytes()


def doc(name: str) -> dict[str, Any]:
    """A fixture as a dict, to vary one field in a test."""
    loaded: dict[str, Any] = orjson.loads(raw(name))
    return loaded
