"""Broken copies of good uplink messages, so the dead-letter path gets traffic (pure).

Three kinds, each one that ``parkstream.ingest.parse.parse_message`` rejects:
``bad_json`` (the body cut short: ``invalid_json``), ``bad_base64`` (``data`` that
is not base64: ``bad_base64``) and ``eui_mismatch`` (``deviceInfo.devEui`` of
another device: ``eui_mismatch``).
"""

from __future__ import annotations

import random
from typing import Literal

import orjson

Kind = Literal["bad_json", "bad_base64", "eui_mismatch"]
KINDS: tuple[Kind, ...] = ("bad_json", "bad_base64", "eui_mismatch")


def malformed(body: bytes, kind: Kind) -> bytes:
    """A copy of the uplink JSON ``body`` broken in the way ``kind`` names."""
    if kind == "bad_json":
        return body[: max(1, len(body) // 2)]
    doc = orjson.loads(body)
    if kind == "bad_base64":
        doc["data"] = "%%not base64%%"
    else:
        info = doc["deviceInfo"]
        eui: str = info["devEui"]
        info["devEui"] = eui[:-1] + ("0" if eui[-1] != "0" else "1")
    return orjson.dumps(doc)


def pick(rng: random.Random) -> Kind:
    return rng.choice(KINDS)
