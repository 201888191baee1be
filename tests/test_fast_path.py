"""The generated fast path gives exactly what the reference interpreter gives."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medagent.errors import InputError
from medagent.scales import all_scales
from medagent.scales.engine import Result, _plan, evaluate, interpret
from medagent.scales.model import InputType, Scale

SCALES = all_scales()
CASES = [(s, ex) for s in SCALES for ex in s.examples]


def _same(a: Result, b: Result) -> None:
    assert a.value == b.value
    assert a.complete == b.complete
    assert (a.band.id if a.band else None) == (b.band.id if b.band else None)
    assert a.items == b.items
    assert a.steps == b.steps
    assert a.missing == b.missing
    assert (a.minimum, a.maximum, a.bounds_exact) == (b.minimum, b.maximum, b.bounds_exact)
    assert dict(a.inputs) == dict(b.inputs)
    assert a.conversions == b.conversions
    assert a.explanation == b.explanation


def test_most_scales_have_a_fast_path() -> None:
    without = [s.id for s in SCALES if _plan(s).fast is None]
    assert len(without) <= len(SCALES) // 10, without


@pytest.mark.parametrize(("scale", "example"), CASES, ids=[f"{s.id}:{e.id}" for s, e in CASES])
def test_fast_path_matches_interpreter_on_worked_examples(scale: Scale, example: Any) -> None:
    try:
        reference = interpret(scale, example.inputs)
    except InputError:
        with pytest.raises(InputError):
            evaluate(scale, example.inputs)
        return
    _same(evaluate(scale, example.inputs), reference)


def _value(spec: Any) -> st.SearchStrategy[Any]:
    if spec.type is InputType.BOOLEAN:
        return st.booleans()
    if spec.type is InputType.CHOICE:
        return st.sampled_from([o.code for o in spec.options])
    if spec.type is InputType.DATE:
        return st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))
    lo, hi = spec.range
    if spec.type is InputType.INTEGER:
        return st.integers(min_value=int(lo), max_value=int(hi))
    return st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda x: float(f"{x:.6g}"))


FAST = [s for s in SCALES if _plan(s).fast is not None]


@pytest.mark.parametrize("scale", FAST, ids=[s.id for s in FAST])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_matches_interpreter_on_random_inputs(scale: Scale, data: st.DataObject) -> None:
    inputs = data.draw(st.fixed_dictionaries({i.id: _value(i) for i in scale.inputs}))
    try:
        reference = interpret(scale, inputs)
    except InputError:
        with pytest.raises(InputError):
            evaluate(scale, inputs)
        return
    _same(evaluate(scale, inputs), reference)


def test_fast_path_declines_what_it_cannot_check() -> None:
    scale = next(s for s in SCALES if s.id == "cha2ds2_vasc")
    fast = _plan(scale).fast
    assert fast is not None
    base = {i.id: False for i in scale.inputs if i.type is InputType.BOOLEAN}
    good = {**base, "age": 70, "sex": "male"}
    assert fast(good) is not None
    assert fast({**good, "age": "70 a"}) is None  # a string to parse
    assert fast({**good, "age": 300}) is None  # out of range: the interpreter explains
    assert fast({**good, "sex": "Male"}) is None  # an alias: the interpreter resolves it
    assert fast({k: v for k, v in good.items() if k != "chf"}) is None  # missing
    assert fast({**good, "age": (70, "years")}) is not None  # a unit it knows
