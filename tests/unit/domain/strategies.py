"""Hypothesis strategies that build valid instances of every record type of the contract.

Strategies are derived from each pydantic model's fields: the annotation gives the shape
(unions, literals, enums, tuples, dicts, nested models) and the field's metadata its
constraints (``ge``/``le``, lengths, ``pattern``). What the annotation cannot say is in
``FIELD_STRATEGIES``.

Generated values stay within what the wire format carries: integers fit in 64 bits,
floats are finite, UTC offsets are whole minutes and datetimes lie in 1970..2200. The
strict xfails in test_contract_roundtrip.py show what goes wrong outside that range.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types as at
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from parkstream.domain.commands import SetOverrideData
from parkstream.domain.contract import TOPIC_TYPES
from parkstream.domain.envelope import Envelope, UtcDatetime
from parkstream.domain.states import OVERRIDE_STATES

M = TypeVar("M", bound=BaseModel)
Strategy = st.SearchStrategy[Any]
Overrides = Mapping[tuple[type[BaseModel], str], Strategy]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

eui = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
timezones = st.one_of(
    st.just(dt.UTC),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
        lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
    ),
)
aware_datetimes = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=timezones
)

# Field names whose string values have a form only a validator knows (normalize_eui).
STRING_FIELDS: dict[str, Strategy] = {
    "dev_eui": eui,
    "time_zone": st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"]),
}

# (model, field) -> strategy, where a validator refuses part of what the type allows.
FIELD_STRATEGIES: dict[tuple[type[BaseModel], str], Strategy] = {
    (SetOverrideData, "state"): st.sampled_from(sorted(OVERRIDE_STATES)),
}

RECORD_CLASSES: list[tuple[str, type[Envelope]]] = [
    (topic, cls) for topic, types_ in TOPIC_TYPES.items() for cls in types_
]


def records(cls: type[M], overrides: Overrides | None = None) -> st.SearchStrategy[M]:
    """Valid instances of ``cls``; ``overrides`` replace the strategy of single fields."""
    if overrides:
        return _model(cls, dict(overrides))
    return _cached_model(cls)


def any_record(overrides: Overrides | None = None) -> st.SearchStrategy[Envelope]:
    return st.one_of([records(cls, overrides) for _, cls in RECORD_CLASSES])


@cache
def _cached_model(cls: type[M]) -> st.SearchStrategy[M]:
    return _model(cls, {})


def _model(cls: type[M], overrides: dict[tuple[type[BaseModel], str], Strategy]) -> Any:
    required: dict[str, Strategy] = {}
    optional: dict[str, Strategy] = {}
    for name, info in cls.model_fields.items():
        strategy = _field(cls, name, info, overrides)
        (required if info.is_required() else optional)[name] = strategy
    build: Callable[[dict[str, Any]], M] = cls.model_validate
    return st.fixed_dictionaries(required, optional=optional).map(build)


def _field(
    cls: type[BaseModel],
    name: str,
    info: FieldInfo,
    overrides: dict[tuple[type[BaseModel], str], Strategy],
) -> Strategy:
    for owner in cls.__mro__:
        if isinstance(owner, type) and (owner, name) in overrides:
            return overrides[owner, name]
        if isinstance(owner, type) and (owner, name) in FIELD_STRATEGIES:
            return FIELD_STRATEGIES[owner, name]
    if issubclass(cls, Envelope) and name == "version":
        return st.just(cls.VERSION)
    return _annotation(info.annotation, _Constraints.of(info.metadata), name, overrides)


class _Constraints:
    def __init__(self) -> None:
        self.lower: float | None = None
        self.upper: float | None = None
        self.exclude_lower = False
        self.exclude_upper = False
        self.min_len = 0
        self.max_len: int | None = None
        self.pattern: str | None = None

    @classmethod
    def of(cls, metadata: list[Any]) -> _Constraints:
        c = cls()
        for item in metadata:
            if isinstance(item, at.Ge):
                c.lower = float(item.ge)  # type: ignore[arg-type]
            elif isinstance(item, at.Gt):
                c.lower, c.exclude_lower = float(item.gt), True  # type: ignore[arg-type]
            elif isinstance(item, at.Le):
                c.upper = float(item.le)  # type: ignore[arg-type]
            elif isinstance(item, at.Lt):
                c.upper, c.exclude_upper = float(item.lt), True  # type: ignore[arg-type]
            elif isinstance(item, at.MinLen):
                c.min_len = item.min_length
            elif isinstance(item, at.MaxLen):
                c.max_len = item.max_length
            elif isinstance(getattr(item, "pattern", None), str):
                c.pattern = item.pattern
        return c


def _annotation(
    tp: Any,
    c: _Constraints,
    name: str,
    overrides: dict[tuple[type[BaseModel], str], Strategy],
) -> Strategy:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([_annotation(arg, c, name, overrides) for arg in get_args(tp)])
    if origin is Literal:
        return st.sampled_from(get_args(tp))
    if origin is tuple:
        item, ellipsis = get_args(tp)
        assert ellipsis is Ellipsis, f"only tuple[X, ...] is supported, got {tp}"
        inner = _annotation(item, _Constraints(), name, overrides)
        return st.lists(inner, max_size=3).map(tuple)
    if origin is dict:
        key, value = get_args(tp)
        return st.dictionaries(
            _annotation(key, _Constraints(), name, overrides),
            _annotation(value, _Constraints(), name, overrides),
            max_size=3,
        )
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        low = INT64_MIN if c.lower is None else int(c.lower) + int(c.exclude_lower)
        high = INT64_MAX if c.upper is None else int(c.upper) - int(c.exclude_upper)
        return st.integers(low, high)
    if tp is float:
        return st.floats(
            min_value=c.lower,
            max_value=c.upper,
            exclude_min=c.exclude_lower,
            exclude_max=c.exclude_upper,
            allow_nan=False,
            allow_infinity=False,
        )
    if tp is str:
        return _string(c, name)
    if tp is AwareDatetime or tp is UtcDatetime:
        # Records hold their timestamps in UTC (normalised when validated).
        return aware_datetimes.map(lambda d: d.astimezone(dt.UTC))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return records(tp, overrides)
    raise TypeError(f"no strategy for {tp!r} (field {name!r}); add one to strategies.py")


def _string(c: _Constraints, name: str) -> Strategy:
    if name in STRING_FIELDS:
        return STRING_FIELDS[name]
    if c.pattern is not None:
        pattern = c.pattern.removeprefix("^").removesuffix("$")
        strategy = st.from_regex(pattern, fullmatch=True)
        low, high = c.min_len, c.max_len
        if low or high is not None:
            strategy = strategy.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
        return strategy
    return st.text(min_size=c.min_len, max_size=c.max_len)


# --- arbitrary input for the decoder ----------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
