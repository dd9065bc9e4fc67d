"""The ``schemas/`` directory: current schemas from the models, published ones kept forever.

Layout (docs/compatibility.md explains the policy)::

    schemas/index.json                                  topic -> type -> current and published
    schemas/asyncapi.json                               the AsyncAPI document of the topics
    schemas/<topic>/<type>.v<version>.json              current, rewritten by ``generate``
    schemas/published/manifest.json                     every published file and its sha256
    schemas/published/<topic>/<type>.v<version>.r<revision>.json   immutable, never deleted

A schema describes what a consumer reads: the serialisation of the model, where every
field ``encode`` writes is required, except fields added (with a default) after the
version's first publication, which older records lack. Compatible changes publish a new
revision of the same version; a breaking change needs a new version and an upcaster.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from parkstream import __version__
from parkstream.catalogue import TopicSpec, load_catalogue
from parkstream.domain.contract import TOPIC_TYPES, UPCASTERS, Upcaster
from parkstream.domain.envelope import Envelope
from parkstream.schemas import asyncapi, examples
from parkstream.schemas.compat import (
    Schema,
    alternatives,
    check_compatible,
    json_types,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_URL = "https://parkstream.dev/schemas/"
INDEX = "index.json"
ASYNCAPI = asyncapi.FILENAME
PUBLISHED = "published"
MANIFEST = f"{PUBLISHED}/manifest.json"
GENERATED_NOTE = (
    "Generated from the parkstream models by `parkstream schemas generate`; do not edit."
)

TopicTypes = Mapping[str, Sequence[type[Envelope]]]


class SchemaStoreError(Exception):
    """The schemas directory refuses the operation; the message says why."""


class PublishError(SchemaStoreError):
    """Publishing would break the contract or change a published file."""


class ManifestError(SchemaStoreError):
    """``published/manifest.json`` cannot be read."""


@dataclass(frozen=True, order=True, slots=True)
class SchemaKey:
    """One version of one record type on one topic."""

    topic: str
    type: str
    version: int

    @property
    def current_path(self) -> str:
        return f"{self.topic}/{self.type}.v{self.version}.json"

    @property
    def url(self) -> str:
        return BASE_URL + self.current_path

    def published_path(self, revision: int) -> str:
        return f"{PUBLISHED}/{self.topic}/{self.type}.v{self.version}.r{revision}.json"

    def __str__(self) -> str:
        return f"{self.type} v{self.version} ({self.topic})"


@dataclass(frozen=True, order=True, slots=True)
class Publication:
    """A published revision of a schema: the file ``key.published_path(revision)``."""

    key: SchemaKey
    revision: int
    sha256: str

    @property
    def path(self) -> str:
        return self.key.published_path(self.revision)


def render(doc: Mapping[str, Any]) -> str:
    """The one text of a schema: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _EveryFieldRequired(GenerateJsonSchema):
    """Serialisation mode where a field is required whenever ``encode`` always writes it."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def build_schema(key: SchemaKey, cls: type[Envelope], baseline: Schema | None) -> dict[str, Any]:
    """The schema of ``cls``; ``baseline`` is the version's first published revision."""
    emitted = cls.model_json_schema(mode="serialization", schema_generator=_EveryFieldRequired)
    defaults = cls.model_json_schema(mode="serialization")
    if baseline is not None:
        _mark_added_fields_optional(emitted, defaults, baseline)
    # The file describes records of this one version: readers upcast older ones first.
    emitted["properties"]["version"]["const"] = key.version
    return {"$schema": DIALECT, "$id": key.url, "$comment": GENERATED_NOTE, **emitted}


def _mark_added_fields_optional(
    emitted: dict[str, Any], defaults: Schema, baseline: Schema
) -> None:
    """Drop from ``required`` the defaulted fields the baseline did not have.

    ``emitted`` and ``defaults`` come from the same model (every field required vs only
    fields without a default), so they share one structure and are walked in step;
    the baseline is matched by path, resolving its own ``$ref``.
    """
    active: set[tuple[int, int]] = set()

    def walk(node: Any, default_node: Any, old_node: Any) -> None:
        olds = alternatives(baseline, old_node) if old_node is not None else []
        pairs = zip(alternatives(emitted, node), alternatives(defaults, default_node), strict=True)
        for alt, default_alt in pairs:
            old = _counterpart(alt, olds)
            guard = (id(alt), id(old))
            if guard in active:
                continue
            active.add(guard)
            try:
                visit(alt, default_alt, old)
            finally:
                active.discard(guard)

    def visit(alt: Schema, default_alt: Schema, old: Schema | None) -> None:
        properties = alt.get("properties")
        if isinstance(properties, Mapping):
            old_properties = old.get("properties") if old is not None else None
            if isinstance(old_properties, Mapping) and isinstance(alt, dict):
                without_default = set(default_alt.get("required") or ())
                required = [
                    name
                    for name in alt.get("required") or ()
                    if name in without_default or name in old_properties
                ]
                if required:
                    alt["required"] = required
                else:
                    alt.pop("required", None)
            for name, sub in properties.items():
                old_sub = old_properties.get(name) if isinstance(old_properties, Mapping) else None
                walk(sub, default_alt["properties"][name], old_sub)
        for keyword in ("items", "additionalProperties", "propertyNames"):
            if isinstance(alt.get(keyword), Mapping):
                old_sub = old.get(keyword) if old is not None else None
                walk(alt[keyword], default_alt[keyword], old_sub)
        old_prefix = (old.get("prefixItems") if old is not None else None) or []
        for index, sub in enumerate(alt.get("prefixItems") or []):
            old_sub = old_prefix[index] if index < len(old_prefix) else None
            walk(sub, default_alt["prefixItems"][index], old_sub)

    walk(emitted, defaults, baseline)


def _counterpart(alt: Schema, olds: Sequence[Schema]) -> Schema | None:
    same_type = [old for old in olds if json_types(old) == json_types(alt)]
    if len(same_type) == 1:
        return same_type[0]
    titled = [old for old in same_type if old.get("title") == alt.get("title")]
    return titled[0] if len(titled) == 1 else None


def _drifted(relative: str) -> str:
    if relative == ASYNCAPI:
        return (
            "differs from what the topic catalogue and the schemas give "
            "(a topic or a schema changed without the document)"
        )
    return "differs from the models"


class SchemaStore:
    """The ``schemas/`` directory at ``root``, for the record types of ``topic_types``.

    ``catalogue`` (the topic catalogue by default) and ``version`` (the package's) feed
    the AsyncAPI document.
    """

    def __init__(
        self,
        root: Path,
        topic_types: TopicTypes = TOPIC_TYPES,
        upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
        catalogue: Sequence[TopicSpec] | None = None,
        version: str = __version__,
    ) -> None:
        self.root = root
        self.topic_types = topic_types
        self.upcasters = upcasters
        self.catalogue = load_catalogue() if catalogue is None else tuple(catalogue)
        self.version = version

    # --- reading ---------------------------------------------------------------------

    def models(self) -> dict[SchemaKey, type[Envelope]]:
        return {
            SchemaKey(topic, cls.TYPE, cls.VERSION): cls
            for topic, types in self.topic_types.items()
            for cls in types
        }

    def publications(self) -> list[Publication]:
        path = self.root / MANIFEST
        if not path.exists():
            return []
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            pubs = [
                Publication(
                    SchemaKey(str(e["topic"]), str(e["type"]), int(e["version"])),
                    int(e["revision"]),
                    str(e["sha256"]),
                )
                for e in raw["published"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc!r})") from exc
        return sorted(pubs)

    def read(self, relative: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.root / relative).read_text(encoding="utf-8"))
        return doc

    def current(self, pubs: Sequence[Publication]) -> dict[SchemaKey, dict[str, Any]]:
        """The schema of every model, relaxed against its version's first publication."""
        first: dict[SchemaKey, Publication] = {}
        for pub in sorted(pubs, reverse=True):
            first[pub.key] = pub
        return {
            key: build_schema(key, cls, self.read(first[key].path) if key in first else None)
            for key, cls in sorted(self.models().items())
        }

    def index(
        self, current: Mapping[SchemaKey, Any], pubs: Sequence[Publication]
    ) -> dict[str, Any]:
        topics: dict[str, dict[str, dict[str, Any]]] = {}

        def entry(key: SchemaKey) -> dict[str, Any]:
            types = topics.setdefault(key.topic, {})
            return types.setdefault(key.type, {"current": None, "published": []})

        for key in current:
            entry(key)["current"] = {
                "version": key.version,
                "path": key.current_path,
                "$id": key.url,
            }
        for pub in pubs:
            entry(pub.key)["published"].append(
                {"version": pub.key.version, "revision": pub.revision, "path": pub.path}
            )
        return {"$comment": GENERATED_NOTE, "topics": topics}

    def readable(
        self, pubs: Sequence[Publication], current: Mapping[SchemaKey, Schema]
    ) -> dict[tuple[str, str, int], Schema]:
        """The schema of every type and version a consumer may read on a topic.

        The current schema of each model, and for older versions still in the topics,
        their latest published revision.
        """
        latest: dict[SchemaKey, Publication] = {pub.key: pub for pub in sorted(pubs)}
        schemas: dict[tuple[str, str, int], Schema] = {
            (key.topic, key.type, key.version): self.read(pub.path)
            for key, pub in latest.items()
            if key not in current
        }
        for key, doc in current.items():
            schemas[(key.topic, key.type, key.version)] = doc
        return schemas

    def asyncapi(
        self, pubs: Sequence[Publication], current: Mapping[SchemaKey, Schema] | None = None
    ) -> dict[str, Any]:
        """The AsyncAPI document of the catalogue's public topics and these schemas."""
        current = self.current(pubs) if current is None else current
        try:
            return asyncapi.build(
                self.catalogue, self.readable(pubs, current), self.version, examples.by_message()
            )
        except asyncapi.AsyncAPIError as exc:
            raise SchemaStoreError(f"{self.root / ASYNCAPI}: {exc}") from exc

    def expected_files(
        self, pubs: Sequence[Publication], current: Mapping[SchemaKey, Schema] | None = None
    ) -> dict[str, str]:
        current = self.current(pubs) if current is None else current
        files = {key.current_path: render(doc) for key, doc in current.items()}
        files[INDEX] = render(self.index(current, pubs))
        files[ASYNCAPI] = render(self.asyncapi(pubs, current))
        return files

    def _generated_on_disk(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*.json")
            if path.relative_to(self.root).parts[0] != PUBLISHED
        }

    # --- checking --------------------------------------------------------------------

    def integrity(self) -> list[str]:
        """Published files that are missing, changed, unlisted or out of sequence."""
        try:
            pubs = self.publications()
        except ManifestError as exc:
            return [str(exc)]
        problems: list[str] = []
        revisions: dict[SchemaKey, list[int]] = {}
        for pub in pubs:
            revisions.setdefault(pub.key, []).append(pub.revision)
            path = self.root / pub.path
            if not path.exists():
                problems.append(f"{path}: published but missing")
            elif sha256(path.read_text(encoding="utf-8")) != pub.sha256:
                problems.append(
                    f"{path}: changed after publication (published files are immutable)"
                )
        for key, revs in sorted(revisions.items()):
            if revs != list(range(1, len(revs) + 1)):
                problems.append(f"{key}: published revisions {revs} are not 1..{len(revs)}")
        listed = {pub.path for pub in pubs} | {MANIFEST}
        published_dir = self.root / PUBLISHED
        if published_dir.is_dir():
            for path in sorted(published_dir.rglob("*")):
                if path.is_file() and path.relative_to(self.root).as_posix() not in listed:
                    problems.append(f"{path}: not in {MANIFEST}")
        return problems

    def drift(
        self, pubs: Sequence[Publication], current: Mapping[SchemaKey, Schema] | None = None
    ) -> list[str]:
        """Generated files that differ from what the models (and the catalogue) produce."""
        try:
            expected = self.expected_files(pubs, current)
        except SchemaStoreError as exc:
            return [str(exc)]
        problems: list[str] = []
        for relative, text in sorted(expected.items()):
            path = self.root / relative
            if not path.exists():
                problems.append(f"{path}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{path}: {_drifted(relative)}")
        for relative in sorted(self._generated_on_disk() - set(expected)):
            problems.append(f"{self.root / relative}: no model produces it")
        return problems

    def compatibility(
        self, pubs: Sequence[Publication], current: Mapping[SchemaKey, Schema] | None = None
    ) -> list[str]:
        """Ways the models break what was published (backward-transitive)."""
        current = self.current(pubs) if current is None else current
        by_type = {(key.topic, key.type): key for key in current}
        problems: list[str] = []
        published_versions: dict[tuple[str, str], set[int]] = {}
        for pub in pubs:
            published_versions.setdefault((pub.key.topic, pub.key.type), set()).add(pub.key.version)
        for (topic, type_name), versions in sorted(published_versions.items()):
            key = by_type.get((topic, type_name))
            if key is None:
                problems.append(
                    f"{type_name} ({topic}) was published but no model writes it: "
                    "record types are never removed, renamed or moved"
                )
                continue
            if max(versions) > key.version:
                problems.append(f"{key}: v{max(versions)} was published; versions never go back")
            for version in range(min(versions), key.version):
                if (type_name, version) not in self.upcasters:
                    problems.append(
                        f"{key}: no upcaster from v{version} to v{version + 1} "
                        "in parkstream.domain.contract.UPCASTERS"
                    )
        for pub in pubs:
            if pub.key in current:
                for violation in check_compatible(self.read(pub.path), current[pub.key]):
                    problems.append(f"{pub.key} breaks published r{pub.revision}: {violation}")
        return problems

    def check(self) -> list[str]:
        """Everything CI refuses: tampered published files, drift, incompatibility."""
        problems = self.integrity()
        if problems:
            return problems
        pubs = self.publications()
        current = self.current(pubs)
        return self.drift(pubs, current) + self.compatibility(pubs, current)

    # --- writing ---------------------------------------------------------------------

    def generate(self) -> list[str]:
        """Write the current schemas and the index; remove generated files of no model."""
        problems = self.integrity()
        if problems:
            raise SchemaStoreError("\n".join(problems))
        pubs = self.publications()
        expected = self.expected_files(pubs)
        changed: list[str] = []
        for relative, text in sorted(expected.items()):
            path = self.root / relative
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                changed.append(str(path))
        for relative in sorted(self._generated_on_disk() - set(expected)):
            path = self.root / relative
            path.unlink()
            changed.append(f"{path} (removed)")
        return changed

    def publish(self) -> list[str]:
        """Publish each current schema that differs from its latest published revision."""
        problems = self.integrity()
        if problems:
            raise PublishError("\n".join(problems))
        pubs = self.publications()
        problems = self.compatibility(pubs)
        if problems:
            raise PublishError("\n".join(problems))
        latest: dict[SchemaKey, Publication] = {pub.key: pub for pub in pubs}
        added: list[Publication] = []
        for key, doc in self.current(pubs).items():
            text = render(doc)
            previous = latest.get(key)
            if (
                previous is not None
                and (self.root / previous.path).read_text(encoding="utf-8") == text
            ):
                continue
            pub = Publication(key, previous.revision + 1 if previous else 1, sha256(text))
            path = self.root / pub.path
            if path.exists() and path.read_text(encoding="utf-8") != text:
                raise PublishError(
                    f"{path}: exists with other content; published files are immutable"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            added.append(pub)
        if added:
            self._write_manifest(sorted([*pubs, *added]))
        self.generate()
        return [str(self.root / pub.path) for pub in added]

    def _write_manifest(self, pubs: Sequence[Publication]) -> None:
        manifest = {
            "$comment": "Written by `parkstream schemas publish`; entries are only ever added.",
            "published": [
                {
                    "path": pub.path,
                    "revision": pub.revision,
                    "sha256": pub.sha256,
                    "topic": pub.key.topic,
                    "type": pub.key.type,
                    "version": pub.key.version,
                }
                for pub in pubs
            ],
        }
        path = self.root / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(manifest), encoding="utf-8")
