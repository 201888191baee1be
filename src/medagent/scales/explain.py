"""Turn a result's computation trace into words and into JSON; never written separately."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.scales.engine import Result
    from medagent.scales.model import Alert, Reference, Scale


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


class _Layout:
    """The fixed parts of a scale's explanation, written once per scale."""

    __slots__ = ("band_lines", "combine", "head", "item_prefix", "item_suffix", "source", "unit")

    def __init__(self, result: Result) -> None:
        scale = result.scale
        ref = scale.primary_reference
        link = f" {ref.link}" if ref.link else ""
        self.head = f"{scale.title} (v{scale.version}): "
        self.source = f"  Source: {ref.citation}{link}"
        shows_unit = scale.output.unit and scale.output.display == "plain"
        self.unit = f" {scale.output.unit}" if shows_unit else ""
        self.combine = {g.id: g.combine for g in scale.scoring.groups}
        self.band_lines: dict[str, str] = {}
        refs = {r.key: r for r in scale.references}
        for band in scale.bands:
            text = f"  Band: {band.label} ({band.describe('score')})"
            lines = [f"{text}: {band.interpretation}" if band.interpretation else text]
            for advice in band.guidance:
                ref = refs[advice.reference]
                strength = f" [{advice.strength}]" if advice.strength else ""
                link = f" {ref.link}" if ref.link else ""
                lines.append(f"  Guideline: {advice.text}{strength} ({ref.citation}{link})")
            self.band_lines[band.id] = "\n".join(lines)
        labels = [(i.id, i.label, i.group) for i in scale.inputs]
        labels += [(i.id, i.label, i.group) for i in scale.scoring.items]
        self.item_prefix = {i: f"    {label}" for i, label, _ in labels}
        self.item_suffix = {
            i: f" (highest of group {group} counts)" if group else "" for i, _, group in labels
        }


_LAYOUTS: dict[int, tuple[object, _Layout]] = {}


def _layout(result: Result) -> _Layout:
    cached = _LAYOUTS.get(id(result.scale))
    if cached is not None and cached[0] is result.scale:
        return cached[1]
    layout = _Layout(result)
    _LAYOUTS[id(result.scale)] = (result.scale, layout)
    return layout


def explain(result: Result) -> str:
    """A readable account of how the result was reached, line by line from the trace."""
    scale = result.scale
    layout = _layout(result)
    band = result.band
    if result.complete:
        head = layout.head + result.display + layout.unit
        out = [head + " — " + band.label if band is not None else head]
    else:
        out = [layout.head + result.display]
    # Alerts come straight after the headline: they stand whatever the total says, and a
    # reader who stops after the first lines (a card, a terminal) must not miss them.
    for alert in result.alerts:
        out.extend(_alert_lines(result, alert))
    for alert in result.unchecked_alerts:
        needs = ", ".join(
            f"{scale.input(c.input).label} [{c.input}]"
            for c in alert.when
            if result.inputs.get(c.input) is None
        )
        out.append(f"  Alert not yet checked ({alert.severity}, {alert.id}): needs {needs}")
    for conv in result.conversions:
        out.append(
            f"  converted {conv.input_id}: {_num(conv.original)} {conv.original_unit} = "
            f"{conv.value:.6g} {conv.unit}"
        )
    if result.items:
        out.append("  Points:")
        prefix, suffix = layout.item_prefix, layout.item_suffix
        for item in result.items:
            points = "—" if item.points is None else f"{item.points:+g}"
            value = item.value
            shown = "" if value is None else " = " + _value_text(value)
            out.append(
                prefix[item.id] + shown + ": " + item.rule + " → " + points + suffix[item.id]
            )
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
            out.append("  Total = " + _sum_text(result, layout.combine) + " = " + result.display)
        if band is not None:
            out.append(layout.band_lines[band.id])
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
    out.append(layout.source)
    return "\n".join(out)


def _alert_lines(result: Result, alert: Alert) -> list[str]:
    scale = result.scale
    ref = _reference(scale, alert.reference)
    link = f" {ref.link}" if ref.link else ""
    because = "; ".join(
        f"{scale.input(c.input).label} [{c.input}] = {_answer(scale, c.input, result.inputs)}"
        for c in alert.when
    )
    return [
        f"  ALERT ({alert.severity}): {alert.text}",
        f"    Because: {because}",
        f"    Source: {ref.citation}{link}",
    ]


def _answer(scale: Scale, input_id: str, inputs: Mapping[str, object]) -> str:
    """A given value as shown to a reader: a choice by its label, anything else as a value."""
    spec = scale.input(input_id)
    value = inputs.get(input_id)
    option = spec.option(value) if isinstance(value, str) else None
    if option is not None:
        return option.label
    unit = f" {spec.unit}" if spec.unit and type(value) is float else ""
    return _value_text(value) + unit


def _reference(scale: Scale, key: str) -> Reference:
    return next(r for r in scale.references if r.key == key)


def _sum_text(result: Result, combine: Mapping[str, str]) -> str:
    """The addition behind a points total, with grouped items shown as their max or sum."""
    parts: list[str] = []
    grouped: dict[str, list[float]] = {}
    for item in result.items:
        points = item.points
        if points is None:
            continue
        if item.group is None:
            if points:
                parts.append(f"{points:g}")
        else:
            grouped.setdefault(item.group, []).append(points)
    for group, points_list in grouped.items():
        how = combine.get(group, "max")
        value = max(points_list) if how == "max" else sum(points_list)
        if value:
            if len(points_list) > 1:
                args = ", ".join(f"{p:g}" for p in points_list)
                parts.append(f"{how}({args})")
            else:
                parts.append(f"{value:g}")
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
            "guidance": [_guidance(scale, g) for g in result.band.guidance],
        },
        "alerts": [_alert(result, a) for a in result.alerts],
        "unchecked_alerts": [
            {
                "id": a.id,
                "severity": a.severity,
                "needs": [c.input for c in a.when if result.inputs.get(c.input) is None],
            }
            for a in result.unchecked_alerts
        ],
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


def _alert(result: Result, alert: Alert) -> dict[str, Any]:
    ref = _reference(result.scale, alert.reference)
    return {
        "id": alert.id,
        "severity": alert.severity,
        "text": alert.text,
        "citation": ref.citation,
        "link": ref.link,
        "because": {c.input: _json_value(result.inputs.get(c.input)) for c in alert.when},
    }


def _guidance(scale: Any, advice: Any) -> dict[str, Any]:
    ref = _reference(scale, advice.reference)
    return {
        "text": advice.text,
        "strength": advice.strength,
        "citation": ref.citation,
        "link": ref.link,
    }


def _json_value(value: object) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value
