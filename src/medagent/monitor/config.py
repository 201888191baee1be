"""The monitor's declared rules (signals, scores, escalation, forecasts) as frozen data."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from medagent.monitor.errors import MonitorConfigError

Severity = Literal["info", "urgent", "emergency"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "urgent": 1, "emergency": 2}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Signal(_Frozen):
    """One monitored vital sign or lab: its codes, the unit values are kept in, freshness."""

    id: str
    label: str
    kind: Literal["vital", "lab", "coded"]
    loinc: tuple[str, ...]
    max_age: timedelta
    unit: str | None = None
    analyte: str | None = None
    answers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _unit_or_answers(self) -> Signal:
        if self.kind == "coded" and not self.answers:
            raise ValueError(f"{self.id}: a coded signal needs answers")
        if self.kind != "coded" and not self.unit:
            raise ValueError(f"{self.id}: a {self.kind} signal needs a unit")
        return self


class ConditionList(_Frozen):
    """Condition codes (prefixes in one system) that make something true."""

    system: str
    prefixes: tuple[str, ...]
    label: str


class InputSource(_Frozen):
    """How a scale input is filled: a signal's latest fresh value, or a declared derivation."""

    signal: str | None = None
    derive: Literal["spo2_scale", "supplemental_oxygen", "altered_mentation", "avpu"] | None = None

    @model_validator(mode="after")
    def _one(self) -> InputSource:
        if (self.signal is None) == (self.derive is None):
            raise ValueError("give exactly one of signal, derive")
        return self


class ScoreSpec(_Frozen):
    """A scale the monitor keeps current, and where each of its inputs comes from."""

    scale: str
    inputs: dict[str, InputSource]
    only_when_labs: bool = False


class EscalationRule(_Frozen):
    """A rule on a score: the lowest possible total at or above ``min_total``, or any item
    scoring ``any_item`` points."""

    id: str
    scale: str
    severity: Severity
    response: str
    min_total: float | None = None
    any_item: float | None = None

    @model_validator(mode="after")
    def _one(self) -> EscalationRule:
        if (self.min_total is None) == (self.any_item is None):
            raise ValueError(f"{self.id}: give exactly one of min_total, any_item")
        return self


class Threshold(_Frozen):
    """A forecast threshold: alert when the forecast goes above/below it within ``within``."""

    signal: str
    within: timedelta
    above: float | None = None
    below: float | None = None


class ForecastConfig(_Frozen):
    """Short-horizon forecast settings."""

    horizon: timedelta
    min_points: int
    history: int
    every: int
    level: float
    thresholds: tuple[Threshold, ...]


class AlertConfig(_Frozen):
    """When an unacknowledged alert escalates, and how alerts are labelled."""

    escalate_after: dict[Severity, timedelta]
    source_label: str
    history: int


class MonitorConfig(_Frozen):
    """Everything the monitor is told to watch and how to react."""

    signals: tuple[Signal, ...]
    panels: tuple[str, ...]
    hypercapnic_conditions: tuple[ConditionList, ...]
    scores: tuple[ScoreSpec, ...]
    escalation: tuple[EscalationRule, ...]
    forecast: ForecastConfig
    alerts: AlertConfig

    @model_validator(mode="after")
    def _references(self) -> MonitorConfig:
        ids = {s.id for s in self.signals}
        if len(ids) != len(self.signals):
            raise ValueError("duplicate signal ids")
        codes = [c for s in self.signals for c in s.loinc]
        if len(codes) != len(set(codes)):
            raise ValueError("a LOINC code belongs to two signals")
        problems = [
            f"scores.{spec.scale}.{name}: unknown signal {src.signal}"
            for spec in self.scores
            for name, src in spec.inputs.items()
            if src.signal is not None and src.signal not in ids
        ]
        problems += [
            f"forecast.thresholds: unknown signal {t.signal}"
            for t in self.forecast.thresholds
            if t.signal not in ids
        ]
        scales = {s.scale for s in self.scores}
        problems += [
            f"escalation.{r.id}: scale {r.scale} is not monitored"
            for r in self.escalation
            if r.scale not in scales
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def signal(self, signal_id: str) -> Signal:
        """The signal with that id."""
        for s in self.signals:
            if s.id == signal_id:
                return s
        raise KeyError(signal_id)

    @property
    def by_loinc(self) -> dict[str, Signal]:
        """Signals by each of their LOINC codes."""
        return {code: s for s in self.signals for code in s.loinc}


def parse_config(text: str) -> MonitorConfig:
    """Parse and validate a monitor configuration (YAML), checking scales exist in the library."""
    from medagent.scales import get_scale

    try:
        config = MonitorConfig.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        raise MonitorConfigError(str(exc)) from exc
    for spec in config.scores:
        scale = get_scale(spec.scale)
        unknown = set(spec.inputs) - set(scale.input_ids)
        if unknown:
            raise MonitorConfigError(f"scores.{spec.scale}: unknown inputs {sorted(unknown)}")
    return config


@cache
def default_config() -> MonitorConfig:
    """The configuration shipped with medagent (``monitor.yaml``)."""
    text = (resources.files("medagent.monitor") / "monitor.yaml").read_text(encoding="utf-8")
    return parse_config(text)
