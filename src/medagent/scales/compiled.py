"""The engine's fast path: one Python function per scale, generated from its definition.

The interpreter in ``engine.py`` is the reference. For the common case — every input given,
each value already of its kind (a bool, an option code, a number in range, or a number with a
unit the registry knows) — a generated function computes the same :class:`Result` without the
interpreter's per-item dispatch. Anything else (a missing input, a string to parse, a value out
of range, an unknown key) makes it return None, and the interpreter takes over and says what is
wrong. The tests check that both paths give identical results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from medagent.errors import UnitError
from medagent.scales.model import Condition, InputDef, InputType
from medagent.units import Quantity, converter, normalize_unit

if TYPE_CHECKING:
    from medagent.scales.engine import Result, _Item, _Plan

FastPath = Callable[[Mapping[str, object]], "Result | None"]
UnitReader = Callable[[object], "tuple[float, Any] | None"]


def _unit_reader(spec: InputDef) -> UnitReader:
    """Read ``(number, unit)`` or a Quantity into the declared unit, with the conversion made."""
    from medagent.scales.engine import Conversion

    target = spec.unit
    known: dict[object, tuple[str, Callable[[float], float] | None]] = {}

    def read(value: object) -> tuple[float, Any] | None:
        if type(value) is Quantity:
            number, unit = value.value, value.unit
        elif type(value) in (tuple, list) and len(value) == 2:  # type: ignore[arg-type]
            number, unit = value  # type: ignore[misc]
        else:
            return None
        if target is None or type(number) not in (int, float):
            return None
        entry = known.get(unit)
        if entry is None:
            try:
                code = normalize_unit(str(unit))
                fn = None if code == target else converter(code, target, spec.analyte)
            except UnitError:
                return None
            entry = known[unit] = (code, fn)
        code, fn = entry
        x = float(number)
        if fn is None:
            return x, None
        converted = float(f"{fn(x):.12g}")
        return converted, Conversion(spec.id, x, code, converted, target)

    return read


class _Source:
    """Python source being written, with the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, object] = {}

    def const(self, value: object, hint: str = "k") -> str:
        name = f"_{hint}{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)


def compile_fast(plan: _Plan) -> FastPath | None:
    """Generate the fast path of a scale, or None where the interpreter is simpler."""
    from medagent.scales import engine

    scale = plan.scale
    src = _Source()
    src.names.update(
        ItemResult=engine.ItemResult,
        Result=engine.Result,
        _finish_formula=engine._finish_formula,
        _derive=engine._derive,
        _plan=plan,
        _scale=scale,
        _float=float,
        _type=type,
        _len=len,
        _bool=bool,
    )
    src.add("def fast(raw):", 0)
    src.add(f"if _len(raw) != {len(scale.inputs)}: return None")
    src.add("convs = []")
    local: dict[str, str] = {}
    for n, spec in enumerate(scale.inputs):
        var = f"x{n}"
        local[spec.id] = var
        src.add(f"v = raw.get({spec.id!r})")
        _emit_input(src, spec, var)
    src.add("values = {" + ", ".join(f"{k!r}: {v}" for k, v in local.items()) + "}")
    src.add("steps = []")
    if scale.derived:
        src.add("_derive(_plan, values, steps)")
    item_vars: list[str] = []
    for n, item in enumerate(plan.items):
        emitted = _emit_item(src, plan, item, local=local, points=f"p{n}", result=f"r{n}")
        if not emitted:
            return None
        item_vars.append(f"r{n}")
    src.add("items = (" + "".join(f"{v}, " for v in item_vars) + ")")
    if scale.scoring.method == "formula":
        src.add(
            "return _finish_formula(_plan, values=values, conversions=tuple(convs), "
            "steps=steps, scored=items)"
        )
    else:
        total = _total_expression(plan)
        src.add(f"total = {total}")
        src.add(
            "return Result(_scale, total, True, _scale.band_for(total), items, tuple(steps), "
            "(), total, total, True, values, tuple(convs))"
        )
    code = "\n".join(src.lines)
    namespace: dict[str, object] = dict(src.names)
    exec(compile(code, f"<fast path of {scale.id}>", "exec"), namespace)
    fast = namespace["fast"]
    return fast  # type: ignore[return-value]


def _emit_input(src: _Source, spec: InputDef, var: str) -> None:
    kind = spec.type
    if kind is InputType.BOOLEAN:
        src.add(f"if v is True or v is False: {var} = v")
        src.add("else: return None")
        return
    if kind is InputType.CHOICE:
        codes = src.const(frozenset(o.code for o in spec.options), "codes")
        src.add(f"if _type(v) is str and v in {codes}: {var} = v")
        src.add("else: return None")
        return
    if kind is InputType.DATE or spec.range is None:
        src.add("return None")  # dates are parsed by the interpreter
        return
    lo, hi = spec.range
    reader = src.const(_unit_reader(spec), "read")
    src.add("t = _type(v)")
    src.add(f"if t is float or t is int: {var} = _float(v)")
    src.add("else:")
    src.add(f"got = {reader}(v)", 2)
    src.add("if got is None: return None", 2)
    src.add(f"{var}, conv = got", 2)
    src.add("if conv is not None: convs.append(conv)", 2)
    src.add(f"if not ({lo!r} <= {var} <= {hi!r}): return None")
    if kind is InputType.INTEGER:
        src.add(f"if not {var}.is_integer(): return None")


def _condition(src: _Source, cond: Condition, var: str, kind: InputType) -> str:
    parts: list[str] = []
    if cond.eq is not None:
        parts.append(f"{var} == {src.const(cond.eq, 'eq')}")
    if cond.in_ is not None:
        parts.append(f"{var} in {src.const(frozenset(cond.in_), 'in')}")
    bounds = [(cond.ge, ">="), (cond.gt, ">"), (cond.le, "<="), (cond.lt, "<")]
    if any(b is not None for b, _ in bounds):
        if kind not in (InputType.QUANTITY, InputType.INTEGER):
            return "False"
        parts.extend(f"{var} {op} {b!r}" for b, op in bounds if b is not None)
    return " and ".join(f"({p})" for p in parts) or "True"


def _emit_item(
    src: _Source,
    plan: _Plan,
    item: _Item,
    *,
    local: Mapping[str, str],
    points: str,
    result: str,
) -> bool:
    """Write the scoring of one item; False when this item needs the interpreter."""
    depth = 1
    if item.when:
        tests = []
        for cond in item.when:
            spec = plan.inputs[cond.input]
            tests.append(_condition(src, cond, local[cond.input], spec.type))
        why = " and ".join(c.describe() for c in item.when)
        skip = src.const(f"not applicable (needs {why})", "why")
        src.add(f"if not ({' and '.join(tests)}):")
        src.add(f"{points} = 0.0", 2)
        label = src.const(item.label, "label")
        src.add(
            f"{result} = ItemResult({item.id!r}, {label}, 0.0, None, {skip}, {item.group!r})", 2
        )
        src.add("else:")
        depth = 2
    if item.source in local:
        value = local[item.source]
        kind = plan.inputs[item.source].type
    else:
        value = f"values.get({item.source!r})"
        kind = InputType.QUANTITY
        src.add(f"sv = {value}", depth)
        src.add("if sv is None: return None", depth)
        value = "sv"
    label = src.const(item.label, "label")
    rule = item.rule
    if kind is InputType.BOOLEAN:
        yes, no = src.const(rule.points or 0.0, "pts"), "0.0"
        src.add(f"if {value}: {points} = {yes}; rt = 'present'", depth)
        src.add(f"else: {points} = {no}; rt = 'absent'", depth)
    elif kind is InputType.CHOICE:
        table = src.const({c: (p, c) for c, p in item.option_points.items()}, "opts")
        src.add(f"got = {table}.get({value})", depth)
        src.add("if got is None: return None", depth)
        src.add(f"{points}, rt = got", depth)
    elif rule.per_unit is not None:
        text = src.const(item.score(0.0)[1], "rule")
        src.add(f"{points} = {rule.per_unit!r} * {value}; rt = {text}", depth)
    elif rule.brackets:
        first = True
        for bracket in rule.brackets:
            tests = []
            if bracket.ge is not None:
                tests.append(f"{value} >= {bracket.ge!r}")
            if bracket.gt is not None:
                tests.append(f"{value} > {bracket.gt!r}")
            if bracket.le is not None:
                tests.append(f"{value} <= {bracket.le!r}")
            if bracket.lt is not None:
                tests.append(f"{value} < {bracket.lt!r}")
            test = " and ".join(tests) or "True"
            text = src.const(bracket.describe(item.source), "rule")
            keyword = "if" if first else "elif"
            src.add(f"{keyword} {test}: {points} = {bracket.points!r}; rt = {text}", depth)
            first = False
        src.add("else: return None", depth)
    else:
        return False
    src.add(
        f"{result} = ItemResult({item.id!r}, {label}, {points}, {value}, rt, {item.group!r})",
        depth,
    )
    return True


def _total_expression(plan: _Plan) -> str:
    loose: list[str] = []
    groups: dict[str, list[str]] = {}
    for n, item in enumerate(plan.items):
        if item.group is None:
            loose.append(f"p{n}")
        else:
            groups.setdefault(item.group, []).append(f"p{n}")
    parts = list(loose)
    for group, names in groups.items():
        how = plan.group_combine.get(group, "max")
        if how == "max":
            parts.append(f"max({', '.join(names)})" if len(names) > 1 else names[0])
        else:
            parts.append(f"({' + '.join(names)})")
    return " + ".join(parts) or "0.0"
