"""The monitor: accepts readings (stored first, then acknowledged), keeps each patient's twin
current, recomputes early-warning scores and raises, escalates and resolves alerts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from medagent.monitor import db
from medagent.monitor.alerts import Alert, EventHub, truncate
from medagent.monitor.config import SEVERITY_RANK, MonitorConfig, default_config
from medagent.monitor.errors import IngestError, UnknownAlertError
from medagent.monitor.forecast import crossing, forecast
from medagent.monitor.readings import Parsed, Reading, make_reading, parse_fhir
from medagent.monitor.scoring import Scorer, scale_link, short_value
from medagent.monitor.twin import PatientTwin
from medagent.record.store import RecordStore
from medagent.secure.at_rest import KeyProvider

Clock = Callable[[], datetime]
_CHUNK = 500


def utcnow() -> datetime:
    """Wall-clock time as naive UTC (the monitor's clock)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class IngestResult:
    """What one ingest call did."""

    accepted: int = 0
    duplicates: int = 0
    ignored: tuple[str, ...] = ()
    scored: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": list(self.ignored),
            "scored": self.scored,
            "alerts": self.alerts,
        }


@dataclass(frozen=True, slots=True)
class _Draft:
    rule: str
    kind: str
    severity: str
    level: int
    summary: str
    detail: str
    source_label: str
    source_url: str | None
    scale_id: str | None
    scale_version: str | None


class Monitor:
    """Live monitoring over a record store's database (the monitor's tables live beside it)."""

    def __init__(
        self,
        store: RecordStore,
        *,
        config: MonitorConfig | None = None,
        clock: Clock = utcnow,
        hub: EventHub | None = None,
        worker: str | None = None,
        seed_from_record: bool = True,
    ) -> None:
        self.store = store
        self.engine: Engine = db.writer_engine(store.engine)
        db.migrate(self.engine)
        self.config = config or default_config()
        self.scorer = Scorer(self.config)
        self.clock = clock
        self.hub = hub or EventHub()
        self.worker = worker
        self.seed_from_record = seed_from_record
        self.twins: dict[str, PatientTwin] = {}
        self._last_seq: dict[str, int] = {}
        self.lock = threading.RLock()
        self._all_loinc = sorted(self.config.by_loinc)
        self._rule_index = {r.id: i for i, r in enumerate(self.config.escalation)}

    @classmethod
    def open(cls, url: str | None = None, **kwargs: Any) -> Monitor:
        """A monitor on the database at ``url`` (default: the record store's default).

        Its reads of the record are audited (`$MEDAGENT_AUDIT`, else the user data directory)
        as the monitor run by this operating-system user: they build each patient's context for
        the early-warning scores, on behalf of no particular person.
        """
        from medagent.record.audited import AuditedRecordStore, process_context
        from medagent.record.db import default_url
        from medagent.secure.audit import default_audit_path

        store = AuditedRecordStore.open(
            url or default_url(),
            audit=default_audit_path(),
            default=process_context("vital-sign monitoring", program="monitor"),
        )
        return cls(store, **kwargs)

    # ------------------------------------------------------------------ twins

    def twin(self, patient_id: str) -> PatientTwin:
        """The patient's twin (built from the stores on first use)."""
        with self.lock:
            twin = self.twins.get(patient_id)
            if twin is None:
                twin = self.twins[patient_id] = self._load_twin(patient_id)
            return twin

    def _load_twin(self, patient_id: str) -> PatientTwin:
        twin = PatientTwin(patient_id)
        self._load_context(twin)
        if self.seed_from_record:
            for reading in self._record_readings(patient_id):
                twin.apply(reading, self.scorer)
        with self.engine.connect() as conn:
            place = conn.execute(
                sa.select(db.placements).where(db.placements.c.patient_id == patient_id)
            ).first()
            if place is not None:
                twin.ward, twin.bed = place.ward, place.bed
            rows = conn.execute(
                sa.select(db.observations)
                .where(db.observations.c.patient_id == patient_id)
                .order_by(db.observations.c.seq)
            ).all()
            alerts = conn.execute(
                sa.select(db.alerts).where(
                    db.alerts.c.patient_id == patient_id, db.alerts.c.open_key.is_not(None)
                )
            ).all()
        for row in rows:
            self._apply_quiet(twin, self._row_reading(row))
            self._last_seq[patient_id] = row.seq
        for arow in alerts:
            alert = Alert.from_row(db.read_alert(arow, self._read_keys))
            twin.alerts[alert.rule] = alert
        return twin

    # ------------------------------------------------------------------ encryption at rest

    @property
    def _write_keys(self) -> KeyProvider | None:
        """The keyring new rows are encrypted under (None: the store writes in clear)."""
        return self.store.keys if self.store.encrypt else None

    def _read_keys(self) -> KeyProvider:
        """The keyring encrypted rows are read with (loaded on first use)."""
        return self.store.keys

    def _row_reading(self, row: Any) -> Reading:
        """A stored reading, decrypted."""
        plain = db.read_observation(row, self._read_keys)
        return Reading(
            row.message_id, row.patient_id, row.signal, row.loinc, plain["value"], plain["unit"],
            row.effective, row.source, plain["original"],
        )  # fmt: skip

    def _apply_quiet(self, twin: PatientTwin, reading: Reading) -> None:
        for scale_id in twin.apply(reading, self.scorer):
            esc = self.scorer.escalation(twin.scores[scale_id].result)
            twin.scores[scale_id].escalation = esc.rule.id if esc else None

    def _load_context(self, twin: PatientTwin) -> None:
        """Demographics, active problems, medications and allergies from the record store."""
        from medagent.record.errors import ResourceNotFoundError

        pid = twin.patient_id
        try:
            p = self.store.patient(pid)
        except (ResourceNotFoundError, KeyError):
            return
        twin.demographics = {
            "id": p.id,
            "name": p.name,
            "gender": p.gender,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "deceased": str(p.deceased) if p.deceased not in (None, False) else None,
        }
        now = self.clock()
        conditions = self.store.conditions(pid, active_at=now, system="snomed") + [
            c for c in self.store.conditions(pid, active_at=now, system="icd10")
        ]
        seen: set[str] = set()
        for c in conditions:
            if c.resource_id in seen:
                continue
            seen.add(c.resource_id)
            twin.problems.append(
                {
                    "id": c.resource_id,
                    "text": c.text or (c.codes[0].display if c.codes else None),
                    "codes": [f"{x.system}|{x.code}" for x in c.codes],
                    "onset": c.onset.isoformat() if c.onset else None,
                }
            )
        for rule in self.config.hypercapnic_conditions:
            if self.store.conditions(
                pid, prefixes=rule.prefixes, system=rule.system, active_at=now
            ):
                twin.hypercapnic = True
        for m in self.store.medications(pid, statuses=["active"]):
            twin.medications.append(
                {
                    "id": f"{m.resource_type}/{m.resource_id}",
                    "text": m.text,
                    "codes": [f"{x.system}|{x.code}" for x in m.codes],
                    "start": m.start.isoformat() if m.start else None,
                }
            )
        total = self.store.counts(pid).get("Encounter", 0)
        encounters, _ = self.store.search(
            "Encounter", patient=pid, count=10, offset=max(0, total - 10)
        )
        for enc in encounters:
            kind = ((enc.get("type") or [{}])[0]).get("text") or (enc.get("class") or {}).get(
                "code"
            )
            twin.encounters.append(
                {
                    "time": (enc.get("period") or {}).get("start"),
                    "kind": "encounter",
                    "text": kind,
                    "id": enc.get("id"),
                }
            )
        resources, _ = self.store.search("AllergyIntolerance", patient=pid, count=100)
        for a in resources:
            code = a.get("code") or {}
            text = code.get("text") or next(
                (c.get("display") for c in code.get("coding") or () if c.get("display")), None
            )
            twin.allergies.append(
                {
                    "id": a.get("id"),
                    "text": text,
                    "criticality": a.get("criticality"),
                    "status": ((a.get("clinicalStatus") or {}).get("coding") or [{}])[0].get(
                        "code"
                    ),
                }
            )

    def _record_readings(self, patient_id: str) -> list[Reading]:
        out: list[Reading] = []
        for ov in self.store.observations(patient_id, codes=self._all_loinc):
            if ov.effective is None or ov.value is None:
                continue
            try:
                reading = make_reading(
                    self.config,
                    message_id=f"record/{ov.resource_id}#{ov.code.code}",
                    patient_id=patient_id,
                    loinc=ov.code.code,
                    value=ov.value,
                    unit=ov.unit_code or ov.unit,
                    effective=ov.effective,
                    source="record",
                )
            except IngestError:
                continue  # a record value the monitor cannot read is left out, not guessed
            if reading is not None:
                out.append(reading)
        return out

    def rebuild(self) -> None:
        """Forget every twin and rebuild each from the stores (after a restart)."""
        with self.lock:
            self.twins.clear()
            self._last_seq.clear()
            with self.engine.connect() as conn:
                query = sa.select(db.observations.c.patient_id).distinct()
                pids: list[str] = list(conn.execute(query).scalars())
                pids += conn.execute(sa.select(db.placements.c.patient_id)).scalars()
            for pid in dict.fromkeys(pids):
                self.twins[pid] = self._load_twin(pid)

    # ------------------------------------------------------------------ ingest

    def ingest_fhir(self, payload: Any, *, source: str = "fhir") -> IngestResult:
        """Accept a FHIR Observation or Bundle; a malformed one is dead-lettered and refused."""
        try:
            parsed = parse_fhir(self.config, payload, source=source)
        except IngestError as exc:
            self.dead_letter(source, exc.reason, json.dumps(payload, default=str))
            raise
        return self.ingest(parsed.readings, ignored=parsed.ignored)

    def handle_hl7(self, text: str, *, source: str = "hl7") -> str:
        """Accept one HL7 v2 ORU^R01 message and return the ACK (AA), or the NACK (AE/AR with the
        reason) after keeping the message in the dead-letter table."""
        from medagent.monitor.hl7v2 import ack, parse_message, parse_oru

        message = None
        try:
            message = parse_message(text)
            parsed: Parsed = parse_oru(self.config, message, source=source)
            placement = (parsed.ward, parsed.bed) if parsed.ward else None
            self.ingest(parsed.readings, ignored=parsed.ignored, placement=placement)
        except IngestError as exc:
            self.dead_letter(source, exc.reason, text)
            return ack(message, "AR" if exc.reject else "AE", reason=exc.reason)
        except Exception as exc:  # storage failed: nothing was accepted, the sender must retry
            return ack(message, "AE", reason=f"not stored: {type(exc).__name__}: {exc}")
        return ack(message, "AA")

    def dead_letter(self, source: str, reason: str, payload: str) -> None:
        """Keep a refused message with the reason (encrypted like the record it sits beside)."""
        with self.engine.begin() as conn:
            db.insert_dead_letter(
                conn,
                received=self.clock(),
                source=source,
                reason=reason,
                payload=payload,
                keys=self.store.keys if self.store.encrypt else None,
            )

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent refused messages."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(db.dead_letters).order_by(db.dead_letters.c.id.desc()).limit(limit)
            ).all()
        return [
            {**db.read_dead_letter(row, self._read_keys), "received": row.received.isoformat()}
            for row in rows
        ]

    def set_placement(self, patient_id: str, *, ward: str | None, bed: str | None = None) -> None:
        """Put a patient on a ward (and bed)."""
        with self.lock, self.engine.begin() as conn:
            self._upsert_placement(conn, patient_id, ward=ward, bed=bed)
        twin = self.twin(patient_id)
        twin.ward, twin.bed = ward, bed
        self.hub.publish({"type": "patient", "ward": ward, "row": self.dashboard_row(twin)})

    def _upsert_placement(
        self, conn: Connection, patient_id: str, *, ward: str | None, bed: str | None
    ) -> None:
        table = db.placements
        updated = conn.execute(
            sa.update(table)
            .where(table.c.patient_id == patient_id)
            .values(ward=ward, bed=bed, updated=self.clock())
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(table).values(
                    patient_id=patient_id, ward=ward, bed=bed, updated=self.clock()
                )
            )

    def ingest(
        self,
        readings: Sequence[Reading],
        *,
        ignored: Iterable[str] = (),
        placement: tuple[str | None, str | None] | None = None,
        received: datetime | Mapping[str, datetime] | None = None,
    ) -> IngestResult:
        """Store new readings durably, then update twins, scores and alerts in the same
        transaction; readings whose message id was already accepted are skipped (idempotent)."""
        result = IngestResult(ignored=tuple(ignored))
        events: list[dict[str, Any]] = []
        with self.lock:
            for pid in dict.fromkeys(r.patient_id for r in readings):
                self.twin(pid)
            if self.worker is not None:
                self._catch_up({r.patient_id for r in readings})
            now = self.clock()
            touched: set[str] = set()
            try:
                with self.engine.begin() as conn:
                    fresh = self._new_readings(conn, readings)
                    result.duplicates = len(readings) - len(fresh)
                    if fresh:
                        conn.execute(
                            sa.insert(db.observations),
                            [self._row(r, _received(received, r, now)) for r in fresh],
                        )
                    if placement is not None and readings:
                        pid = readings[0].patient_id
                        self._upsert_placement(conn, pid, ward=placement[0], bed=placement[1])
                        self.twins[pid].ward, self.twins[pid].bed = placement
                    for r in fresh:
                        twin = self.twins[r.patient_id]
                        touched.add(r.patient_id)
                        for scale_id in twin.apply(r, self.scorer):
                            result.scored += 1
                            events += self._score_alert(conn, twin, scale_id, now, r.message_id)
            except BaseException:
                for pid in {r.patient_id for r in readings}:
                    self.twins.pop(pid, None)  # rebuilt from the store on next use
                raise
            result.accepted = len(fresh)
            result.alerts = [e["alert"] for e in events]
        if self.hub.active:
            for e in events:
                self.hub.publish(e)
            for pid in touched:
                twin = self.twins[pid]
                self.hub.publish(
                    {"type": "patient", "ward": twin.ward, "row": self.dashboard_row(twin)}
                )
        return result

    def _row(self, r: Reading, received: datetime) -> dict[str, Any]:
        plain = {
            "message_id": r.message_id,
            "patient_id": r.patient_id,
            "signal": r.signal,
            "loinc": r.loinc,
            "value_num": r.value if isinstance(r.value, float) else None,
            "value_code": r.value if isinstance(r.value, str) else None,
            "unit": r.unit,
            "original": r.original,
            "effective": r.effective,
            "received": received,
            "source": r.source,
            "worker": self.worker,
        }
        return db.observation_values(plain, self._write_keys)

    @staticmethod
    def _new_readings(conn: Connection, readings: Sequence[Reading]) -> list[Reading]:
        ids = [r.message_id for r in readings]
        existing: set[str] = set()
        col = db.observations.c.message_id
        for i in range(0, len(ids), _CHUNK):
            existing.update(
                conn.execute(sa.select(col).where(col.in_(ids[i : i + _CHUNK]))).scalars()
            )
        fresh: list[Reading] = []
        for r in readings:
            if r.message_id not in existing:
                existing.add(r.message_id)
                fresh.append(r)
        return fresh

    def _catch_up(self, patient_ids: set[str]) -> None:
        """Apply readings other workers stored for these patients since this twin last looked."""
        if not patient_ids:
            return
        obs = db.observations
        floor = min(self._last_seq.get(pid, 0) for pid in patient_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(obs)
                .where(obs.c.patient_id.in_(sorted(patient_ids)), obs.c.seq > floor)
                .order_by(obs.c.seq)
            ).all()
        for row in rows:
            if row.seq <= self._last_seq.get(row.patient_id, 0):
                continue
            if row.worker != self.worker:
                self._apply_quiet(self.twins[row.patient_id], self._row_reading(row))
            self._last_seq[row.patient_id] = row.seq

    # ------------------------------------------------------------------ alerts

    def _score_alert(
        self, conn: Connection, twin: PatientTwin, scale_id: str, now: datetime, message_id: str
    ) -> list[dict[str, Any]]:
        state = twin.scores[scale_id]
        esc = self.scorer.escalation(state.result)
        previous = state.escalation
        state.escalation = esc.rule.id if esc else None
        if esc is None:
            return self._transition(conn, twin, scale_id, None, now=now, message_id=message_id)
        result = esc.result
        if previous != state.escalation:
            twin.event(state.time, kind="score", text=f"{short_value(result)}: {esc.rule.response}")
        draft = _Draft(
            rule=scale_id,
            kind="score",
            severity=esc.rule.severity,
            level=SEVERITY_RANK[esc.rule.severity] * 100 + self._rule_index[esc.rule.id],
            summary=truncate(f"{short_value(result)} — {esc.rule.response}"),
            detail=result.explanation,
            source_label=f"{self.config.alerts.source_label} · {result.scale.title} "
            f"v{result.scale_version}",
            source_url=scale_link(scale_id),
            scale_id=scale_id,
            scale_version=result.scale_version,
        )
        return self._transition(conn, twin, scale_id, draft, now=now, message_id=message_id)

    def _transition(
        self,
        conn: Connection,
        twin: PatientTwin,
        rule: str,
        draft: _Draft | None,
        *,
        now: datetime,
        message_id: str | None,
    ) -> list[dict[str, Any]]:
        table = db.alerts
        alert = twin.alerts.get(rule)
        if draft is None:
            if alert is not None and alert.status == "acknowledged":
                alert.status, alert.resolved_at = "resolved", now
                self._update_alert(conn, alert, text=False)
                del twin.alerts[rule]
                return [self._event(twin, alert, "resolved", now)]
            return []
        if alert is None:
            alert = Alert(
                id=0, patient_id=twin.patient_id, rule=rule, kind=draft.kind,
                severity=draft.severity, level=draft.level, summary=draft.summary,
                detail=draft.detail,
                source_label=draft.source_label, source_url=draft.source_url,
                scale_id=draft.scale_id, scale_version=draft.scale_version,
                message_id=message_id, status="open", count=1, opened_at=self.clock(),
                last_seen=now,
            )  # fmt: skip
            row = alert.row()
            del row["id"]
            try:
                with conn.begin_nested():
                    alert.id = db.insert_alert(conn, row, self._write_keys)
            except IntegrityError:
                # Another worker opened it first: continue that alert instead of a second one.
                existing = conn.execute(
                    sa.select(table).where(table.c.open_key == alert.open_key)
                ).first()
                if existing is None:
                    raise
                twin.alerts[rule] = Alert.from_row(db.read_alert(existing, self._read_keys))
                return self._transition(conn, twin, rule, draft, now=now, message_id=message_id)
            twin.alerts[rule] = alert
            return [self._event(twin, alert, "opened", now)]
        alert.count += 1
        alert.last_seen = now
        kind = None
        if draft.level > alert.level:
            alert.severity, alert.level = draft.severity, draft.level
            alert.summary, alert.detail = draft.summary, draft.detail
            alert.source_label, alert.source_url = draft.source_label, draft.source_url
            alert.scale_version, alert.message_id = draft.scale_version, message_id
            alert.status, alert.acknowledged_by, alert.acknowledged_at = "open", None, None
            alert.escalated_at = None
            kind = "worsened"
        # Summary and detail are (re-)encrypted only when they change.
        self._update_alert(conn, alert, text=kind is not None)
        return [self._event(twin, alert, kind, now)] if kind else []

    def _update_alert(self, conn: Connection, alert: Alert, *, text: bool) -> None:
        """Write an alert's row; ``text=False`` leaves its stored summary and detail as they are."""
        values = db.alert_values(alert.row(), self._write_keys, text=text)
        conn.execute(sa.update(db.alerts).where(db.alerts.c.id == alert.id).values(values))

    def _event(self, twin: PatientTwin, alert: Alert, what: str, now: datetime) -> dict[str, Any]:
        twin.event(now, kind="alert", text=f"{what}: {alert.summary}", alert_id=alert.id)
        return {"type": "alert", "event": what, "ward": twin.ward, "alert": alert.to_dict()}

    def acknowledge(self, alert_id: int, *, user: str) -> Alert:
        """A user acknowledges an alert; if its condition has passed it is resolved at once."""
        with self.lock:
            twin, alert = self._find_alert(alert_id)
            now = self.clock()
            alert.status, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", user, now
            what = "acknowledged"
            if not self._still_met(twin, alert):
                alert.status, alert.resolved_at = "resolved", now
                twin.alerts.pop(alert.rule, None)
                what = "resolved"
            with self.engine.begin() as conn:
                self._update_alert(conn, alert, text=False)
            event = self._event(twin, alert, what, now)
        self.hub.publish(event)
        return alert

    def _still_met(self, twin: PatientTwin, alert: Alert) -> bool:
        if alert.kind == "score":
            state = twin.scores.get(alert.rule)
            return state is not None and state.escalation is not None
        return alert.rule in twin.active_forecasts

    def _find_alert(self, alert_id: int) -> tuple[PatientTwin, Alert]:
        for twin in self.twins.values():
            for alert in twin.alerts.values():
                if alert.id == alert_id:
                    return twin, alert
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.alerts).where(db.alerts.c.id == alert_id)).first()
        if row is None or row.open_key is None:
            raise UnknownAlertError(f"no live alert {alert_id}")
        twin = self.twin(row.patient_id)
        found = twin.alerts.get(row.rule)
        if found is None or found.id != alert_id:
            raise UnknownAlertError(f"no live alert {alert_id}")
        return twin, found

    def escalate_due(self, now: datetime | None = None) -> list[Alert]:
        """Escalate open alerts nobody acknowledged within the declared time for their severity."""
        now = now or self.clock()
        done: list[tuple[PatientTwin, Alert]] = []
        with self.lock:
            for twin in self.twins.values():
                for alert in twin.alerts.values():
                    limit = self.config.alerts.escalate_after[alert.severity]  # type: ignore[index]
                    if (
                        alert.status == "open"
                        and alert.escalated_at is None
                        and now - alert.opened_at >= limit
                    ):
                        alert.escalated_at = now
                        done.append((twin, alert))
            if done:
                with self.engine.begin() as conn:
                    for _, alert in done:
                        conn.execute(
                            sa.update(db.alerts)
                            .where(db.alerts.c.id == alert.id)
                            .values(escalated_at=now)
                        )
            events = [self._event(twin, alert, "escalated", now) for twin, alert in done]
        for e in events:
            self.hub.publish(e)
        return [a for _, a in done]

    def alerts(self, *, patient_id: str | None = None, ward: str | None = None) -> list[Alert]:
        """Live alerts (of a patient, or of a ward), most severe first."""
        with self.lock:
            twins = [self.twin(patient_id)] if patient_id else list(self.twins.values())
            out = [a for t in twins if ward is None or t.ward == ward for a in t.alerts.values()]
        return sorted(out, key=lambda a: (-SEVERITY_RANK[a.severity], a.opened_at))

    # ------------------------------------------------------------------ forecasts

    def run_forecasts(self, *, force: bool = False) -> list[dict[str, Any]]:
        """Refit forecasts of vital signs with enough new points and raise or resolve the
        threshold alerts they project. Returns the alert events."""
        cfg = self.config.forecast
        thresholds: dict[str, list[Any]] = {}
        for t in cfg.thresholds:
            thresholds.setdefault(t.signal, []).append(t)
        events: list[dict[str, Any]] = []
        with self.lock:
            work = []
            for twin in self.twins.values():
                for sid, state in twin.signals.items():
                    if self.config.signal(sid).kind != "vital":
                        continue
                    if force or state.forecast is None or state.new_points >= cfg.every:
                        work.append((twin, sid, state))
            now = self.clock()
            with self.engine.begin() as conn:
                for twin, sid, state in work:
                    numeric = [
                        (t, float(v))
                        for t, v in zip(state.times, state.values, strict=True)
                        if isinstance(v, float)
                    ][-cfg.history :]
                    state.new_points = 0
                    state.forecast = forecast(
                        sid, times=[t for t, _ in numeric], values=[v for _, v in numeric],
                        horizon=cfg.horizon, level=cfg.level, min_points=cfg.min_points,
                    )  # fmt: skip
                    if state.forecast is None:
                        continue
                    hit = None
                    for th in thresholds.get(sid, ()):
                        hit = crossing(state.forecast, th)
                        if hit:
                            break
                    rule = f"forecast:{sid}"
                    if hit is None:
                        twin.active_forecasts.discard(rule)
                        events += self._transition(conn, twin, rule, None, now=now, message_id=None)
                        continue
                    twin.active_forecasts.add(rule)
                    signal = self.config.signal(sid)
                    fc = state.forecast
                    draft = _Draft(
                        rule=rule, kind="forecast", severity="urgent", level=100,
                        summary=truncate(hit.describe(signal.label, signal.unit)),
                        detail=(
                            f"{fc.model} fitted on the last {len(numeric)} values of "
                            f"{signal.label} (step {fc.step.total_seconds() / 60:g} min); "
                            f"forecast {hit.value:.1f} at {hit.time:%Y-%m-%d %H:%M}, "
                            f"{fc.level:.0%} band "
                            + ", ".join(f"{p.lower:.0f}–{p.upper:.0f}" for p in fc.points[:4])
                        ),
                        source_label=f"{self.config.alerts.source_label} · forecast",
                        source_url=None, scale_id=None, scale_version=None,
                    )  # fmt: skip
                    events += self._transition(
                        conn, twin, rule, draft, now=now, message_id=state.message_id
                    )
        for e in events:
            self.hub.publish(e)
        return events

    # ------------------------------------------------------------------ views

    def snapshot(self, patient_id: str) -> Any:
        """The patient's latest fresh values (for batch scoring)."""
        from medagent.monitor.batch import Snapshot

        twin = self.twin(patient_id)
        at = twin.updated
        values = twin.current_values(self.config, at) if at is not None else {}
        return Snapshot(patient_id, values, twin.hypercapnic)

    def dashboard_row(self, twin: PatientTwin) -> dict[str, Any]:
        """One patient's line on the ward dashboard."""
        news2 = twin.scores.get("news2")
        worst = max((SEVERITY_RANK[a.severity] for a in twin.alerts.values()), default=-1)
        return {
            "patient_id": twin.patient_id,
            "name": (twin.demographics or {}).get("name"),
            "bed": twin.bed,
            "news2": short_value(news2.result) if news2 else None,
            "news2_value": news2.result.value if news2 else None,
            "news2_min": news2.result.minimum if news2 else None,
            "band": news2.result.band.label if news2 and news2.result.band else None,
            "trend": news2.trend() if news2 else "flat",
            "alerts": len(twin.alerts),
            "worst": {-1: None, 0: "info", 1: "urgent", 2: "emergency"}[worst],
            "updated": twin.updated.isoformat() if twin.updated else None,
        }

    def ward(self, ward: str) -> list[dict[str, Any]]:
        """Every patient on a ward, most worrying first."""
        with self.lock:
            rows = [self.dashboard_row(t) for t in self.twins.values() if t.ward == ward]
        return sorted(rows, key=lambda r: (-(r["news2_min"] or 0), r["patient_id"]))

    def wards(self) -> list[str]:
        """Wards with patients."""
        with self.lock:
            return sorted({t.ward for t in self.twins.values() if t.ward})


def _received(
    received: datetime | Mapping[str, datetime] | None, reading: Reading, now: datetime
) -> datetime:
    if received is None:
        return now
    if isinstance(received, datetime):
        return received
    return received.get(reading.message_id, now)
