"""Identifiers: deterministic event ids and normalised device EUIs."""

from __future__ import annotations

import hashlib
import re
import uuid

# Namespace of every id parkstream derives; changing it would change every id.
PARKSTREAM_NAMESPACE = uuid.UUID("6f0c5a52-57b5-4a8e-9d0e-2f8a8b3c1d70")

_EUI_RE = re.compile(r"^[0-9a-f]{16}$")
_EUI_SEPARATORS = str.maketrans("", "", ":-_ ")


class InvalidEui(ValueError):
    """A string that is not a 64-bit EUI in hex."""


def normalize_eui(value: str) -> str:
    """Return the EUI as 16 lower-case hex digits; separators ``:-_`` and spaces are dropped."""
    eui = value.strip().translate(_EUI_SEPARATORS).lower()
    if not _EUI_RE.match(eui):
        raise InvalidEui(f"not a 64-bit EUI (16 hex digits): {value!r}")
    return eui


def is_eui(value: str) -> bool:
    return bool(_EUI_RE.match(value))


# SHA-1 of the namespace, copied for every id (hashing it again each time costs more).
_NAMESPACE_SHA1 = hashlib.sha1(PARKSTREAM_NAMESPACE.bytes)  # noqa: S324 - RFC 4122 v5 is defined on SHA-1
# The RFC 4122 variant bits (10xx) applied to the first hex digit of the 9th byte.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def derive_id(*parts: object) -> str:
    """A UUID that depends only on ``parts``: replaying the same input yields the same id.

    Exactly ``str(uuid.uuid5(PARKSTREAM_NAMESPACE, "\\x1f".join(parts)))``, computed
    without building UUID objects (it runs for every event): the version digit (5) and the
    variant bits are set on the hex digest.
    """
    name = "\x1f".join(p if isinstance(p, str) else str(p) for p in parts)
    return _uuid5(name)


def event_id(input_id: str, position: int) -> str:
    """``derive_id(input_id, position)``: the id of an input's ``position``-th event."""
    return _uuid5(f"{input_id}\x1f{position}")


def _uuid5(name: str) -> str:
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(name.encode())
    h = sha1.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
