"""The patient profile: the whole picture of one patient in one call, from the twin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medagent.monitor.alerts import card
from medagent.monitor.core import Monitor
from medagent.monitor.scoring import short_value
from medagent.monitor.twin import PatientTwin, SignalState

_TREND_POINTS = 24  # values shown per signal


def _signal(monitor: Monitor, sid: str, state: SignalState, now: datetime) -> dict[str, Any]:
    signal = monitor.config.signal(sid)
    numeric = [v for v in state.values[-_TREND_POINTS:] if isinstance(v, float)]
    direction = "flat"
    if len(numeric) >= 2:
        direction = (
            "up" if numeric[-1] > numeric[-2] else "down" if numeric[-1] < numeric[-2] else "flat"
        )
    return {
        "signal": sid,
        "label": signal.label,
        "kind": signal.kind,
        "value": state.value,
        "unit": state.unit,
        "effective": state.effective.isoformat(),
        "age_seconds": (now - state.effective).total_seconds(),
        "source": state.source,
        "original": state.original,
        "trend": direction,
        "history": [
            [t.isoformat(), v]
            for t, v in zip(
                state.times[-_TREND_POINTS:], state.values[-_TREND_POINTS:], strict=True
            )
        ],
        "forecast": state.forecast.to_dict() if state.forecast else None,
    }


def _timeline(monitor: Monitor, twin: PatientTwin, limit: int) -> list[dict[str, Any]]:
    events = list(twin.events)
    events += twin.encounters
    events.sort(key=lambda e: str(e.get("time") or ""), reverse=True)
    return events[:limit]


def patient_profile(monitor: Monitor, patient_id: str, *, timeline: int = 30) -> dict[str, Any]:
    """Demographics, problems, medications, allergies, latest vitals and labs with trends and
    forecasts, current scores with trajectories, live alerts (with their CDS cards) and a
    timeline of recent events."""
    now = monitor.clock()
    with monitor.lock:
        twin = monitor.twin(patient_id)
        vitals = {
            sid: _signal(monitor, sid, s, now)
            for sid, s in twin.signals.items()
            if monitor.config.signal(sid).kind != "lab"
        }
        labs = {
            sid: _signal(monitor, sid, s, now)
            for sid, s in twin.signals.items()
            if monitor.config.signal(sid).kind == "lab"
        }
        scores = {
            sid: {
                "scale": sid,
                "version": s.result.scale_version,
                "display": short_value(s.result),
                "value": s.result.value,
                "complete": s.result.complete,
                "minimum": s.result.minimum,
                "maximum": s.result.maximum,
                "band": s.result.band.label if s.result.band else None,
                "missing": [m.id for m in s.result.missing],
                "escalation": s.escalation,
                "trend": s.trend(),
                "time": s.time.isoformat(),
                "trajectory": [[p[0].isoformat(), *p[1:]] for p in s.trajectory][-50:],
            }
            for sid, s in twin.scores.items()
        }
        alerts = [
            {**a.to_dict(), "card": card(a)}
            for a in sorted(twin.alerts.values(), key=lambda a: a.opened_at)
        ]
        out = {
            "patient_id": patient_id,
            "as_of": now.isoformat(),
            "demographics": twin.demographics,
            "ward": twin.ward,
            "bed": twin.bed,
            "problems": twin.problems,
            "medications": twin.medications,
            "allergies": twin.allergies,
            "spo2_scale": "scale_2" if twin.hypercapnic else "scale_1",
            "vitals": vitals,
            "labs": labs,
            "scores": scores,
            "alerts": alerts,
        }
    out["timeline"] = _timeline(monitor, twin, timeline)
    return out


def patient_cards(
    monitor: Monitor, patient_id: str, *, link: str | None = None
) -> list[dict[str, Any]]:
    """The patient's live alerts as CDS Hooks cards, most severe first (for `patient-view`)."""
    return [card(a, link=link) for a in monitor.alerts(patient_id=patient_id)]
