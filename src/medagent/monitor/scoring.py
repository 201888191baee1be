"""Early-warning scores from a patient's current values, through the scale engine, and the
escalation rules declared for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from medagent.monitor.config import SEVERITY_RANK, EscalationRule, MonitorConfig, ScoreSpec
from medagent.scales import Result, evaluate, get_scale
from medagent.scales.model import Scale

_MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Escalation:
    """The most severe escalation rule a result meets."""

    rule: EscalationRule
    result: Result


def derive(name: str, values: Mapping[str, object], *, hypercapnic: bool) -> object | None:
    """A declared derivation from current values; None when the record does not tell."""
    if name == "spo2_scale":
        # Scale 2 only when the record says hypercapnic respiratory failure (the chart's rule).
        return "scale_2" if hypercapnic else "scale_1"
    if name == "supplemental_oxygen":
        flow, fio2 = values.get("o2_flow"), values.get("fio2")
        if (isinstance(flow, float) and flow > 0) or (isinstance(fio2, float) and fio2 > 21):
            return True
        if isinstance(flow, float) or isinstance(fio2, float):
            return False
        return None
    consciousness = values.get("consciousness")
    if consciousness is None:
        return None
    if name == "altered_mentation":
        return consciousness != "alert"
    if name == "avpu":
        # MEWS has no "new confusion" level: it stays unanswered rather than guessed.
        return (
            consciousness if consciousness in {"alert", "voice", "pain", "unresponsive"} else None
        )
    raise KeyError(name)


def score_inputs(
    spec: ScoreSpec, values: Mapping[str, object], *, hypercapnic: bool
) -> dict[str, object]:
    """The scale's inputs from current values (missing ones are left out, never assumed)."""
    out: dict[str, object] = {}
    for input_id, src in spec.inputs.items():
        value = (
            values.get(src.signal)
            if src.signal
            else derive(src.derive or "", values, hypercapnic=hypercapnic)
        )
        if value is not None:
            out[input_id] = value
    return out


class Scorer:
    """Evaluates the monitored scales, memoized on exact inputs (the engine is deterministic, so
    the same inputs always give the same result)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.specs = {spec.scale: spec for spec in config.scores}
        self.scales: dict[str, Scale] = {s: get_scale(s) for s in self.specs}
        self.rules: dict[str, list[EscalationRule]] = {}
        for rule in config.escalation:
            self.rules.setdefault(rule.scale, []).append(rule)
        self.reads: dict[str, frozenset[str]] = {
            spec.scale: frozenset(
                {src.signal for src in spec.inputs.values() if src.signal}
                | ({"o2_flow", "fio2"} if any(s.derive for s in spec.inputs.values()) else set())
                | ({"consciousness"} if any(s.derive for s in spec.inputs.values()) else set())
            )
            for spec in config.scores
        }
        self.lab_signals = frozenset(s.id for s in config.signals if s.kind == "lab")
        self._memo: dict[tuple[str, tuple[tuple[str, object], ...]], Result] = {}

    def affected(self, signals: set[str]) -> list[str]:
        """Scales that read any of these signals."""
        return [s for s, reads in self.reads.items() if reads & signals]

    def evaluate(self, scale_id: str, inputs: Mapping[str, object]) -> Result:
        """The engine's result for these inputs (memoized)."""
        key = (scale_id, tuple(sorted(inputs.items())))
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > _MEMO_LIMIT:
                self._memo.clear()
            hit = self._memo[key] = evaluate(self.scales[scale_id], inputs)
        return hit

    def escalation(self, result: Result) -> Escalation | None:
        """The most severe declared rule the result meets (on what is certain when incomplete);
        of equally severe rules the one declared last wins (the stronger response)."""
        best: EscalationRule | None = None
        for rule in self.rules.get(result.scale_id, ()):
            if rule.min_total is not None:
                met = result.minimum is not None and result.minimum >= rule.min_total
            else:
                met = any(
                    i.points is not None and i.points >= (rule.any_item or 0) for i in result.items
                )
            if met and (
                best is None or SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[best.severity]
            ):
                best = rule
        return Escalation(best, result) if best is not None else None


@cache
def scale_link(scale_id: str) -> str | None:
    """The link of a scale's primary reference (DOI or URL)."""
    scale = get_scale(scale_id)
    refs = sorted(scale.references, key=lambda r: not getattr(r, "primary", False))
    for ref in refs:
        doi = getattr(ref, "doi", None)
        if doi:
            return f"https://doi.org/{doi}"
        url = getattr(ref, "url", None)
        if url:
            return str(url)
    return None


def short_value(result: Result) -> str:
    """``NEWS2 7`` or ``NEWS2 ≥ 5 (incomplete)``."""
    name = result.scale.short_title or result.scale.id
    if result.complete:
        return f"{name} {result.display}"
    lo = "?" if result.minimum is None else f"{result.minimum:g}"
    hi = "?" if result.maximum is None else f"{result.maximum:g}"
    return f"{name} {lo}–{hi} (incomplete)"
