"""Is a new JSON Schema of a record type still safe for the consumers of an old one?

Both directions of reading matter, because records live in the topics forever:

- a consumer written against the old schema reads records written under the new one, so
  no field it reads may disappear, change type, stop being required, or take values it
  does not know;
- a reader built against the new schema replays records written under the old one, so
  the new schema may not require a field old records lack, nor refuse values (types,
  enum members, bounds, patterns) old records may hold.

Loosening a bound (a larger ``maxLength``, a smaller ``minimum``, a dropped ``pattern``)
and adding an optional field are safe. Titles, descriptions, defaults and examples are
documentation and never checked. See docs/compatibility.md for the policy.

Both schemas are self-contained documents: ``$ref`` is resolved within each (pydantic
writes ``#/$defs/...``), and ``anyOf``/``oneOf`` alternatives are compared by JSON type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Schema = Mapping[str, Any]

ANY = "any"  # pseudo JSON type of a schema that accepts every value

_EMPTY: Schema = {}
_NOTHING: Schema = {"not": {}}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# A larger value of a lower bound (or a smaller upper bound) refuses values it accepted.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
# Adding or changing these refuses values; removing them is safe.
_RESTRICTIONS = ("pattern", "multipleOf", "uniqueItems")
# These say how to read a string: any change changes its meaning.
_INTERPRETATIONS = ("format", "contentEncoding", "contentMediaType")


class SchemaError(ValueError):
    """A schema this checker cannot read (e.g. a ``$ref`` outside the document)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One incompatibility: where (a JSON path into the record) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_compatible(old: Schema, new: Schema) -> list[Violation]:
    """Every way ``new`` breaks consumers of ``old`` (an empty list when it is compatible)."""
    checker = _Checker(old, new)
    checker.compare(old, new, "$")
    return checker.violations


# --- reading schemas --------------------------------------------------------------------


def resolve(doc: Schema, node: Any) -> Schema:
    """Follow local ``$ref`` chains; boolean schemas become ``{}`` / ``{"not": {}}``."""
    seen: set[str] = set()
    while True:
        if node is True:
            return _EMPTY
        if node is False:
            return _NOTHING
        if not isinstance(node, Mapping):
            raise SchemaError(f"not a schema: {node!r}")
        ref = node.get("$ref")
        if ref is None:
            return node
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, got {ref!r}")
        if ref in seen:
            raise SchemaError(f"$ref cycle through {ref}")
        seen.add(ref)
        node = _pointer(doc, ref[1:])


def _pointer(doc: Schema, pointer: str) -> Any:
    target: Any = doc
    for token in pointer.split("/")[1:] if pointer else []:
        key = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or key not in target:
            raise SchemaError(f"$ref #{pointer} does not resolve")
        target = target[key]
    return target


def alternatives(doc: Schema, node: Any) -> list[Schema]:
    """The flat list of alternatives a value may match (``anyOf``/``oneOf``, type lists)."""
    resolved = resolve(doc, node)
    all_of = resolved.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and not _structural(resolved, "allOf"):
        return alternatives(doc, all_of[0])
    for keyword in ("anyOf", "oneOf"):
        options = resolved.get(keyword)
        if isinstance(options, list):
            return [alt for option in options for alt in alternatives(doc, option)]
    types = resolved.get("type")
    if isinstance(types, list):
        return [{**resolved, "type": t} for t in types]
    return [resolved]


def _structural(node: Schema, besides: str) -> bool:
    annotations = {"title", "description", "default", "examples", "$comment", "deprecated"}
    return any(key not in annotations and key != besides for key in node)


def json_types(alt: Schema) -> frozenset[str]:
    """The JSON types one alternative admits; ``{"any"}`` when it does not say."""
    if alt.get("not") == {}:
        return frozenset()
    if "type" in alt:
        return frozenset({str(alt["type"])})
    if "const" in alt:
        return frozenset({_type_of(alt["const"])})
    if isinstance(alt.get("enum"), list):
        return frozenset(_type_of(value) for value in alt["enum"])
    if any(k in alt for k in ("properties", "additionalProperties", "propertyNames")):
        return frozenset({"object"})
    if "items" in alt or "prefixItems" in alt:
        return frozenset({"array"})
    return frozenset({ANY})


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENTIFIER.match(name) else f"{path}[{json.dumps(name)}]"


def pair_alternatives(
    olds: Sequence[Schema], news: Sequence[Schema]
) -> tuple[list[tuple[Schema, Schema]], list[Schema], list[Schema]]:
    """Match object (or array) alternatives: by title, else one-to-one when counts agree.

    Returns the pairs, the unmatched old ones and the unmatched new ones.
    """
    if len(olds) == 1 and len(news) == 1:
        return [(olds[0], news[0])], [], []
    pairs: list[tuple[Schema, Schema]] = []
    left_old = list(olds)
    left_new = list(news)
    for new in list(left_new):
        title = new.get("title")
        same = [old for old in left_old if title is not None and old.get("title") == title]
        if len(same) == 1:
            pairs.append((same[0], new))
            left_old.remove(same[0])
            left_new.remove(new)
    if len(left_old) == len(left_new):
        pairs.extend(zip(left_old, left_new, strict=True))
        return pairs, [], []
    return pairs, left_old, left_new


# --- comparing --------------------------------------------------------------------------


@dataclass
class _Checker:
    old_doc: Schema
    new_doc: Schema
    violations: list[Violation] = field(default_factory=list)
    _active: set[tuple[int, int]] = field(default_factory=set)

    def report(self, path: str, message: str) -> None:
        self.violations.append(Violation(path, message))

    def compare(self, old: Any, new: Any, path: str) -> None:
        old_alts = alternatives(self.old_doc, old)
        new_alts = alternatives(self.new_doc, new)
        guard = (id(resolve(self.old_doc, old)), id(resolve(self.new_doc, new)))
        if guard in self._active:  # a recursive schema: this pair is being compared above
            return
        self._active.add(guard)
        try:
            self._compare_alternatives(old_alts, new_alts, path)
        finally:
            self._active.discard(guard)

    def _compare_alternatives(self, olds: list[Schema], news: list[Schema], path: str) -> None:
        old_by = _by_type(olds)
        new_by = _by_type(news)
        if set(old_by) != set(new_by):
            self.report(path, _type_change(frozenset(old_by), frozenset(new_by)))
        for json_type in sorted(set(old_by) & set(new_by)):
            self._compare_typed(json_type, old_by[json_type], new_by[json_type], path)

    def _compare_typed(
        self, json_type: str, olds: list[Schema], news: list[Schema], path: str
    ) -> None:
        self._compare_values(_values(olds, json_type), _values(news, json_type), path)
        if json_type == "object":
            pairs, gone, added = pair_alternatives(olds, news)
            for old in gone:
                self.report(
                    path, f"object shape {_name(old)} removed: older records no longer validate"
                )
            for new in added:
                self.report(
                    path,
                    f"new object shape {_name(new)}: consumers of the old schema do not know it",
                )
            for old, new in pairs:
                self._compare_object(old, new, path)
            return
        if len(olds) == 1 and len(news) == 1:
            self._compare_constraints(olds[0], news[0], path)
            if json_type == "array":
                self._compare_array(olds[0], news[0], path)
            return
        if {_canonical(o) for o in olds} != {_canonical(n) for n in news}:
            self.report(path, f"the {json_type} alternatives changed")

    def _compare_values(
        self, old: frozenset[str] | None, new: frozenset[str] | None, path: str
    ) -> None:
        if old == new:
            return
        if old is None:
            assert new is not None
            self.report(
                path, f"now restricted to {_show(new)}: older records may hold other values"
            )
        elif new is None:
            self.report(
                path,
                f"no longer restricted to {_show(old)}: "
                "consumers of the old schema get values they do not know",
            )
        elif len(old) == 1 and len(new) == 1:
            self.report(path, f"value changed from {_show(old)} to {_show(new)}")
        else:
            if new - old:
                self.report(
                    path,
                    f"new value(s) {_show(new - old)}: "
                    "consumers of the old schema do not know them",
                )
            if old - new:
                self.report(
                    path,
                    f"value(s) {_show(old - new)} removed: older records holding them no longer "
                    "validate",
                )

    def _compare_constraints(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_BOUNDS:
            before, after = old.get(key), new.get(key)
            if after is not None and (before is None or after > before):
                self.report(path, _tightened(key, before, after))
        for key in _UPPER_BOUNDS:
            before, after = old.get(key), new.get(key)
            if after is not None and (before is None or after < before):
                self.report(path, _tightened(key, before, after))
        for key in _RESTRICTIONS:
            before, after = old.get(key), new.get(key)
            if after not in (None, False) and after != before:
                self.report(path, _tightened(key, before, after))
        for key in _INTERPRETATIONS:
            before, after = old.get(key), new.get(key)
            if before != after:
                self.report(path, f"{key} changed from {json.dumps(before)} to {json.dumps(after)}")

    def _compare_array(self, old: Schema, new: Schema, path: str) -> None:
        old_prefix = old.get("prefixItems") or []
        new_prefix = new.get("prefixItems") or []
        if len(old_prefix) != len(new_prefix):
            self.report(path, f"tuple length changed from {len(old_prefix)} to {len(new_prefix)}")
        for index, (before, after) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(before, after, f"{path}[{index}]")
        if "items" in old or "items" in new:
            self.compare(old.get("items", True), new.get("items", True), f"{path}[*]")

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties") or {}
        new_props: Mapping[str, Any] = new.get("properties") or {}
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        for name in sorted(old_props):
            where = child_path(path, name)
            if name not in new_props:
                self.report(
                    where, "field removed (or renamed): consumers of the old schema read it"
                )
                continue
            if name in old_required and name not in new_required:
                self.report(
                    where,
                    "field no longer required: "
                    "consumers of the old schema rely on it being present",
                )
            elif name not in old_required and name in new_required:
                self.report(
                    where,
                    "optional field became required: older records without it no longer validate",
                )
            self.compare(old_props[name], new_props[name], where)
        for name in sorted(set(new_props) - set(old_props)):
            if name in new_required:
                self.report(
                    child_path(path, name), "new required field: older records do not carry it"
                )
        self._compare_additional(old, new, path)
        self._compare_constraints(old, new, path)

    def _compare_additional(self, old: Schema, new: Schema, path: str) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if after is False and before is not False:
            self.report(
                path,
                "fields not listed are no longer allowed: older records carrying them "
                "no longer validate",
            )
        elif before is not False and after is not False:
            self.compare(before, after, f"{path}.*")
        if "propertyNames" in old or "propertyNames" in new:
            self.compare(
                old.get("propertyNames", True), new.get("propertyNames", True), f"{path}(keys)"
            )


def _by_type(alts: Sequence[Schema]) -> dict[str, list[Schema]]:
    grouped: dict[str, list[Schema]] = {}
    for alt in alts:
        for json_type in json_types(alt):
            grouped.setdefault(json_type, []).append(alt)
    return grouped


def _values(alts: Sequence[Schema], json_type: str) -> frozenset[str] | None:
    """The values of ``json_type`` the alternatives allow, as canonical JSON; None: any."""
    values: set[str] = set()
    for alt in alts:
        if "const" in alt:
            candidates: list[Any] = [alt["const"]]
        elif isinstance(alt.get("enum"), list):
            candidates = list(alt["enum"])
        else:
            return None
        values.update(_canonical(v) for v in candidates if _type_of(v) == json_type)
    return frozenset(values)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _show(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _type_change(old: frozenset[str], new: frozenset[str]) -> str:
    if new == old - {"null"}:
        return "no longer allows null: older records holding null no longer validate"
    if new == old | {"null"}:
        return "may now be null: consumers of the old schema do not expect null"
    return f"type changed from {_show_types(old)} to {_show_types(new)}"


def _show_types(types: frozenset[str]) -> str:
    return " | ".join(sorted(types)) or "nothing"


def _tightened(key: str, before: Any, after: Any) -> str:
    if before is None:
        return f"{key} {json.dumps(after)} added: older records may not satisfy it"
    return (
        f"{key} changed from {json.dumps(before)} to {json.dumps(after)}: "
        "older records may not satisfy it"
    )


def _name(alt: Schema) -> str:
    title = alt.get("title")
    return repr(title) if isinstance(title, str) else "(untitled)"
