"""Strict typed access to the fields of a parsed JSON object.

Proto3 JSON semantics: an absent field or ``null`` is the field's default; a
value of the wrong type is refused (``bad_field:<path>``), never coerced. A
required identifier that is absent or empty is ``missing_field:<path>``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping

from parkstream.ingest.result import Rejected


def missing(path: str) -> Rejected:
    return Rejected(f"missing_field:{path}", f"{path} is required")


def bad(path: str, why: str) -> Rejected:
    return Rejected(f"bad_field:{path}", f"{path} {why}")


def strict_b64(text: str, path: str) -> bytes:
    """Standard base64 with padding, validated (what ChirpStack writes); ``""`` is empty."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Rejected("bad_base64", f"{path} is not standard base64: {exc}") from exc


class Obj:
    """A JSON object and its path from the message root, for precise reasons."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, object], path: str = "") -> None:
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> object:
        return self.data.get(key)

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise bad(self.at(key), "must be a string")
        return value

    def opt_text(self, key: str) -> str | None:
        """The string, or None when absent, null or empty (ChirpStack writes "" for unset)."""
        return self.text(key) or None

    def req_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise missing(self.at(key))
        return value

    def opt_integer(self, key: str, low: int, high: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(self.at(key), "must be an integer")
        if not low <= value <= high:
            raise bad(self.at(key), f"must be within {low}..{high}")
        return value

    def integer(self, key: str, low: int, high: int, default: int = 0) -> int:
        value = self.opt_integer(key, low, high)
        return default if value is None else value

    def opt_number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(self.at(key), "must be a number")
        if isinstance(value, int) and abs(value) > 2**53:
            raise bad(self.at(key), "is out of range")
        number = float(value)
        if not math.isfinite(number):
            raise bad(self.at(key), "must be finite")
        return number

    def req_number(self, key: str) -> float:
        value = self.opt_number(key)
        if value is None:
            raise missing(self.at(key))
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise bad(self.at(key), "must be true or false")
        return value

    def child(self, key: str) -> Obj | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad(self.at(key), "must be an object")
        return Obj(value, self.at(key))

    def req_child(self, key: str) -> Obj:
        found = self.child(key)
        if found is None:
            raise missing(self.at(key))
        return found

    def objects(self, key: str, max_items: int) -> list[Obj]:
        """A list of objects, at most ``max_items`` long."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad(self.at(key), "must be a list")
        if len(value) > max_items:
            raise Rejected(f"too_many:{self.at(key)}", f"more than {max_items} entries")
        found: list[Obj] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise bad(f"{self.at(key)}[{index}]", "must be an object")
            found.append(Obj(item, f"{self.at(key)}[{index}]"))
        return found

    def text_map(self, key: str, max_items: int) -> dict[str, str]:
        """A ``{string: string}`` object (tags, log context), at most ``max_items`` entries."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad(self.at(key), "must be an object")
        if len(value) > max_items:
            raise Rejected(f"too_many:{self.at(key)}", f"more than {max_items} entries")
        if not all(isinstance(v, str) for v in value.values()):
            raise bad(self.at(key), "values must be strings")
        return dict(value)
