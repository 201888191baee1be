"""The digital twin of one patient: current values with their history, scores with their
trajectories, live alerts and recent events — updated one reading at a time."""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from medagent.monitor.alerts import Alert
from medagent.monitor.config import MonitorConfig
from medagent.monitor.forecast import Forecast
from medagent.monitor.readings import Reading
from medagent.monitor.scoring import Scorer, score_inputs
from medagent.scales import Result

HISTORY = 200  # values kept per signal
EVENTS = 200  # timeline events kept per patient
TREND_WINDOW = timedelta(hours=1)


@dataclass(slots=True)
class SignalState:
    """A signal's latest value and its recent history (times ascending)."""

    value: float | str
    unit: str | None
    effective: datetime
    source: str
    message_id: str
    original: str | None
    times: list[datetime] = field(default_factory=list)
    values: list[float | str] = field(default_factory=list)
    new_points: int = 0
    forecast: Forecast | None = None

    def add(self, reading: Reading) -> bool:
        """Add a reading to the history; True when it is the newest (and so the current value)."""
        newest = not self.times or reading.effective >= self.times[-1]
        if newest:
            self.times.append(reading.effective)
            self.values.append(reading.value)
        else:
            i = bisect.bisect_right(self.times, reading.effective)
            self.times.insert(i, reading.effective)
            self.values.insert(i, reading.value)
        if len(self.times) > HISTORY:
            del self.times[0], self.values[0]
        self.new_points += 1
        if newest:
            self.value, self.unit, self.effective = reading.value, reading.unit, reading.effective
            self.source, self.message_id, self.original = (
                reading.source,
                reading.message_id,
                reading.original,
            )
        return newest


@dataclass(slots=True)
class ScoreState:
    """A score's current result and its trajectory (change points: time, value, min, max)."""

    result: Result
    time: datetime
    trajectory: deque[tuple[datetime, float | None, float | None, float | None]]
    escalation: str | None = None  # the rule met now, if any

    def trend(self) -> str:
        """``up``, ``down`` or ``flat``: the current level against the level an hour earlier."""

        def level(point: tuple[datetime, float | None, float | None, float | None]) -> float:
            return point[1] if point[1] is not None else (point[2] or 0.0)

        if len(self.trajectory) < 2:
            return "flat"
        now = level(self.trajectory[-1])
        before = self.trajectory[0]
        for point in self.trajectory:
            if point[0] > self.time - TREND_WINDOW:
                break
            before = point
        if before is self.trajectory[-1]:
            before = self.trajectory[-2]
        then = level(before)
        return "up" if now > then else "down" if now < then else "flat"


@dataclass(slots=True)
class PatientTwin:
    """Everything the monitor knows about one patient now."""

    patient_id: str
    ward: str | None = None
    bed: str | None = None
    demographics: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)
    allergies: list[dict[str, Any]] = field(default_factory=list)
    encounters: list[dict[str, Any]] = field(default_factory=list)  # recent, from the record
    hypercapnic: bool = False
    signals: dict[str, SignalState] = field(default_factory=dict)
    scores: dict[str, ScoreState] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)  # live alerts by rule
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EVENTS))
    labs_seen: bool = False
    active_forecasts: set[str] = field(default_factory=set)
    updated: datetime | None = None
    version: int = 0

    def current_values(self, config: MonitorConfig, at: datetime) -> dict[str, object]:
        """Latest value of each signal still fresh at ``at`` (stale values count as missing)."""
        out: dict[str, object] = {}
        for sid, state in self.signals.items():
            if at - state.effective <= config.signal(sid).max_age:
                out[sid] = state.value
        return out

    def apply(self, reading: Reading, scorer: Scorer) -> list[str]:
        """Take one reading; recompute the scores it affects. Returns the scales recomputed."""
        state = self.signals.get(reading.signal)
        if state is None:
            state = self.signals[reading.signal] = SignalState(
                reading.value, reading.unit, reading.effective, reading.source,
                reading.message_id, reading.original,
            )  # fmt: skip
        newest = state.add(reading)
        self.version += 1
        if reading.signal in scorer.lab_signals:
            self.labs_seen = True
        if not newest:
            return []  # a late value goes into the history; the current values are unchanged
        if self.updated is None or reading.effective > self.updated:
            self.updated = reading.effective
        at = self.updated
        values = self.current_values(scorer.config, at)
        done: list[str] = []
        for scale_id in scorer.affected({reading.signal}):
            spec = scorer.specs[scale_id]
            if spec.only_when_labs and not self.labs_seen:
                continue
            result = scorer.evaluate(
                scale_id, score_inputs(spec, values, hypercapnic=self.hypercapnic)
            )
            self._record_score(scale_id, result, at, scorer)
            done.append(scale_id)
        return done

    def _record_score(self, scale_id: str, result: Result, at: datetime, scorer: Scorer) -> None:
        point = (at, result.value if isinstance(result.value, float | int) else None,
                 result.minimum, result.maximum)  # fmt: skip
        state = self.scores.get(scale_id)
        if state is None:
            state = self.scores[scale_id] = ScoreState(
                result, at, deque(maxlen=scorer.config.alerts.history)
            )
            state.trajectory.append(point)
            return
        state.result, state.time = result, at
        if point[1:] != state.trajectory[-1][1:]:
            state.trajectory.append(point)

    def event(self, time: datetime, *, kind: str, text: str, **extra: Any) -> None:
        """Add an event to the timeline."""
        self.events.append({"time": time.isoformat(), "kind": kind, "text": text, **extra})

    def snapshot(self) -> dict[str, Any]:
        """A comparable, JSON-ready image of the twin's state (no wall-clock ages)."""
        return {
            "patient_id": self.patient_id,
            "ward": self.ward,
            "hypercapnic": self.hypercapnic,
            "signals": {
                sid: {
                    "value": s.value,
                    "unit": s.unit,
                    "effective": s.effective.isoformat(),
                    "source": s.source,
                    "history": [[t.isoformat(), v] for t, v in zip(s.times, s.values, strict=True)],
                }
                for sid, s in sorted(self.signals.items())
            },
            "scores": {
                sid: {
                    "value": s.result.value,
                    "complete": s.result.complete,
                    "minimum": s.result.minimum,
                    "maximum": s.result.maximum,
                    "escalation": s.escalation,
                    "trajectory": [[p[0].isoformat(), *p[1:]] for p in s.trajectory],
                }
                for sid, s in sorted(self.scores.items())
            },
            "alerts": {rule: a.to_dict() for rule, a in sorted(self.alerts.items())},
            "updated": self.updated.isoformat() if self.updated else None,
        }
