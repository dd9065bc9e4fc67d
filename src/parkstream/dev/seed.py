"""The demo lot of ``parkstream dev``: one tenant, one site, a bay per simulated bay.

Commands get ids derived from what they set, so seeding twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.ids import derive_id
from parkstream.simulate.lot import LotConfig

DEMO_TENANT = "demo"
DEMO_SITE = "demo-lot"
DEMO_TIME_ZONE = "Europe/Amsterdam"


def seed_commands(lot: LotConfig, now: datetime, tenant: str = DEMO_TENANT) -> list[Envelope]:
    """Register a bay for every simulated bay, with its sensor and its light."""
    commands: list[Envelope] = []
    for index in range(lot.bays):
        number = index + 1
        space_id = f"{DEMO_SITE}-{number:03d}"

        def envelope(kind: str, space_id: str = space_id) -> dict[str, object]:
            return {
                "event_id": derive_id("dev-seed", tenant, space_id, kind),
                "tenant_id": tenant,
                "space_id": space_id,
                "occurred_at": now,
                "recorded_at": now,
                "source": Source(kind="cli"),
            }

        commands.append(
            cmd.RegisterSpace(
                **envelope("register"),
                data=cmd.RegisterSpaceData(
                    site_id=DEMO_SITE,
                    name=f"Bay {number}",
                    code=f"B{number:03d}",
                    time_zone=DEMO_TIME_ZONE,
                    # The simulated sensors send a heartbeat every simulated hour, which
                    # at the default speed is a minute: silence after ten minutes.
                    config=cmd.SpaceConfig(heartbeat_s=300, silence_factor=2.0),
                ),
            )
        )
        commands.append(
            cmd.AssignDevice(
                **envelope("sensor"),
                data=cmd.AssignDeviceData(dev_eui=lot.sensor_eui(index), role="sensor"),
            )
        )
        commands.append(
            cmd.AssignDevice(
                **envelope("display"),
                data=cmd.AssignDeviceData(dev_eui=lot.light_eui(index), role="display"),
            )
        )
    return commands


async def send_seed(settings: Settings, commands: list[Envelope]) -> None:
    from aiokafka import AIOKafkaProducer

    from parkstream.domain.contract import encode
    from parkstream.kafka_profile import aiokafka_producer_kwargs

    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings))
    await producer.start()
    try:
        for c in commands:
            assert c.space_id is not None
            await producer.send(
                settings.topic("space-commands.v1"), encode(c), key=c.space_id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()
