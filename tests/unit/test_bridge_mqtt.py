"""The bridge's MQTT client settings."""

from __future__ import annotations

import logging
from typing import Any

import aiomqtt
import pytest

from parkstream.bridge.mqtt import make_client, parse_mqtt_url
from parkstream.config import Settings


def _warnings_on_publish(client: Any, in_flight: int) -> list[str]:
    """What aiomqtt logs at WARNING when a publish starts with ``in_flight`` awaiting PUBACK."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                seen.append(record.getMessage())

    handler = Collect()
    client._logger.addHandler(handler)
    try:
        client._pending_publishes.update(dict.fromkeys(range(1, in_flight + 1)))
        with client._pending_call(in_flight + 1, None, client._pending_publishes):
            pass
    finally:
        client._logger.removeHandler(handler)
        client._pending_publishes.clear()
    return seen


async def test_a_batch_of_downlinks_in_flight_logs_no_warning_per_publish() -> None:
    # aiomqtt's default warns on every publish beyond ten in flight ...
    assert _warnings_on_publish(aiomqtt.Client("127.0.0.1"), 500)
    # ... the bridge publishes whole fetched batches at once, so its client does not.
    client = make_client(Settings(), client_id="t", clean_session=True)
    assert _warnings_on_publish(client, 500) == []
    assert _warnings_on_publish(client, 10_000)  # a true pile-up still warns


def test_mqtt_urls() -> None:
    assert parse_mqtt_url("mqtts://broker").port == 8883
    assert parse_mqtt_url("mqtt://127.0.0.1:1884").port == 1884
    with pytest.raises(ValueError, match="scheme"):
        parse_mqtt_url("http://broker")
