"""Deterministic ids and EUI normalisation."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkstream.domain.ids import PARKSTREAM_NAMESPACE, InvalidEui, derive_id, normalize_eui


@given(st.lists(st.one_of(st.text(), st.integers(), st.none()), min_size=1, max_size=5))
def test_derived_ids_are_rfc4122_version_5_uuids_of_the_parts(parts: list[object]) -> None:
    name = "\x1f".join(str(p) for p in parts)
    assert derive_id(*parts) == str(uuid.uuid5(PARKSTREAM_NAMESPACE, name))


def test_eui_spellings_normalise_to_lower_case_hex() -> None:
    assert normalize_eui("20:20:20:41:00:C3:0A:01") == "2020204100c30a01"
    assert normalize_eui(" 2020-2041-00C3-0A01 ") == "2020204100c30a01"


@pytest.mark.parametrize("bad", ["", "2020204100c30a0", "2020204100c30a0g", "2020204100c30a011"])
def test_anything_but_sixteen_hex_digits_is_refused(bad: str) -> None:
    with pytest.raises(InvalidEui):
        normalize_eui(bad)
