"""The topic catalogue (``streams/topics.toml``): names, keys, partitions, configs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

from parkstream.config import Settings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    replication_factor: int
    public: bool
    description: str
    config: dict[str, str] = field(default_factory=dict)

    def full_name(self, settings: Settings) -> str:
        return settings.topic(self.name)


def _parse(text: str) -> tuple[TopicSpec, ...]:
    raw = tomllib.loads(text)
    specs = []
    for entry in raw.get("topic", []):
        specs.append(
            TopicSpec(
                name=str(entry["name"]),
                key=str(entry["key"]),
                partitions=int(entry["partitions"]),
                replication_factor=int(entry["replication_factor"]),
                public=bool(entry.get("public", False)),
                description=str(entry.get("description", "")),
                config={str(k): str(v) for k, v in entry.get("config", {}).items()},
            )
        )
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("topic catalogue names a topic twice")
    return tuple(specs)


def load_catalogue() -> tuple[TopicSpec, ...]:
    """The catalogue shipped with the package (a link to ``streams/topics.toml``)."""
    text = resources.files("parkstream.catalogue").joinpath("topics.toml").read_text("utf-8")
    return _parse(text)


def for_profile(spec: TopicSpec, settings: Settings) -> TopicSpec:
    """The topic as created under ``settings``: its replication factor from
    :meth:`Settings.replication_factor` (1 on the dev/test broker, or as set), and
    ``min.insync.replicas`` no higher than that."""
    replicas = settings.replication_factor(spec.replication_factor)
    if replicas == spec.replication_factor:
        return spec
    config = dict(spec.config)
    if "min.insync.replicas" in config:
        config["min.insync.replicas"] = str(min(int(config["min.insync.replicas"]), replicas))
    return TopicSpec(
        name=spec.name,
        key=spec.key,
        partitions=spec.partitions,
        replication_factor=replicas,
        public=spec.public,
        description=spec.description,
        config=config,
    )


def topic_spec(name: str) -> TopicSpec:
    for spec in load_catalogue():
        if spec.name == name:
            return spec
    raise KeyError(f"no topic {name!r} in the catalogue")
