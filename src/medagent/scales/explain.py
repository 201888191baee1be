"""Turn a result's computation trace into words and into JSON; never written separately."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.scales.engine import Result


def _num(x: float) -> str:
    return f"{x:.0f}" if x.is_integer() else f"{x:.6g}"


def _value_text(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if type(value) is float:
        return _num(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_SOURCE_LINES: dict[int, tuple[object, str, str]] = {}


def _fixed_lines(result: Result) -> tuple[str, str]:
    """The heading prefix and the source line of a scale, built once per scale."""
    scale = result.scale
    cached = _SOURCE_LINES.get(id(scale))
    if cached is not None and cached[0] is scale:
        return cached[1], cached[2]
    ref = scale.primary_reference
    link = f" {ref.link}" if ref.link else ""
    head = f"{scale.title} (v{scale.version}): "
    source = f"  Source: {ref.citation}{link}"
    _SOURCE_LINES[id(scale)] = (scale, head, source)
    return head, source


def explain(result: Result) -> str:
    """A readable account of how the result was reached, line by line from the trace."""
    scale = result.scale
    head, source = _fixed_lines(result)
    out: list[str] = []
    shows_unit = scale.output.unit and scale.output.display == "plain"
    unit = f" {scale.output.unit}" if shows_unit and result.complete else ""
    band = result.band
    if band is not None and result.complete:
        out.append(f"{head}{result.display}{unit} — {band.label}")
    else:
        out.append(f"{head}{result.display}{unit}")
    for conv in result.conversions:
        out.append(
            f"  converted {conv.input_id}: {_num(conv.original)} {conv.original_unit} = "
            f"{conv.value:.6g} {conv.unit}"
        )
    if result.items:
        out.append("  Points:")
        for item in result.items:
            points = "—" if item.points is None else f"{item.points:+g}"
            value = item.value
            once = f" (highest of group {item.group} counts)" if item.group else ""
            if value is None:
                out.append(f"    {item.label}: {item.rule} → {points}{once}")
            else:
                shown = _value_text(value)
                out.append(f"    {item.label} = {shown}: {item.rule} → {points}{once}")
    if result.steps:
        out.append("  Steps:")
        for step in result.steps:
            if step.label == "rule":
                out.append(f"    · {step.value}")
                continue
            value_text = step.value if isinstance(step.value, str) else _num(step.value)
            unit_text = f" {step.unit}" if step.unit else ""
            formula = f" = {step.formula}" if step.formula else ""
            detail = f" = {step.detail}" if step.detail else ""
            out.append(f"    {step.label}{formula}{detail} = {value_text}{unit_text}")
    if result.not_needed:
        names = ", ".join(f"{m.label} [{m.id}]" for m in result.not_needed)
        out.append(f"  Not needed (no answer could change the score): {names}")
    if result.complete:
        if result.items and scale.scoring.method == "sum":
            out.append(f"  Total = {_sum_text(result)} = {result.display}")
        if band is not None:
            text = f"  Band: {band.label} ({band.describe('score')})"
            if band.interpretation:
                text += f": {band.interpretation}"
            out.append(text)
    else:
        names = ", ".join(f"{m.label} [{m.id}]" for m in result.missing)
        out.append(f"  INCOMPLETE — missing: {names}")
        if result.minimum is not None and result.maximum is not None:
            how = "" if result.bounds_exact else " (over the allowed ranges of the missing inputs)"
            out.append(f"  Still possible: {_num(result.minimum)} to {_num(result.maximum)}{how}")
            if result.possible_bands:
                out.append("  Possible bands: " + ", ".join(b.label for b in result.possible_bands))
        else:
            out.append("  Still possible: any value (no bound can be given)")
    out.append(source)
    return "\n".join(out)


def _sum_text(result: Result) -> str:
    """The addition behind a points total, with grouped items shown as their max or sum."""
    parts = [f"{i.points:g}" for i in result.items if i.points and i.group is None]
    combine = {g.id: g.combine for g in result.scale.scoring.groups}
    grouped: dict[str, list[float]] = {}
    for item in result.items:
        if item.group is not None and item.points is not None:
            grouped.setdefault(item.group, []).append(item.points)
    for group, points in grouped.items():
        args = ", ".join(f"{p:g}" for p in points)
        how = combine.get(group, "max")
        value = max(points) if how == "max" else sum(points)
        if value:
            parts.append(f"{how}({args})" if len(points) > 1 else f"{value:g}")
    return " + ".join(parts) or "0"


def result_to_dict(result: Result) -> dict[str, Any]:
    """The result as plain JSON types."""
    scale = result.scale
    value: Any = result.value
    if isinstance(value, date):
        value = value.isoformat()
    return {
        "scale": scale.id,
        "version": scale.version,
        "title": scale.title,
        "complete": result.complete,
        "value": value,
        "display": result.display,
        "unit": scale.output.unit,
        "band": None
        if result.band is None
        else {
            "id": result.band.id,
            "label": result.band.label,
            "interpretation": result.band.interpretation,
        },
        "items": [
            {
                "id": i.id,
                "label": i.label,
                "value": _json_value(i.value),
                "points": i.points,
                "rule": i.rule,
            }
            for i in result.items
        ],
        "steps": [
            {
                "label": s.label,
                "value": s.value,
                "formula": s.formula,
                "detail": s.detail,
                "unit": s.unit,
            }
            for s in result.steps
        ],
        "conversions": [
            {
                "input": c.input_id,
                "original": c.original,
                "original_unit": c.original_unit,
                "value": c.value,
                "unit": c.unit,
            }
            for c in result.conversions
        ],
        "missing": [
            {"id": m.id, "label": m.label, "answerable_by": list(m.answerable_by)}
            for m in result.missing
        ],
        "not_needed": [m.id for m in result.not_needed],
        "minimum": result.minimum,
        "maximum": result.maximum,
        "bounds_exact": result.bounds_exact,
        "possible_bands": [b.id for b in result.possible_bands],
        "inputs": {k: _json_value(v) for k, v in result.inputs.items()},
        "references": [
            {"citation": r.citation, "doi": r.doi, "pmid": r.pmid, "link": r.link}
            for r in scale.references
        ],
        "explanation": result.explanation,
    }


def _json_value(value: object) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value
