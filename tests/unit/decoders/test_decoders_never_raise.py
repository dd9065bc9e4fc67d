"""Property: every decoder returns a Reading or a DecodeFailure for any port and bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parkstream.decoders import BUILTIN_DECODERS
from parkstream.decoders.base import DecodeFailure
from parkstream.decoders.object_mapping import ObjectMapping
from parkstream.domain.device_events import Reading

ports = st.integers(min_value=0, max_value=255)
frames = st.binary(max_size=255)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
objects = st.dictionaries(
    st.text(max_size=20),
    st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    ),
    max_size=8,
)


@given(f_port=ports, payload=frames)
def test_every_builtin_decoder_returns_a_value_for_any_frame(f_port: int, payload: bytes) -> None:
    for name, decode in BUILTIN_DECODERS.items():
        result = decode(f_port, payload)
        assert isinstance(result, Reading | DecodeFailure), name
        if isinstance(result, Reading):
            assert result.decoder == name


@given(obj=objects | st.fixed_dictionaries({"occupied": json_scalars, "battery": json_scalars}))
def test_the_object_mapping_returns_a_value_for_any_object(obj: dict[str, object]) -> None:
    result = ObjectMapping().decode(obj)
    assert result is None or isinstance(result, Reading | DecodeFailure)
