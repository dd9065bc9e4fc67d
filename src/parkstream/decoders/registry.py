"""Choosing the decoder of an uplink, and running it.

Order, first match wins:

1. a per-device override (``dev_eui -> decoder name``);
2. the device tag ``parkstream_decoder`` (the key is configurable; ChirpStack
   merges device-profile tags with device tags, so either level works);
3. the device profile name, matched by case-insensitive substring or regex rules
   (defaults: tps110/bosch, nps405/nwave, tekzi, tbms100/browan, kuando/busylight);
4. the ChirpStack-decoded ``object``, through :class:`ObjectMapping`, when present;
5. nothing: an unknown device type is not an error, the uplink just has no reading.

The names ``none`` (explicitly no decoder) and ``object`` (force the object
mapping) are accepted wherever a decoder name is. The registry is immutable and
built from plain config (see :meth:`DecoderRegistry.from_config`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from parkstream.decoders import bosch_tps110, browan_tbms100, kuando, nwave_nps405, tekzitel
from parkstream.decoders.base import UNKNOWN_DECODER, DecodeFailure, Decoder, DecodeResult
from parkstream.decoders.object_mapping import NAME as OBJECT
from parkstream.decoders.object_mapping import ObjectMapping, ObjectMappingError
from parkstream.domain.ids import InvalidEui, normalize_eui

NONE = "none"
DEFAULT_TAG_KEY = "parkstream_decoder"
DECODER_CRASHED = "decoder_crashed"

BUILTIN_DECODERS: Mapping[str, Decoder] = MappingProxyType(
    {
        bosch_tps110.NAME: bosch_tps110.decode,
        nwave_nps405.NAME: nwave_nps405.decode,
        tekzitel.NAME: tekzitel.decode,
        browan_tbms100.NAME: browan_tbms100.decode,
        kuando.NAME: kuando.decode,
    }
)

Via = Literal["override", "tag", "profile", "object"]


class DecoderConfigError(ValueError):
    """Decoder configuration that names an unknown decoder or is malformed."""


@dataclass(frozen=True, slots=True)
class ProfileRule:
    """Device profiles whose name contains ``contains`` (or matches ``regex``) use ``decoder``.

    Both comparisons ignore case; ``regex`` is searched, not anchored.
    """

    decoder: str
    contains: str | None = None
    regex: str | None = None

    def matches(self, profile_name: str) -> bool:
        if self.contains is not None and self.contains.lower() in profile_name.lower():
            return True
        return (
            self.regex is not None
            and re.search(self.regex, profile_name, re.IGNORECASE) is not None
        )


DEFAULT_PROFILE_RULES: tuple[ProfileRule, ...] = (
    ProfileRule(bosch_tps110.NAME, contains="tps110"),
    ProfileRule(bosch_tps110.NAME, contains="bosch"),
    ProfileRule(nwave_nps405.NAME, contains="nps405"),
    ProfileRule(nwave_nps405.NAME, contains="nwave"),
    ProfileRule(tekzitel.NAME, contains="tekzi"),
    ProfileRule(browan_tbms100.NAME, contains="tbms100"),
    ProfileRule(browan_tbms100.NAME, contains="browan"),
    ProfileRule(kuando.NAME, contains="kuando"),
    ProfileRule(kuando.NAME, contains="busylight"),
)


@dataclass(frozen=True, slots=True)
class UplinkFrame:
    """What choosing and running a decoder looks at."""

    dev_eui: str
    f_port: int
    payload: bytes
    device_profile_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    obj: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """The decoder picked for a frame and which rule picked it."""

    name: str
    via: Via


@dataclass(frozen=True, slots=True, eq=False)
class DecoderRegistry:
    """Immutable decoder selection: overrides, tag key, profile rules, object mapping."""

    decoders: Mapping[str, Decoder] = field(default_factory=lambda: BUILTIN_DECODERS)
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tag_key: str = DEFAULT_TAG_KEY
    profile_rules: tuple[ProfileRule, ...] = DEFAULT_PROFILE_RULES
    object_mapping: ObjectMapping | None = field(default_factory=ObjectMapping)

    def __post_init__(self) -> None:
        # Read-only copies: a dict handed in by the caller cannot change the registry later.
        object.__setattr__(self, "decoders", MappingProxyType(dict(self.decoders)))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    @classmethod
    def default(cls) -> DecoderRegistry:
        """The built-in decoders, default tag key, profile rules and object mapping."""
        return cls()

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> DecoderRegistry:
        """Build from plain config; raises :class:`DecoderConfigError` on anything wrong.

        Keys (all optional): ``tag_key`` (str), ``overrides`` ({dev_eui: name}),
        ``profile_rules`` ([{"decoder", "contains" | "regex"}], tried before the
        defaults), ``default_profile_rules`` (bool, default true), and
        ``object_mapping`` (a mapping config, or null to disable it).
        """
        known = {
            "tag_key",
            "overrides",
            "profile_rules",
            "default_profile_rules",
            "object_mapping",
        }
        unknown = set(config) - known
        if unknown:
            raise DecoderConfigError(f"unknown decoder config keys: {sorted(unknown)}")
        tag_key = config.get("tag_key", DEFAULT_TAG_KEY)
        if not isinstance(tag_key, str) or not tag_key:
            raise DecoderConfigError("tag_key must be a non-empty string")
        overrides = config.get("overrides", {})
        if not isinstance(overrides, Mapping):
            raise DecoderConfigError("overrides must map dev_eui to a decoder name")
        use_defaults = config.get("default_profile_rules", True)
        if not isinstance(use_defaults, bool):
            raise DecoderConfigError("default_profile_rules must be true or false")
        rules = _rules(config.get("profile_rules", []))
        if use_defaults:
            rules += DEFAULT_PROFILE_RULES
        mapping_config = config.get("object_mapping", {})
        mapping: ObjectMapping | None = None
        if mapping_config is not None:
            if not isinstance(mapping_config, Mapping):
                raise DecoderConfigError("object_mapping must be a mapping or null")
            try:
                mapping = ObjectMapping.from_config(mapping_config)
            except ObjectMappingError as exc:
                raise DecoderConfigError(str(exc)) from exc
        registry = cls(tag_key=tag_key, profile_rules=rules, object_mapping=mapping)
        for rule in rules:
            registry._check_name(rule.decoder, "profile rule")
        return registry.with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[object, object]) -> DecoderRegistry:
        """A copy with these ``dev_eui -> decoder`` overrides added (EUIs are normalised)."""
        merged = dict(self.overrides)
        for eui, name in overrides.items():
            if not isinstance(eui, str) or not isinstance(name, str):
                raise DecoderConfigError("overrides must map dev_eui strings to decoder names")
            try:
                key = normalize_eui(eui)
            except InvalidEui as exc:
                raise DecoderConfigError(str(exc)) from exc
            merged[key] = self._check_name(name, f"override of {key}")
        return replace(self, overrides=MappingProxyType(merged))

    def names(self) -> tuple[str, ...]:
        """Every decoder name this registry accepts, including ``object`` and ``none``."""
        return (*sorted(self.decoders), OBJECT, NONE)

    def choose(self, frame: UplinkFrame) -> Choice | None:
        """The decoder for ``frame`` and the rule that chose it; None when none applies."""
        override = self.overrides.get(frame.dev_eui)
        if override is not None:
            return Choice(override, "override")
        tagged = frame.tags.get(self.tag_key)
        if tagged is not None and tagged.strip():
            return Choice(tagged.strip().lower(), "tag")
        profile = frame.device_profile_name
        if profile:
            for rule in self.profile_rules:
                if rule.matches(profile):
                    return Choice(rule.decoder, "profile")
        if frame.obj is not None and self.object_mapping is not None:
            return Choice(OBJECT, "object")
        return None

    def decode(self, frame: UplinkFrame) -> DecodeResult | None:
        """Run the chosen decoder. None: no decoder applies (not an error). Never raises."""
        choice = self.choose(frame)
        if choice is None or choice.name == NONE:
            return None
        try:
            return self._run(choice, frame)
        except Exception as exc:  # decoders never raise by contract; keep the uplink if one does
            return DecodeFailure(choice.name, DECODER_CRASHED, f"{type(exc).__name__}: {exc}")

    def _run(self, choice: Choice, frame: UplinkFrame) -> DecodeResult | None:
        if choice.name == OBJECT:
            if frame.obj is None or self.object_mapping is None:
                return None
            return self.object_mapping.decode(frame.obj)
        decoder = self.decoders.get(choice.name)
        if decoder is None:
            detail = f"{choice.name!r} (chosen by {choice.via}) is not a known decoder"
            return DecodeFailure(choice.name, UNKNOWN_DECODER, detail)
        return decoder(frame.f_port, frame.payload)

    def _check_name(self, name: str, where: str) -> str:
        normal = name.strip().lower()
        if normal not in self.decoders and normal not in (OBJECT, NONE):
            known = ", ".join(self.names())
            raise DecoderConfigError(f"{where}: unknown decoder {name!r} (known: {known})")
        return normal


def _rules(value: object) -> tuple[ProfileRule, ...]:
    if not isinstance(value, list | tuple):
        raise DecoderConfigError("profile_rules must be a list")
    rules: list[ProfileRule] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"decoder", "contains", "regex"}:
            raise DecoderConfigError("a profile rule is {decoder, contains | regex}")
        decoder, contains, regex = item.get("decoder"), item.get("contains"), item.get("regex")
        if not isinstance(decoder, str) or (contains is None) == (regex is None):
            raise DecoderConfigError("a profile rule needs a decoder and one of contains/regex")
        if contains is not None and (not isinstance(contains, str) or not contains):
            raise DecoderConfigError("contains must be a non-empty string")
        if regex is not None:
            if not isinstance(regex, str):
                raise DecoderConfigError("regex must be a string")
            try:
                re.compile(regex)
            except re.error as exc:
                raise DecoderConfigError(f"bad regex {regex!r}: {exc}") from exc
        rules.append(ProfileRule(decoder.strip().lower(), contains=contains, regex=regex))
    return tuple(rules)
