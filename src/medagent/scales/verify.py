"""Run a scale's worked examples and check that every band edge has one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from medagent.errors import MedAgentError
from medagent.scales.engine import Result, evaluate, reachable_totals
from medagent.scales.model import Example, Scale, parse_date


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    """Whether one worked example gave what its source says."""

    scale_id: str
    example_id: str
    ok: bool
    message: str
    result: Result | None = None

    @property
    def test_id(self) -> str:
        return f"{self.scale_id}:{self.example_id}"


def tolerance(scale: Scale, example: Example) -> float:
    """Absolute tolerance: the example's own, else half a unit of the display precision."""
    if example.expect.tolerance is not None:
        return float(example.expect.tolerance)
    if scale.output.type == "integer":
        return 1e-9
    return 0.5 * 10.0 ** (-scale.output.precision) + 1e-9


def run_example(scale: Scale, example: Example) -> ExampleOutcome:
    """Evaluate one example and compare with what it expects."""
    expect = example.expect
    try:
        result = evaluate(scale, example.inputs)
    except MedAgentError as exc:
        return ExampleOutcome(scale.id, example.id, False, f"raised: {exc}")
    problems: list[str] = []
    if result.complete != expect.complete:
        problems.append(f"complete={result.complete}, expected {expect.complete}")
    if expect.complete and result.complete:
        if isinstance(result.value, date):
            wanted = parse_date(str(expect.value))
            if result.value != wanted:
                problems.append(f"value {result.value}, expected {wanted}")
        elif result.value is not None and expect.value is not None:
            diff = abs(float(result.value) - float(expect.value))
            if diff > tolerance(scale, example):
                problems.append(f"value {result.value:.6g}, expected {expect.value}")
        if expect.band is not None:
            got = result.band.id if result.band else None
            if got != expect.band:
                problems.append(f"band {got}, expected {expect.band}")
    if not expect.complete and not result.complete:
        got_missing = sorted(m.id for m in result.missing)
        if sorted(expect.missing) != got_missing:
            problems.append(f"missing {got_missing}, expected {sorted(expect.missing)}")
        bounds = (("min", expect.min, result.minimum), ("max", expect.max, result.maximum))
        for name, want, bound in bounds:
            if want is None:
                continue
            if bound is None or abs(bound - want) > tolerance(scale, example):
                problems.append(f"{name} {bound}, expected {want}")
    if expect.alerts is not None:  # complete or not: an alert stands apart from the total
        got_alerts = sorted(a.id for a in result.alerts)
        if got_alerts != sorted(expect.alerts):
            problems.append(f"alerts {got_alerts}, expected {sorted(expect.alerts)}")
    message = "; ".join(problems) if problems else "ok"
    return ExampleOutcome(scale.id, example.id, not problems, message, result)


def band_edges_without_example(scale: Scale) -> list[str]:
    """Bands that no complete example reaches at one of their edges.

    For a points scale an edge is the lowest or highest total the scale can actually reach inside
    the band (with 5-point items, 95 is the top of a 91–99 band). For a formula, an edge is a
    declared bound, and an example within one display unit of it counts.
    """
    if not scale.bands:
        return []
    values = [
        float(example.expect.value)
        for example in scale.examples
        if example.expect.complete and isinstance(example.expect.value, (int, float))
    ]
    reachable = reachable_totals(scale)
    step = 1.0 if scale.output.type == "integer" else 10.0 ** (-scale.output.precision)
    lacking: list[str] = []
    for band in scale.bands:
        if reachable is not None:
            inside = [v for v in reachable if band.contains(v)]
            edges = [min(inside), max(inside)] if inside else []
            hit = any(abs(v - e) <= 1e-9 for v in values for e in edges)
        else:
            edges = [e for e in (band.lower, band.upper) if abs(e) != float("inf")]
            hit = any(
                band.contains(v) and any(abs(v - e) <= step + 1e-9 for e in edges) for v in values
            )
        if edges and not hit:
            lacking.append(band.id)
    return lacking


def verify_scale(scale: Scale) -> list[ExampleOutcome]:
    """Run every worked example of a scale, plus the band-edge coverage check."""
    outcomes = [run_example(scale, ex) for ex in scale.examples]
    lacking = band_edges_without_example(scale)
    if lacking:
        outcomes.append(
            ExampleOutcome(
                scale.id,
                "band-edges",
                False,
                "no worked example at an edge of band(s): " + ", ".join(lacking),
            )
        )
    return outcomes
