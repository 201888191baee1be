"""Evaluate a scale on inputs: checked values, points per item, bounds when incomplete, a trace."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from medagent.errors import InputError, Problem, UnitError
from medagent.scales.context import FormulaContext, NeedInput, Step
from medagent.scales.formulas import get_formula
from medagent.scales.model import (
    Alert,
    Band,
    Condition,
    InputDef,
    InputType,
    Item,
    PointsRule,
    Reference,
    Scale,
    parse_date,
)
from medagent.units import Quantity, converter, parse_quantity

_TRUE = {"true", "yes", "y", "1", "present", "positive"}
_FALSE = {"false", "no", "n", "0", "absent", "negative"}
_MAX_ASSIGNMENTS = 4096  # bound on the evaluations spent finding the range of an incomplete score


class ItemResult(NamedTuple):
    """Points given to one item, and the rule that gave them."""

    id: str
    label: str
    points: float | None
    value: object | None
    rule: str
    group: str | None = None


class MissingInput(NamedTuple):
    """An input the result still needs, and who can answer it."""

    id: str
    label: str
    answerable_by: tuple[str, ...]


class Conversion(NamedTuple):
    """A given value converted to the unit the scale declares."""

    input_id: str
    original: float
    original_unit: str
    value: float
    unit: str


class Result(NamedTuple):
    """The outcome of one evaluation, complete or not, with everything needed to explain it."""

    scale: Scale
    value: float | date | None
    complete: bool
    band: Band | None
    items: tuple[ItemResult, ...]
    steps: tuple[Step, ...]
    missing: tuple[MissingInput, ...]
    minimum: float | None
    maximum: float | None
    bounds_exact: bool
    inputs: Mapping[str, object]
    conversions: tuple[Conversion, ...] = ()
    possible_bands: tuple[Band, ...] = ()
    not_needed: tuple[MissingInput, ...] = ()  # missing, but no answer could change the score
    # Alerts of the scale whose conditions all hold on the given inputs, whatever the total
    # and whether or not the result is complete.
    alerts: tuple[Alert, ...] = ()
    # Alerts that could still fire: no condition has failed, but an input they test is missing.
    unchecked_alerts: tuple[Alert, ...] = ()

    @property
    def scale_id(self) -> str:
        return self.scale.id

    @property
    def scale_version(self) -> str:
        return self.scale.version

    @property
    def references(self) -> tuple[Reference, ...]:
        return self.scale.references

    @property
    def display(self) -> str:
        """The value as it should be shown, at the scale's declared precision."""
        return format_value(self.scale, self.value)

    @property
    def explanation(self) -> str:
        """A step-by-step account generated from the computation trace."""
        from medagent.scales.explain import explain

        return explain(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the result."""
        from medagent.scales.explain import result_to_dict

        return result_to_dict(self)


def format_value(scale: Scale, value: float | date | None) -> str:
    """Format a score at the scale's display precision (or as a date, or weeks+days)."""
    if value is None:
        return "incomplete"
    if isinstance(value, date):
        return value.isoformat()
    if scale.output.display == "weeks_days":
        weeks, days = divmod(round(value), 7)
        return f"{weeks} week{'' if weeks == 1 else 's'} {days} day{'' if days == 1 else 's'}"
    if scale.output.type == "integer":
        return str(round(value))
    return f"{value:.{scale.output.precision}f}"


# --------------------------------------------------------------------------- compiled scale


Scorer = Callable[[object], tuple[float, str]]
Normalizer = Callable[[object, list[Conversion]], object]


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    label: str
    source: str
    rule: PointsRule
    option_points: Mapping[str, float]
    when: tuple[Condition, ...]
    group: str | None
    deps: frozenset[str]  # input ids the item depends on
    score: Scorer  # value -> (points, the rule that gave them), built once per scale


@dataclass(slots=True)
class _Plan:
    scale: Scale
    inputs: dict[str, InputDef]
    normalizers: dict[str, Normalizer]
    items: tuple[_Item, ...]
    derived_deps: dict[str, frozenset[str]]
    group_combine: dict[str, str]
    components: tuple[tuple[_Item, ...], ...] = ()
    probes: dict[str, tuple[object, ...]] = field(default_factory=dict)
    fast: Callable[[Mapping[str, object]], Result | None] | None = None
    required: tuple[str, ...] = ()


_PLANS: dict[int, tuple[Scale, _Plan]] = {}


def _plan(scale: Scale) -> _Plan:
    cached = _PLANS.get(id(scale))
    if cached is not None and cached[0] is scale:
        return cached[1]
    plan = _compile(scale)
    _PLANS[id(scale)] = (scale, plan)
    return plan


def _compile(scale: Scale) -> _Plan:
    inputs = {i.id: i for i in scale.inputs}
    derived_deps = {d.id: frozenset(d.inputs) for d in scale.derived}
    items: list[_Item] = []
    for spec in scale.inputs:
        if spec.scores:
            options = {o.code: o.points for o in spec.options if o.points is not None}
            items.append(
                _Item(
                    spec.id,
                    spec.label,
                    spec.id,
                    spec,
                    options,
                    (),
                    spec.group,
                    frozenset({spec.id}),
                    _make_scorer(spec, options, spec.id, spec.type),
                )
            )
    for item in scale.scoring.items:
        deps = set(derived_deps.get(item.source, {item.source}))
        deps.update(c.input for c in item.when)
        source = inputs.get(item.source)
        kind = source.type if source is not None else InputType.QUANTITY
        items.append(
            _Item(
                item.id,
                item.label,
                item.source,
                item,
                item.option_points,
                item.when,
                item.group,
                frozenset(deps),
                _make_scorer(item, item.option_points, item.source, kind),
            )
        )
    plan = _Plan(
        scale=scale,
        inputs=inputs,
        normalizers={i.id: _make_normalizer(i) for i in scale.inputs},
        items=tuple(items),
        derived_deps=derived_deps,
        group_combine={g.id: g.combine for g in scale.scoring.groups},
    )
    plan.required = tuple(i.id for i in scale.inputs if i.required)
    plan.components = _components(plan.items)
    plan.probes = {i.id: _probes(i, plan.items) for i in scale.inputs}
    from medagent.scales.compiled import compile_fast

    plan.fast = compile_fast(plan)
    return plan


def _make_scorer(
    rule: PointsRule, options: Mapping[str, float], name: str, kind: InputType
) -> Scorer:
    """A function from a value to (points, rule text), specialised once for this item."""
    if kind is InputType.BOOLEAN:
        yes = (rule.points or 0.0, "present")
        no = (0.0, "absent")
        return lambda value: yes if value else no
    if kind is InputType.CHOICE:
        table = {code: (points, code) for code, points in options.items()}

        def by_option(value: object) -> tuple[float, str]:
            found = table.get(value) if isinstance(value, str) else None
            if found is None:
                raise ValueError(f"{name}: option {value!r} has no points")
            return found

        return by_option
    if rule.per_unit is not None:
        per_unit = rule.per_unit
        text = f"{_num(per_unit)} point(s) per unit of {name}"
        return lambda value: (per_unit * float(value), text)  # type: ignore[arg-type]
    brackets = tuple((b.contains, (b.points, b.describe(name))) for b in rule.brackets)

    def by_bracket(value: object) -> tuple[float, str]:
        x = float(value)  # type: ignore[arg-type]
        for contains, outcome in brackets:
            if contains(x):
                return outcome
        raise ValueError(f"{name}: {x:g} falls in no bracket")

    return by_bracket


def _make_normalizer(spec: InputDef) -> Normalizer:
    """A checker for one input, with a fast path for values already in canonical form."""
    kind = spec.type

    def slow(value: object, conversions: list[Conversion]) -> object:
        return _normalize_one(spec, value, conversions)

    if kind is InputType.BOOLEAN:

        def boolean(value: object, conversions: list[Conversion]) -> object:
            if value is True or value is False:
                return value
            return slow(value, conversions)

        return boolean
    if kind is InputType.CHOICE:
        codes = frozenset(o.code for o in spec.options)

        def choice(value: object, conversions: list[Conversion]) -> object:
            if type(value) is str and value in codes:
                return value
            return slow(value, conversions)

        return choice
    if kind in (InputType.QUANTITY, InputType.INTEGER) and spec.range is not None:
        lo, hi = spec.range
        whole = kind is InputType.INTEGER

        def number(value: object, conversions: list[Conversion]) -> object:
            t = type(value)
            if (t is float or t is int) and lo <= value <= hi:  # type: ignore[operator]
                x = float(value)  # type: ignore[arg-type]
                if not whole or x.is_integer():
                    return x
            return slow(value, conversions)

        return number
    return slow


def _components(items: tuple[_Item, ...]) -> tuple[tuple[_Item, ...], ...]:
    """Split items into groups that share no input, so their bounds can be found separately."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for item in items:
        keys = [f"input:{d}" for d in item.deps]
        if item.group:
            keys.append(f"group:{item.group}")
        keys.append(f"item:{item.id}")
        for key in keys[1:]:
            union(keys[0], key)
    grouped: dict[str, list[_Item]] = {}
    for item in items:
        grouped.setdefault(find(f"item:{item.id}"), []).append(item)
    return tuple(tuple(group) for group in grouped.values())


def _probes(spec: InputDef, items: tuple[_Item, ...]) -> tuple[object, ...]:
    """Values of an input at which a piecewise score can change: range ends and thresholds."""
    if spec.type is InputType.BOOLEAN:
        return (False, True)
    if spec.type is InputType.CHOICE:
        return tuple(o.code for o in spec.options)
    if spec.type is InputType.DATE or spec.range is None:
        return ()
    lo, hi = spec.range
    step = 1.0 if spec.type is InputType.INTEGER else max(abs(lo), abs(hi), 1.0) * 1e-9
    points = {lo, hi}
    for k in range(1, 8):  # a coarse grid for formulas that are not piecewise
        points.add(lo + (hi - lo) * k / 8)
    thresholds: list[float] = []
    for item in items:
        if item.source == spec.id:
            for b in item.rule.brackets:
                thresholds.extend(x for x in (b.ge, b.gt, b.le, b.lt) if x is not None)
        for cond in item.when:
            if cond.input == spec.id:
                thresholds.extend(x for x in (cond.ge, cond.gt, cond.le, cond.lt) if x is not None)
    for t in thresholds:
        points.update((t - step, t, t + step))
    clipped = sorted(p for p in points if lo <= p <= hi)
    if spec.type is InputType.INTEGER:
        clipped = sorted({float(round(p)) for p in clipped if lo <= round(p) <= hi})
    return tuple(clipped)


# --------------------------------------------------------------------------- inputs


def normalize_inputs(
    scale: Scale, raw: Mapping[str, object]
) -> tuple[dict[str, object], tuple[Conversion, ...]]:
    """Check and convert every given input; raise one InputError listing every problem."""
    plan = _plan(scale)
    values: dict[str, object] = {}
    conversions: list[Conversion] = []
    problems: list[Problem] = []
    for key, value in raw.items():
        spec = plan.inputs.get(key)
        if spec is None:
            problems.append(Problem(key, f"is not an input of {scale.id}"))
            continue
        if value is None:
            continue
        try:
            values[key] = plan.normalizers[key](value, conversions)
        except (ValueError, TypeError, UnitError) as exc:
            problems.append(Problem(key, str(exc)))
    if problems:
        raise InputError(f"inputs of {scale.id}", problems)
    return values, tuple(conversions)


def _normalize_one(spec: InputDef, value: object, conversions: list[Conversion]) -> object:
    kind = spec.type
    if kind is InputType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().casefold()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise ValueError(f"{value!r} is not true or false")
    if kind is InputType.CHOICE:
        text = str(value).strip()
        for option in spec.options:
            if text == option.code:
                return option.code
        folded = text.casefold()
        for option in spec.options:
            names = (option.code, option.label, *option.aliases, option.loinc or option.code)
            if any(folded == n.casefold() for n in names):
                return option.code
        codes = ", ".join(o.code for o in spec.options)
        raise ValueError(f"{value!r} is not one of: {codes}")
    if kind is InputType.DATE:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            return parse_date(value)
        raise ValueError(f"{value!r} is not a date")
    number, unit = _number_and_unit(value)
    if unit is not None and spec.unit is not None and unit != spec.unit:
        # 12 significant digits: beyond any measurement, and free of binary noise at thresholds
        converted = float(f"{converter(unit, spec.unit, spec.analyte)(number):.12g}")
        conversions.append(Conversion(spec.id, number, unit, converted, spec.unit))
        number = converted
    elif unit is not None and spec.unit is None and unit not in ("1", ""):
        raise ValueError(f"takes no unit, got {unit!r}")
    if math.isnan(number) or math.isinf(number):
        raise ValueError("is not a finite number")
    if kind is InputType.INTEGER and not float(number).is_integer():
        raise ValueError(f"{number:g} is not a whole number")
    if spec.range is not None:
        lo, hi = spec.range
        if not lo <= number <= hi:
            shown = f"{number:g} {spec.unit or ''}".strip()
            raise ValueError(f"{shown} is outside the allowed range {lo:g} to {hi:g}")
    return float(number)


def _number_and_unit(value: object) -> tuple[float, str | None]:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, Quantity):
        return float(value.value), _unit_code(value.unit)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        number, unit = value
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"{number!r} is not a number")
        return float(number), _unit_code(str(unit))
    if isinstance(value, str):
        return parse_quantity(value)
    raise ValueError(f"{value!r} is not a number with a unit")


def _unit_code(text: str) -> str:
    from medagent.units import normalize_unit

    return normalize_unit(text)


# --------------------------------------------------------------------------- items


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def _score_item(plan: _Plan, item: _Item, values: Mapping[str, object]) -> ItemResult | None:
    """Points of one item, or None when an input it needs is missing."""
    if item.when:
        unknown = False
        for cond in item.when:
            known = values.get(cond.input)
            if known is None:
                unknown = True
            elif not cond.holds(known):  # one failing condition settles it, known or not
                why = " and ".join(c.describe() for c in item.when)
                return ItemResult(
                    item.id, item.label, 0.0, None, f"not applicable (needs {why})", item.group
                )
        if unknown:
            return None
    value = values.get(item.source)
    if value is None:
        return None
    points, rule = item.score(value)
    return ItemResult(item.id, item.label, points, value, rule, item.group)


def _derive(plan: _Plan, values: dict[str, object], steps: list[Step]) -> None:
    """Add derived values (e.g. P/F ratio) to ``values`` when all their inputs are there."""
    scale = plan.scale
    for derived in scale.derived:
        if any(values.get(i) is None for i in derived.inputs):
            continue
        fn = get_formula(derived.formula)
        assert fn is not None  # checked when the scale was loaded
        ctx = FormulaContext(scale=scale, values=values)
        result = fn(ctx)
        steps.extend(ctx.steps)
        if isinstance(result, date):
            values[derived.id] = result
        else:
            values[derived.id] = float(result)
            if not ctx.steps or ctx.steps[-1].value != result:  # the formula may have said it
                steps.append(Step(label=derived.label, value=float(result), unit=derived.unit))


def _combine(plan: _Plan, results: Iterable[ItemResult]) -> float:
    total = 0.0
    grouped: dict[str, list[float]] = {}
    for r in results:
        if r.points is None:
            continue
        if r.group is None:
            total += r.points
        else:
            grouped.setdefault(r.group, []).append(r.points)
    for group, points in grouped.items():
        total += max(points) if plan.group_combine.get(group, "max") == "max" else sum(points)
    return total


# --------------------------------------------------------------------------- evaluation


def evaluate(scale: Scale, inputs: Mapping[str, object]) -> Result:
    """Compute ``scale`` on ``inputs``.

    Values may carry units (``Quantity``, ``(value, unit)``, ``"1.2 mg/dL"``); a bare number is in
    the unit the scale declares. Missing inputs give an incomplete result that lists them with the
    range of scores still possible; nothing is assumed. Malformed or out-of-range inputs raise one
    :class:`InputError` naming every problem by input id.
    """
    plan = _plan(scale)
    if plan.fast is not None:
        quick = plan.fast(inputs)
        if quick is not None:
            return _finish(plan, quick)
    return interpret(scale, inputs)


def _finish(plan: _Plan, result: Result) -> Result:
    """What both paths do last: keep only the given inputs, and test the scale's alerts."""
    if plan.scale.derived:
        given = {k: v for k, v in result.inputs.items() if k in plan.inputs}
        result = result._replace(inputs=given)
    if not plan.scale.alerts:
        return result
    fired, unchecked = check_alerts(plan.scale, result.inputs)
    return result._replace(alerts=fired, unchecked_alerts=unchecked)


def check_alerts(
    scale: Scale, values: Mapping[str, object]
) -> tuple[tuple[Alert, ...], tuple[Alert, ...]]:
    """The alerts that fire on these normalized inputs, and those still waiting on an input.

    An alert fires when every condition holds. One failing condition on a given input settles
    it; otherwise a condition on a missing input leaves it unchecked, never fired by guess and
    never reported as clear.
    """
    fired: list[Alert] = []
    unchecked: list[Alert] = []
    for alert in scale.alerts:
        waiting = False
        for cond in alert.when:
            value = values.get(cond.input)
            if value is None:
                waiting = True
            elif not cond.holds(value):
                break
        else:
            (unchecked if waiting else fired).append(alert)
    return tuple(fired), tuple(unchecked)


def interpret(scale: Scale, inputs: Mapping[str, object]) -> Result:
    """The reference evaluation, item by item; :func:`evaluate` uses it when the fast path
    declines (and the tests compare both on every worked example)."""
    return _finish(_plan(scale), _interpret(scale, inputs))


def _interpret(scale: Scale, inputs: Mapping[str, object]) -> Result:
    plan = _plan(scale)
    values, conversions = normalize_inputs(scale, inputs)
    steps: list[Step] = []
    _derive(plan, values, steps)
    item_results = [_score_item(plan, item, values) for item in plan.items]
    scored = tuple(r for r in item_results if r is not None)
    if scale.scoring.method == "sum":
        return _finish_sum(
            plan,
            values=values,
            conversions=conversions,
            steps=steps,
            item_results=item_results,
            scored=scored,
        )
    return _finish_formula(plan, values=values, conversions=conversions, steps=steps, scored=scored)


def _finish_sum(
    plan: _Plan,
    *,
    values: dict[str, object],
    conversions: tuple[Conversion, ...],
    steps: list[Step],
    item_results: list[ItemResult | None],
    scored: tuple[ItemResult, ...],
) -> Result:
    scale = plan.scale
    undetermined = [item for item, r in zip(plan.items, item_results, strict=True) if r is None]
    not_needed: tuple[MissingInput, ...] = ()
    if not undetermined:
        total = _combine(plan, scored)
    else:
        missing_ids = sorted(
            {d for item in undetermined for d in item.deps if values.get(d) is None}
        )
        lo, hi, exact = _sum_bounds(plan, values)
        if not (exact and lo is not None and lo == hi):
            return _incomplete(
                plan,
                values=values,
                conversions=conversions,
                steps=steps,
                scored=scored,
                missing_ids=missing_ids,
                lo=lo,
                hi=hi,
                exact=exact,
            )
        # Every answer to what is missing gives the same total (a max group already at its
        # ceiling, a rule already positive): the score is known, and nothing was assumed.
        total = lo
        not_needed = _missing_inputs(plan, missing_ids)
    return Result(
        scale=scale,
        value=total,
        complete=True,
        band=scale.band_for(total),
        items=scored,
        steps=tuple(steps),
        missing=(),
        minimum=total,
        maximum=total,
        bounds_exact=True,
        inputs=values,
        conversions=conversions,
        not_needed=not_needed,
    )


def _incomplete(
    plan: _Plan,
    *,
    values: Mapping[str, object],
    conversions: tuple[Conversion, ...],
    steps: list[Step],
    scored: tuple[ItemResult, ...],
    missing_ids: Iterable[str],
    lo: float | None,
    hi: float | None,
    exact: bool,
) -> Result:
    scale = plan.scale
    missing = _missing_inputs(plan, missing_ids)
    possible: tuple[Band, ...] = ()
    if lo is not None and hi is not None:
        possible = tuple(
            b for b in scale.bands if b.upper >= lo and b.lower <= hi and _band_meets(b, lo, hi)
        )
    return Result(
        scale=scale,
        value=None,
        complete=False,
        band=possible[0] if len(possible) == 1 else None,
        items=scored,
        steps=tuple(steps),
        missing=missing,
        minimum=lo,
        maximum=hi,
        bounds_exact=exact,
        inputs=values,
        conversions=conversions,
        possible_bands=possible,
    )


def _missing_inputs(plan: _Plan, ids: Iterable[str]) -> tuple[MissingInput, ...]:
    """Missing inputs in the scale's order, with who can answer each."""
    order = plan.scale.input_ids
    return tuple(
        MissingInput(i, plan.inputs[i].label, tuple(a.value for a in plan.inputs[i].answerable_by))
        for i in sorted(set(ids), key=order.index)
        if i in plan.inputs
    )


def _band_meets(band: Band, lo: float, hi: float) -> bool:
    if band.upper == lo:
        return band.upper_closed
    if band.lower == hi:
        return band.lower_closed
    return True


def _assignments(plan: _Plan, missing: list[str]) -> Iterator[dict[str, object]] | None:
    pools = [plan.probes.get(m, ()) for m in missing]
    if any(not p for p in pools):
        return None
    if math.prod(len(p) for p in pools) > _MAX_ASSIGNMENTS:
        return None
    return (dict(zip(missing, combo, strict=True)) for combo in itertools.product(*pools))


def _sum_bounds(plan: _Plan, values: dict[str, object]) -> tuple[float | None, float | None, bool]:
    """Smallest and largest total still possible, found component by component."""
    lo_total = hi_total = 0.0
    exact = True
    for component in plan.components:
        deps = sorted({d for item in component for d in item.deps})
        missing = [d for d in deps if values.get(d) is None]
        if not missing:
            results = [_score_item(plan, item, values) for item in component]
            fixed = _combine(plan, (r for r in results if r is not None))
            lo_total += fixed
            hi_total += fixed
            continue
        if _independent(component, values):
            # Items share no missing input: each can be bounded alone, and the group rules
            # (sum, max) combine those bounds exactly. Much cheaper than the joint product.
            alone = _loose_bounds(plan, component, values)
            if alone is None:
                return None, None, False
            lo_total += alone[0]
            hi_total += alone[1]
            if any(item.source in plan.derived_deps for item in component):
                exact = False
            continue
        assignments = _assignments(plan, missing)
        if assignments is None:
            loose = _loose_bounds(plan, component, values)
            if loose is None:
                return None, None, False
            lo_total += loose[0]
            hi_total += loose[1]
            exact = False
            continue
        if any(d in plan.derived_deps for item in component for d in (item.source,)):
            exact = False
        lo_c, hi_c = math.inf, -math.inf
        for assignment in assignments:
            trial = {**values, **assignment}
            _derive(plan, trial, [])
            results = [_score_item(plan, item, trial) for item in component]
            total = _combine(plan, (r for r in results if r is not None))
            lo_c, hi_c = min(lo_c, total), max(hi_c, total)
        lo_total += lo_c
        hi_total += hi_c
    return lo_total, hi_total, exact


def _independent(component: tuple[_Item, ...], values: Mapping[str, object]) -> bool:
    """Whether no two items of a component wait on the same missing input."""
    seen: set[str] = set()
    for item in component:
        missing = {d for d in item.deps if values.get(d) is None}
        if missing & seen:
            return False
        seen |= missing
    return True


def _loose_bounds(
    plan: _Plan, component: tuple[_Item, ...], values: dict[str, object]
) -> tuple[float, float] | None:
    """Bounds of a component too large to enumerate: each item alone, then its group rule.

    Safe (the true range lies inside) but possibly wider than the truth, as items that share
    an input are bounded as if they did not.
    """
    per_item: list[tuple[_Item, float, float]] = []
    for item in component:
        missing = sorted(d for d in item.deps if values.get(d) is None)
        assignments = _assignments(plan, missing)
        if assignments is None:
            return None
        lo, hi = math.inf, -math.inf
        for assignment in assignments:
            trial = {**values, **assignment}
            _derive(plan, trial, [])
            result = _score_item(plan, item, trial)
            points = 0.0 if result is None or result.points is None else result.points
            lo, hi = min(lo, points), max(hi, points)
        per_item.append((item, lo, hi))
    lo_total = hi_total = 0.0
    grouped: dict[str, list[tuple[float, float]]] = {}
    for item, lo, hi in per_item:
        if item.group is None:
            lo_total += lo
            hi_total += hi
        else:
            grouped.setdefault(item.group, []).append((lo, hi))
    for group, spans in grouped.items():
        if plan.group_combine.get(group, "max") == "max":
            lo_total += max(lo for lo, _ in spans)
            hi_total += max(hi for _, hi in spans)
        else:
            lo_total += sum(lo for lo, _ in spans)
            hi_total += sum(hi for _, hi in spans)
    return lo_total, hi_total


def _finish_formula(
    plan: _Plan,
    *,
    values: dict[str, object],
    conversions: tuple[Conversion, ...],
    steps: list[Step],
    scored: tuple[ItemResult, ...],
) -> Result:
    scale = plan.scale
    fn = get_formula(scale.scoring.formula or "")
    assert fn is not None  # checked when the scale was loaded
    required_missing = [i for i in plan.required if values.get(i) is None]
    item_points = {r.id: r.points for r in scored if r.points is not None}
    if not required_missing:
        ctx = FormulaContext(scale=scale, values=values, item_points=item_points)
        try:
            value = fn(ctx)
        except NeedInput as need:
            required_missing = [_need_to_input(plan, need.input_id, values)]
        else:
            steps.extend(ctx.steps)
            if isinstance(value, date):
                band = None
            else:
                value = float(value)
                band = scale.band_for(value)
            return Result(
                scale=scale,
                value=value,
                complete=True,
                band=band,
                items=scored,
                steps=tuple(steps),
                missing=(),
                minimum=None if isinstance(value, date) else value,
                maximum=None if isinstance(value, date) else value,
                bounds_exact=True,
                inputs=values,
                conversions=conversions,
            )
    lo, hi, exact, extra = _formula_bounds(plan, values, required_missing)
    return _incomplete(
        plan,
        values=values,
        conversions=conversions,
        steps=steps,
        scored=scored,
        missing_ids=[*required_missing, *extra],
        lo=lo,
        hi=hi,
        exact=exact,
    )


def _need_to_input(plan: _Plan, needed: str, values: Mapping[str, object]) -> str:
    """Map what a formula asked for (input, derived value or item) to a missing input id."""
    if needed in plan.inputs:
        return needed
    for item in plan.items:
        if item.id == needed:
            return next((d for d in sorted(item.deps) if values.get(d) is None), needed)
    deps = plan.derived_deps.get(needed, frozenset())
    return next((d for d in sorted(deps) if values.get(d) is None), needed)


def _formula_bounds(
    plan: _Plan, values: dict[str, object], missing: list[str]
) -> tuple[float | None, float | None, bool, list[str]]:
    """Evaluate the formula over probe values of the missing inputs (lazily, within a budget)."""
    scale = plan.scale
    fn = get_formula(scale.scoring.formula or "")
    assert fn is not None
    if scale.output.type == "date":
        return None, None, False, []
    lo, hi = math.inf, -math.inf
    extra: list[str] = []
    budget = [_MAX_ASSIGNMENTS]
    pending: list[tuple[dict[str, object], list[str]]] = [({}, list(missing))]
    while pending:
        assignment, todo = pending.pop()
        if todo:
            name = todo[0]
            pool = plan.probes.get(name, ())
            if not pool:
                return None, None, False, extra
            pending.extend(({**assignment, name: v}, todo[1:]) for v in pool)
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return None, None, False, extra
        trial = {**values, **assignment}
        _derive(plan, trial, [])
        points = {}
        for item in plan.items:
            r = _score_item(plan, item, trial)
            if r is not None and r.points is not None:
                points[item.id] = r.points
        ctx = FormulaContext(scale=scale, values=trial, item_points=points)
        try:
            result = fn(ctx)
        except NeedInput as need:
            name = _need_to_input(plan, need.input_id, trial)
            if name not in plan.inputs or trial.get(name) is not None:
                return None, None, False, extra
            if name not in extra and name not in missing:
                extra.append(name)
            pending.append((assignment, [name]))
            continue
        except (ZeroDivisionError, ValueError, OverflowError):
            continue
        if isinstance(result, date):
            return None, None, False, extra
        lo, hi = min(lo, float(result)), max(hi, float(result))
    if lo == math.inf:
        return None, None, False, extra
    return lo, hi, False, extra


def score_range(scale: Scale) -> tuple[float | None, float | None]:
    """The smallest and largest score a scale can give (declared, or found from its items)."""
    if scale.output.range is not None:
        return scale.output.range
    if scale.scoring.method != "sum":
        return None, None
    lo, hi, _ = _sum_bounds(_plan(scale), {})
    return lo, hi


def reachable_totals(scale: Scale, *, cap: int = 50_000) -> frozenset[float] | None:
    """Every total a points scale can give (None for formulas, or when too many to list)."""
    if scale.scoring.method != "sum":
        return None
    plan = _plan(scale)
    if any(i.rule.per_unit is not None or i.source in plan.derived_deps for i in plan.items):
        return None  # continuous contributions: the totals cannot be listed
    totals: set[float] = {0.0}
    for component in plan.components:
        deps = sorted({d for item in component for d in item.deps})
        assignments = _assignments(plan, deps)
        if assignments is None:
            return None
        options: set[float] = set()
        for assignment in assignments:
            trial = dict(assignment)
            _derive(plan, trial, [])
            results = [_score_item(plan, item, trial) for item in component]
            options.add(round(_combine(plan, (r for r in results if r is not None)), 9))
        totals = {round(a + b, 9) for a in totals for b in options}
        if len(totals) > cap:
            return None
    return frozenset(totals)


def item_points_table(scale: Scale) -> list[tuple[str, str, float | None]]:
    """(item id, option or bracket, points) rows, used by exports and documentation."""
    rows: list[tuple[str, str, float | None]] = []
    for item in _plan(scale).items:
        if isinstance(item.rule, InputDef) and item.rule.options:
            rows.extend((item.id, o.code, o.points) for o in item.rule.options)
        elif isinstance(item.rule, Item) and item.option_points:
            rows.extend((item.id, c, p) for c, p in item.option_points.items())
        elif item.rule.brackets:
            rows.extend((item.id, b.describe("x"), b.points) for b in item.rule.brackets)
        else:
            rows.append((item.id, "true", item.rule.points))
    return rows
