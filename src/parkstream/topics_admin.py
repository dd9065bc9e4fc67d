"""Create the catalogue's topics and report drift between the catalogue and the cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parkstream.catalogue import TopicSpec, for_profile, load_catalogue
from parkstream.config import Settings
from parkstream.kafka_profile import aiokafka_client_kwargs

TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    """The cluster refused to create a topic."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift


def _partition_count(description: Any) -> int | None:
    if isinstance(description, dict):
        partitions = description.get("partitions")
        return len(partitions) if partitions is not None else None
    return None


async def apply_topics(
    settings: Settings, specs: tuple[TopicSpec, ...] | None = None
) -> ApplyReport:
    """Create missing topics; compare partitions and configs of existing ones."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    specs = tuple(for_profile(s, settings) for s in (specs or load_catalogue()))
    report = ApplyReport()
    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [s for s in specs if s.full_name(settings) not in present]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=s.full_name(settings),
                        num_partitions=s.partitions,
                        replication_factor=s.replication_factor,
                        topic_configs=dict(s.config),
                    )
                    for s in missing
                ]
            )
            for topic, code, message in _topic_errors(response):
                if code == TOPIC_ALREADY_EXISTS:
                    present.add(topic)  # created meanwhile by another process
                elif code != 0:
                    raise TopicAdminError(f"cannot create {topic}: {message} (error {code})")
            report.created.extend(
                s.full_name(settings) for s in missing if s.full_name(settings) not in present
            )
        existing = [s for s in specs if s.full_name(settings) in present]
        if existing:
            descriptions = await admin.describe_topics([s.full_name(settings) for s in existing])
            by_name = {d.get("topic"): d for d in descriptions if isinstance(d, dict)}
            for s in existing:
                name = s.full_name(settings)
                report.existing.append(name)
                count = _partition_count(by_name.get(name))
                if count is not None and count != s.partitions:
                    report.drift.append(
                        f"{name}: {count} partitions, catalogue says {s.partitions}"
                    )
            resources = [
                ConfigResource(ConfigResourceType.TOPIC, s.full_name(settings)) for s in existing
            ]
            responses = await admin.describe_configs(resources)
            actual = _configs(responses)
            for s in existing:
                name = s.full_name(settings)
                for key, want in s.config.items():
                    have = actual.get(name, {}).get(key)
                    if have is not None and have != want:
                        report.drift.append(f"{name}: {key}={have}, catalogue says {want}")
    finally:
        await admin.close()
    return report


def _topic_errors(response: Any) -> list[tuple[str, int, str]]:
    return [(str(e[0]), int(e[1]), str(e[2]) if len(e) > 2 else "") for e in response.topic_errors]


def _configs(responses: list[Any]) -> dict[str, dict[str, str]]:
    """Topic -> config entries from DescribeConfigs responses (any API version)."""
    out: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in getattr(response, "resources", []):
            # (error_code, error_message, resource_type, resource_name, config_entries)
            name = resource[3]
            entries = resource[4]
            out[name] = {str(e[0]): str(e[1]) for e in entries if e[1] is not None}
    return out
