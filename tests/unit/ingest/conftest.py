"""Fixtures of the ingest tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from parkstream.decoders.registry import DecoderRegistry
from parkstream.ingest.parse import parse_message
from parkstream.ingest.result import ParseResult

from .messages import RECORDED_AT

Parse = Callable[..., ParseResult]


@pytest.fixture
def parse() -> Parse:
    """``parse_message`` with the default registry and a fixed ``recorded_at``.

    The payload may be bytes (sent as is) or a dict (serialised with orjson).
    """

    def run(topic: str, payload: bytes | dict[str, Any], **kwargs: Any) -> ParseResult:
        body = orjson.dumps(payload) if isinstance(payload, dict) else payload
        kwargs.setdefault("recorded_at", RECORDED_AT)
        kwargs.setdefault("decoders", DecoderRegistry.default())
        return parse_message(topic, body, **kwargs)

    return run
