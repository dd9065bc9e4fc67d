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


_NAMESPACE_BYTES = PARKSTREAM_NAMESPACE.bytes


def derive_id(*parts: object) -> str:
    """A UUID that depends only on ``parts``: replaying the same input yields the same id.

    Exactly ``str(uuid.uuid5(PARKSTREAM_NAMESPACE, "\\x1f".join(parts)))``, computed
    without building UUID objects (it runs for every event).
    """
    name = "\x1f".join(p if isinstance(p, str) else str(p) for p in parts)
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])  # noqa: S324 - RFC 4122 v5 is defined on SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
