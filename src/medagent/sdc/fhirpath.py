"""Translate a points scale into one FHIRPath expression that computes its total as the engine does.

The expression reads the answers of a QuestionnaireResponse (``%resource``) and follows the
engine's rules exactly:

- a boolean gives its points when true and 0 when false; a choice gives its option's points; a
  number gives the points of the bracket it falls in (same closed/open bounds) or ``per_unit`` times
  its value;
- an item with ``when`` conditions gives 0 as soon as one known condition fails, and waits for its
  source only when every condition holds;
- the items of a group combine by max (or sum); a max group already at its ceiling needs no more;
- a missing answer propagates as an empty collection (FHIRPath's ``+`` on empty is empty), so an
  incomplete response has no total, as an incomplete result has no value: nothing is assumed.

Only self-contained, standard FHIRPath is used (``select``, ``where``, ``iif``, ``exists``,
``aggregate``), with no SDC variables, so any conformant engine can evaluate it alone. A derived
value is translated only when the translation is exact (counts of boolean inputs); a scale that
needs anything else gets no expression, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from medagent.scales.formulas.cardio import HEART_RISK_FACTORS, TIMI_RISK_FACTORS
from medagent.scales.model import Bracket, Condition, InputDef, InputType, PointsRule, Scale
from medagent.sdc.codes import CANONICAL_BASE, option_coding

# Derived values whose FHIRPath translation is exact: a count of boolean inputs that are true.
_COUNT_FORMULAS: Mapping[str, tuple[str, ...]] = {
    "heart_risk_factor_count": HEART_RISK_FACTORS,
    "timi_risk_factor_count": TIMI_RISK_FACTORS,
}

ResultType = Literal["integer", "decimal"]


@dataclass(frozen=True, slots=True)
class Calculation:
    """The FHIRPath total of a points scale, or the reason it cannot be written faithfully."""

    expression: str | None
    reason: str | None
    result_type: ResultType


class _NotExpressibleError(Exception):
    """Internal: this scale needs something FHIRPath cannot reproduce exactly."""


@dataclass(frozen=True, slots=True)
class _ScoredItem:
    id: str
    source: str
    rule: PointsRule
    option_points: Mapping[str, float]
    when: tuple[Condition, ...]
    group: str | None


def answer_path(link_id: str) -> str:
    """The FHIRPath of the answer value of one item of the response, wherever it is nested."""
    return f"%resource.repeat(item).where(linkId = {_string(link_id)}).answer.value"


def total_expression(scale: Scale, *, base: str = CANONICAL_BASE) -> Calculation:
    """The calculatedExpression of a points scale's total (None with a reason when not faithful)."""
    if scale.scoring.method != "sum":
        return Calculation(None, "the result is computed by a medagent formula", "decimal")
    builder = _Builder(scale, base)
    try:
        expression = builder.total()
    except _NotExpressibleError as why:
        return Calculation(None, str(why), builder.result_type())
    return Calculation(expression, None, builder.result_type())


def scored_items(scale: Scale) -> tuple[_ScoredItem, ...]:
    """The items of a points scale in the engine's order: scoring inputs, then scoring items."""
    items = [
        _ScoredItem(
            spec.id,
            spec.id,
            spec,
            {o.code: o.points for o in spec.options if o.points is not None},
            (),
            spec.group,
        )
        for spec in scale.inputs
        if spec.scores
    ]
    items.extend(
        _ScoredItem(i.id, i.source, i, i.option_points, i.when, i.group)
        for i in scale.scoring.items
    )
    return tuple(items)


class _Builder:
    def __init__(self, scale: Scale, base: str) -> None:
        self.scale = scale
        self.base = base
        self.inputs = {i.id: i for i in scale.inputs}
        self.derived = {d.id: d for d in scale.derived}
        self.items = scored_items(scale)
        self.combine = {g.id: g.combine for g in scale.scoring.groups}

    # ------------------------------------------------------------------ totals

    def total(self) -> str:
        # Terms in the engine's order: an ungrouped item, a group (at its first item), or the
        # ungrouped items conditioned on one condition-only input (at the first of them).
        order: list[tuple[str, str | _ScoredItem]] = []
        members: dict[tuple[str, str], list[_ScoredItem]] = {}
        switches = self.switches()
        for item in self.items:
            switch = next((c.input for c in item.when if c.input in switches), None)
            if item.group is not None:
                key = ("group", item.group)
            elif switch is not None:
                key = ("switch", switch)
            else:
                order.append(("item", item))
                continue
            if key not in members:
                order.append(key)
            members.setdefault(key, []).append(item)
        terms: list[str] = []
        for kind, what in order:
            if isinstance(what, _ScoredItem):
                terms.append(self.item(what))
            elif kind == "group":
                terms.append(self.group(members[(kind, what)]))
            else:
                terms.append(self.switch(what, members[(kind, what)]))
        return "\n + ".join(f"({t})" for t in terms) if terms else "0"

    def switches(self) -> dict[str, tuple[object, ...]]:
        """Inputs used only in conditions (a choice or a flag) and the values they can take.

        When such an input is missing, the engine tries each of its values and still knows the
        total if all give the same one (NEWS2: SpO₂ 75 % scores 3 on either scale); so does the
        expression, term by term.
        """
        out: dict[str, tuple[object, ...]] = {}
        for spec in self.scale.inputs:
            if spec.type not in (InputType.BOOLEAN, InputType.CHOICE) or spec.scores:
                continue
            if any(i.source == spec.id for i in self.items):
                continue
            if any(spec.id in d.inputs for d in self.scale.derived):
                continue
            if spec.type is InputType.BOOLEAN:
                out[spec.id] = (False, True)
            else:
                out[spec.id] = tuple(o.code for o in spec.options)
        return out

    def switch(self, input_id: str, members: list[_ScoredItem]) -> str:
        actual = " + ".join(f"({self.item(m)})" for m in members)
        cases = []
        for value in self.switches()[input_id]:
            cases.append(" + ".join(f"({self.item(m, assume=(input_id, value))})" for m in members))
        first = cases[0]
        same = " and ".join([f"({first}).exists()", *(f"({first}) = ({c})" for c in cases[1:])])
        return f"iif({answer_path(input_id)}.exists(), {actual}, iif({same}, {first}, {{}}))"

    def group(self, members: list[_ScoredItem]) -> str:
        parts = [self.item(m) for m in members]
        if len(parts) == 1:
            return parts[0]
        if self.combine.get(members[0].group or "", "max") == "sum":
            return " + ".join(f"({p})" for p in parts)
        union = " | ".join(f"({p})" for p in parts)
        known = " and ".join(f"({p}).exists()" for p in parts)
        largest = f"({union}).aggregate(iif($total.empty() or $this > $total, $this, $total))"
        every = f"iif({known}, {largest}, {{}})"
        if any(m.source in self.derived for m in members):
            # The engine bounds derived values loosely, so it never settles such a group early.
            return every
        ceiling = _literal(max(self.max_points(m) for m in members))
        return f"iif(({union}).where($this = {ceiling}).exists(), {ceiling}, {every})"

    def max_points(self, item: _ScoredItem) -> float:
        """An upper bound of the points an item can give (the group ceiling test relies on it)."""
        rule = item.rule
        candidates = [0.0]
        if rule.points is not None:
            candidates.append(rule.points)
        candidates.extend(item.option_points.values())
        candidates.extend(b.points for b in rule.brackets)
        if rule.per_unit is not None:
            raise _NotExpressibleError(f"item {item.id}: linear points inside a max group")
        return max(candidates)

    # ------------------------------------------------------------------ items

    def item(self, item: _ScoredItem, *, assume: tuple[str, object] | None = None) -> str:
        """Points of one item; with ``assume``, as if that input had that value."""
        points = self.points(item)
        when = list(item.when)
        if assume is not None:
            name, value = assume
            if any(c.input == name and not c.holds(value) for c in when):
                return "0"
            when = [c for c in when if c.input != name]
        if not when:
            return points
        fails = " or ".join(
            f"{self.condition_value(c)}.where(({self.test(c)}).not()).exists()" for c in when
        )
        holds = " and ".join(
            f"{self.condition_value(c)}.where({self.test(c)}).exists()" for c in when
        )
        # Conditions not yet known: 0 either way when the points would be 0 anyway.
        unknown = f"iif(({points}) = 0, 0, {{}})"
        return f"iif({fails}, 0, iif({holds}, {points}, {unknown}))"

    def points(self, item: _ScoredItem) -> str:
        value, kind = self.source(item)
        rule = item.rule
        if kind is InputType.BOOLEAN:
            return f"{value}.select(iif($this, {_literal(rule.points or 0.0)}, 0))"
        if kind is InputType.CHOICE:
            spec = self.inputs[item.source]
            chain = "{}"
            for code, pts in reversed(list(item.option_points.items())):
                option = spec.option(code)
                if option is None:
                    raise _NotExpressibleError(f"item {item.id}: unknown option {code}")
                emitted = option_coding(option, scale=self.scale, spec=spec, base=self.base)
                chain = f"iif($this.code = {_string(emitted['code'])}, {_literal(pts)}, {chain})"
            return f"{value}.select({chain})"
        if kind is InputType.DATE:
            raise _NotExpressibleError(f"item {item.id}: points on a date")
        if rule.per_unit is not None:
            return f"{value}.select($this * {_literal(rule.per_unit)})"
        if not rule.brackets:
            raise _NotExpressibleError(f"item {item.id}: numeric item without brackets")
        chain = "{}"
        for bracket in reversed(rule.brackets):
            chain = f"iif({_bounds(bracket)}, {_literal(bracket.points)}, {chain})"
        return f"{value}.select({chain})"

    def source(self, item: _ScoredItem) -> tuple[str, InputType]:
        """The FHIRPath of an item's value and its kind."""
        spec = self.inputs.get(item.source)
        if spec is not None:
            return answer_path(spec.id), spec.type
        derived = self.derived.get(item.source)
        if derived is None:
            raise _NotExpressibleError(f"item {item.id}: unknown source {item.source}")
        counted = _COUNT_FORMULAS.get(derived.formula)
        if counted is None or set(counted) != set(derived.inputs):
            raise _NotExpressibleError(
                f"item {item.id} scores the derived value {derived.id} ({derived.label}), which "
                f"medagent computes with its Python formula {derived.formula}; it is not "
                "translated to FHIRPath, so that no expression can disagree with the engine"
            )
        for input_id in counted:
            if self.inputs[input_id].type is not InputType.BOOLEAN:
                raise _NotExpressibleError(f"derived {derived.id}: {input_id} is not a boolean")
        count = " + ".join(f"{answer_path(i)}.select(iif($this, 1, 0))" for i in derived.inputs)
        return f"({count})", InputType.INTEGER

    def condition_value(self, cond: Condition) -> str:
        if cond.input not in self.inputs:
            raise _NotExpressibleError(f"condition on {cond.input}, which is not an input")
        return answer_path(cond.input)

    def test(self, cond: Condition) -> str:
        """A FHIRPath test on ``$this`` equal to :meth:`Condition.holds`."""
        spec = self.inputs[cond.input]
        parts: list[str] = []
        if cond.eq is not None:
            parts.append(self.equals(spec, cond.eq))
        if cond.in_ is not None:
            codes = " | ".join(_string(self.code(spec, c)) for c in cond.in_)
            if spec.type is not InputType.CHOICE:
                raise _NotExpressibleError(f"condition on {cond.input}: 'in' on a non-choice input")
            parts.append(f"$this.code in ({codes})")
        for op, bound in ((">=", cond.ge), (">", cond.gt), ("<=", cond.le), ("<", cond.lt)):
            if bound is not None:
                if spec.type not in (InputType.INTEGER, InputType.QUANTITY):
                    raise _NotExpressibleError(f"condition on {cond.input}: bound on a non-number")
                parts.append(f"$this {op} {_literal(bound)}")
        return " and ".join(f"({p})" for p in parts) if parts else "true"

    def equals(self, spec: InputDef, expected: bool | str | float) -> str:
        if spec.type is InputType.BOOLEAN:
            if not isinstance(expected, bool):
                raise _NotExpressibleError(f"condition on {spec.id}: {expected!r} is not a boolean")
            return f"$this = {'true' if expected else 'false'}"
        if spec.type is InputType.CHOICE:
            if not isinstance(expected, str):
                raise _NotExpressibleError(f"condition on {spec.id}: {expected!r} is not a code")
            return f"$this.code = {_string(self.code(spec, expected))}"
        if isinstance(expected, bool) or not isinstance(expected, (int, float)):
            raise _NotExpressibleError(f"condition on {spec.id}: {expected!r} is not a number")
        return f"$this = {_literal(float(expected))}"

    def code(self, spec: InputDef, code: str) -> str:
        option = spec.option(code)
        if option is None:
            raise _NotExpressibleError(f"condition on {spec.id}: unknown option {code}")
        return option_coding(option, scale=self.scale, spec=spec, base=self.base)["code"]

    # ------------------------------------------------------------------ types

    def result_type(self) -> ResultType:
        """integer when every contribution is a whole number for every answer."""
        if self.scale.output.type != "integer":
            return "decimal"
        for item in self.items:
            rule = item.rule
            values = [rule.points or 0.0, *item.option_points.values()]
            values.extend(b.points for b in rule.brackets)
            if any(not float(v).is_integer() for v in values):
                return "decimal"
            if rule.per_unit is not None:
                spec = self.inputs.get(item.source)
                whole = spec is not None and spec.type is InputType.INTEGER
                if not whole or not float(rule.per_unit).is_integer():
                    return "decimal"
        return "integer"


def _bounds(bracket: Bracket) -> str:
    parts = []
    if bracket.ge is not None:
        parts.append(f"$this >= {_literal(bracket.ge)}")
    if bracket.gt is not None:
        parts.append(f"$this > {_literal(bracket.gt)}")
    if bracket.le is not None:
        parts.append(f"$this <= {_literal(bracket.le)}")
    if bracket.lt is not None:
        parts.append(f"$this < {_literal(bracket.lt)}")
    return " and ".join(parts) if parts else "true"


def _literal(x: float) -> str:
    """A FHIRPath number literal (no exponent: FHIRPath has none); negatives as unary minus."""
    if float(x).is_integer():
        return str(int(x))
    text = format(Decimal(repr(float(x))), "f")
    return text


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
