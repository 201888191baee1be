"""The patient record store: FHIR R4 resources in SQLite or PostgreSQL, with a query API.

Resource bodies are encrypted at rest (AES-256-GCM, one data key per row wrapped by a KEK, see
`medagent.secure.at_rest`); the columns queries filter on stay in clear (docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from medagent.errors import Problem
from medagent.record.db import codes_table, create_engine, default_url, migrate, resources_table
from medagent.record.errors import RecordImportError, ResourceNotFoundError
from medagent.record.extract import index_fields
from medagent.record.fhirtime import format_instant, parse_fhir_time, to_utc_naive
from medagent.record.importer import Batch, expand_paths, read_file
from medagent.record.models import (
    LOINC,
    Coding,
    ConditionRecord,
    ImportResult,
    MedicationRecord,
    Note,
    ObservationValue,
    PatientSummary,
    ProcedureRecord,
    systems_for,
)
from medagent.secure.at_rest import (
    KeyProvider,
    SealedColumns,
    default_key_provider,
    open_row_key,
    open_text,
)

R = resources_table.c
C = codes_table.c
_CHUNK = 500
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")
_ACTIVE_CLINICAL = ("active", "recurrence", "relapse")
_NOT_VERIFIED = ("entered-in-error", "refuted")

ProgressCallback = Callable[[int], None]

# The encrypted column of the record: the body, bound to table + type + id; `version_id` changes
# on every upsert, so encrypting a legacy row in place never overwrites a newer write.
RESOURCE_SEALING = SealedColumns(
    resources_table, keys=("resource_type", "id"), columns=("body",), version="version_id"
)
_READ = (R.resource_type, R.id, R.kek_id, R.wrapped_key, R.body)


@dataclass(slots=True)
class ImportReport:
    """What importing several files did: a result per imported file, the problems of the others."""

    imported: list[ImportResult] = field(default_factory=list)
    failed: list[RecordImportError] = field(default_factory=list)

    @property
    def resources(self) -> int:
        """Number of resources written."""
        return sum(r.resources for r in self.imported)


def _started_between(since: datetime | None, until: datetime | None) -> list[Any]:
    """Filters keeping resources that start within [since, until] (either end may be open)."""
    clauses: list[Any] = []
    if since is not None:
        clauses.append(R.time_start >= _utc(since))
    if until is not None:
        clauses.append(R.time_start <= _utc(until))
    return clauses


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc_naive(value)


def _codings(concept: object) -> tuple[Coding, ...]:
    if not isinstance(concept, dict):
        return ()
    return tuple(
        Coding(str(c.get("system") or ""), str(c["code"]), c.get("display"))
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and c.get("code")
    )


def _text(concept: object) -> str | None:
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return None


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class RecordStore:
    """FHIR resources of many patients, imported from files or servers and queried by code.

    ``keys`` is the keyring resource bodies are encrypted with (default:
    :func:`medagent.secure.at_rest.configured_keys` — ``$MEDAGENT_KEK``, ``$MEDAGENT_KEK_FILE``,
    else a keyring file created in the user config dir). ``encrypt=False`` writes plaintext
    bodies (encrypted rows are still read, with the keyring loaded when first needed).
    """

    def __init__(
        self, engine: Engine, *, keys: KeyProvider | None = None, encrypt: bool = True
    ) -> None:
        self.engine = engine
        self.encrypt = encrypt
        self._keys = keys if keys is not None or not encrypt else default_key_provider()

    @classmethod
    def open(
        cls, url: str | None = None, *, keys: KeyProvider | None = None, encrypt: bool = True
    ) -> RecordStore:
        """Open the store at a URL or SQLite path (default `default_url()`), migrating it."""
        engine = create_engine(url or default_url())
        migrate(engine)
        return cls(engine, keys=keys, encrypt=encrypt)

    @property
    def keys(self) -> KeyProvider:
        """The keyring of this store."""
        if self._keys is None:
            self._keys = default_key_provider()
        return self._keys

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- import -------------------------------------------------------------------------

    def import_file(
        self,
        path: Path | str,
        *,
        validate: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Import one Bundle, resource or NDJSON file in one transaction (all or nothing)."""
        batch = read_file(Path(path), validate=validate)
        return self.import_batch(batch, on_progress=on_progress)

    def import_paths(
        self,
        paths: Iterable[Path | str],
        *,
        validate: bool = True,
        workers: int = 1,
        on_progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Import every file (folders are searched); a bad file is reported and skipped whole.

        With `workers` > 1, files are read and validated in that many processes while this one
        writes them, each file still in its own transaction, in the order given.
        """
        report = ImportReport()
        files = list(expand_paths([Path(p) for p in paths]))
        for outcome in _read_all(files, validate=validate, workers=workers):
            if isinstance(outcome, RecordImportError):
                report.failed.append(outcome)
            else:
                report.imported.append(self.import_batch(outcome, on_progress=on_progress))
        return report

    def put(self, resources: Sequence[dict[str, Any]], *, source: str = "api") -> ImportResult:
        """Upsert resources (references already `Type/id`) in one transaction."""
        return self.import_batch(Batch(source, list(resources)))

    def import_batch(
        self, batch: Batch, *, on_progress: ProgressCallback | None = None
    ) -> ImportResult:
        """Write a checked batch in one transaction: upsert by type+id, then apply deletes."""
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for resource in batch.resources:
            unique[(str(resource["resourceType"]), str(resource["id"]))] = resource
        now = datetime.now(UTC).replace(tzinfo=None)
        keys = self.keys if self.encrypt else None
        patients: set[str] = set()
        items = list(unique.items())
        with self.engine.begin() as conn:
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                rows: list[dict[str, Any]] = []
                code_rows: list[dict[str, Any]] = []
                for (rtype, rid), resource in chunk:
                    fields = index_fields(resource)
                    if fields.patient_id:
                        patients.add(fields.patient_id)
                    body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
                    if keys is None:
                        sealed = {"kek_id": None, "wrapped_key": None, "body": body}
                    else:
                        sealed = RESOURCE_SEALING.seal(keys, (rtype, rid), {"body": body})
                    rows.append(
                        {
                            "resource_type": rtype,
                            "id": rid,
                            "patient_id": fields.patient_id,
                            "time_start": fields.time_start,
                            "time_end": fields.time_end,
                            "status": fields.status,
                            "clinical_status": fields.clinical_status,
                            "verification_status": fields.verification_status,
                            "version_id": 1,
                            "last_updated": now,
                            **sealed,
                        }
                    )
                    code_rows.extend(
                        {
                            "resource_type": rtype,
                            "resource_id": rid,
                            "system": system[:255],
                            "code": code[:128],
                            "component": int(component),
                        }
                        for system, code, component in fields.codes
                    )
                self._delete_codes(conn, [key for key, _ in chunk])
                conn.execute(self._upsert_statement(conn), rows)
                if code_rows:
                    conn.execute(sa.insert(codes_table), code_rows)
                if on_progress is not None:
                    on_progress(len(chunk))
            deleted = 0
            for rtype, rid in batch.deletes:
                self._delete_codes(conn, [(rtype, rid)])
                result = conn.execute(
                    sa.delete(resources_table).where(R.resource_type == rtype, R.id == rid)
                )
                deleted += result.rowcount or 0
        return ImportResult(batch.source, len(unique), deleted, tuple(sorted(patients)))

    @staticmethod
    def _upsert_statement(conn: Connection) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        stmt: Any
        if conn.dialect.name == "postgresql":
            stmt = postgresql.insert(resources_table)
        else:
            stmt = sqlite.insert(resources_table)
        updated: dict[str, Any] = {
            name: stmt.excluded[name]
            for name in (
                "patient_id",
                "time_start",
                "time_end",
                "status",
                "clinical_status",
                "verification_status",
                "last_updated",
                "body",
                "kek_id",
                "wrapped_key",
            )
        }
        updated["version_id"] = R.version_id + 1
        return stmt.on_conflict_do_update(index_elements=["resource_type", "id"], set_=updated)

    @staticmethod
    def _delete_codes(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
        by_type: dict[str, list[str]] = {}
        for rtype, rid in keys:
            by_type.setdefault(rtype, []).append(rid)
        for rtype, ids in by_type.items():
            conn.execute(
                sa.delete(codes_table).where(C.resource_type == rtype, C.resource_id.in_(ids))
            )

    # ---- FHIR read and search -----------------------------------------------------------

    def _json(self, row: Any) -> dict[str, Any]:
        """The resource of a row (with `resource_type`, `id`, `kek_id`, `wrapped_key`, `body`)."""
        if row.kek_id is None:
            resource: dict[str, Any] = json.loads(row.body)
            return resource
        context = RESOURCE_SEALING.context((row.resource_type, row.id))
        data_key = open_row_key(self.keys, row.kek_id, row.wrapped_key, context)
        decoded: dict[str, Any] = json.loads(open_text(data_key, context, "body", row.body))
        return decoded

    def _with_meta(self, row: Any) -> dict[str, Any]:
        resource = self._json(row)
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(row.version_id)
        meta["lastUpdated"] = format_instant(row.last_updated)
        resource["meta"] = meta
        return resource

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """One resource by type and id, with `meta.versionId` and `meta.lastUpdated`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*_READ, R.version_id, R.last_updated).where(
                    R.resource_type == resource_type, R.id == resource_id
                )
            ).first()
        if row is None:
            raise ResourceNotFoundError(f"{resource_type}/{resource_id} is not in the record")
        return self._with_meta(row)

    def search(
        self,
        resource_type: str,
        *,
        patient: str | None = None,
        ids: Sequence[str] | None = None,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Resources of a type (of a patient, changed since a time), a page and the total."""
        where = [R.resource_type == resource_type]
        if patient is not None:
            where.append(R.patient_id == patient)
        if ids is not None:
            where.append(R.id.in_(list(ids)))
        if since is not None:
            where.append(R.last_updated >= to_utc_naive(since))
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(*_READ, R.version_id, R.last_updated)
                .where(*where)
                .order_by(R.time_start, R.id)
                .limit(count)
                .offset(offset)
            ).all()
        return [self._with_meta(row) for row in rows], int(total)

    def resource_types(self) -> list[str]:
        """Resource types present in the store."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(R.resource_type).distinct()).scalars())

    def counts(self, patient: str | None = None) -> dict[str, int]:
        """Number of resources per type (of one patient, or of all)."""
        stmt = sa.select(R.resource_type, sa.func.count()).group_by(R.resource_type)
        if patient is not None:
            stmt = stmt.where(R.patient_id == patient)
        with self.engine.connect() as conn:
            return {str(t): int(n) for t, n in conn.execute(stmt)}

    # ---- encryption at rest -------------------------------------------------------------

    def key_usage(self) -> dict[str | None, int]:
        """Resources per KEK id; the key None counts plaintext (legacy or unencrypted) rows."""
        return RESOURCE_SEALING.status(self.engine)

    def encrypt_plaintext(
        self,
        *,
        batch_size: int = 500,
        limit: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Encrypt plaintext rows in place under the current KEK (batched, resumable)."""
        return RESOURCE_SEALING.encrypt_rows(
            self.engine, self.keys, batch_size=batch_size, limit=limit, on_progress=on_progress
        )

    def rewrap(
        self,
        *,
        batch_size: int = 500,
        limit: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Re-wrap data keys not under the current KEK (batched, resumable, safe under writes)."""
        return RESOURCE_SEALING.rewrap_rows(
            self.engine, self.keys, batch_size=batch_size, limit=limit, on_progress=on_progress
        )

    # ---- query API for population -------------------------------------------------------

    @staticmethod
    def _summary(resource: dict[str, Any], count: int = 0) -> PatientSummary:
        names = resource.get("name") or []
        chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
        name = (
            chosen.get("text")
            or " ".join([*chosen.get("given", []), chosen.get("family", "")]).strip()
        )
        birth = resource.get("birthDate")
        deceased: datetime | bool | None = None
        if "deceasedDateTime" in resource:
            deceased = parse_fhir_time(resource["deceasedDateTime"])
        elif "deceasedBoolean" in resource:
            deceased = bool(resource["deceasedBoolean"])
        return PatientSummary(
            id=str(resource["id"]),
            name=name,
            gender=resource.get("gender"),
            birth_date=date.fromisoformat(birth)
            if isinstance(birth, str) and len(birth) == 10
            else None,
            deceased=deceased,
            resource_count=count,
        )

    def patients(self) -> list[PatientSummary]:
        """Every patient with their number of resources, sorted by name."""
        with self.engine.connect() as conn:
            grouped = conn.execute(
                sa.select(R.patient_id, sa.func.count())
                .where(R.patient_id.is_not(None))
                .group_by(R.patient_id)
            )
            counts: dict[str, int] = {str(pid): int(n) for pid, n in grouped}
            rows = conn.execute(sa.select(*_READ).where(R.resource_type == "Patient")).all()
        out = [self._summary(self._json(row)) for row in rows]
        out = [
            PatientSummary(
                p.id, p.name, p.gender, p.birth_date, p.deceased, int(counts.get(p.id, 0))
            )
            for p in out
        ]
        return sorted(out, key=lambda p: (p.name, p.id))

    def patient(self, patient_id: str) -> PatientSummary:
        """A patient's demographics; ResourceNotFoundError when absent."""
        return self._summary(self.get("Patient", patient_id))

    def _coded_rows(
        self,
        *,
        resource_types: Sequence[str],
        patient_id: str,
        systems: Sequence[str] | None,
        codes: Sequence[str] | None = None,
        prefixes: Sequence[str] | None = None,
        extra: Sequence[Any] = (),
        component: bool = True,
    ) -> Iterator[Any]:
        where: list[Any] = [R.resource_type.in_(list(resource_types)), R.patient_id == patient_id]
        where.extend(extra)
        stmt = sa.select(*_READ, R.time_start, R.time_end)
        if codes is not None or prefixes is not None:
            match: list[Any] = []
            if codes is not None:
                match.append(C.code.in_(list(codes)))
            for prefix in prefixes or ():
                match.append(C.code.like(_like_prefix(prefix), escape="\\"))
            code_where = [
                C.resource_type == R.resource_type,
                C.resource_id == R.id,
                sa.or_(*match),
            ]
            if systems is not None:
                code_where.append(C.system.in_(list(systems)))
            if not component:
                code_where.append(C.component == 0)
            where.append(sa.exists().where(*code_where))
        stmt = stmt.where(*where).order_by(R.time_start, R.id)
        with self.engine.connect() as conn:
            yield from conn.execute(stmt).all()

    def observations(
        self,
        patient_id: str,
        *,
        codes: Iterable[str],
        system: str = LOINC,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list[ObservationValue]:
        """Values of the patient's Observations (or components) with these codes, oldest first."""
        wanted = list(codes)
        systems = systems_for(system)
        extra: list[Any] = []
        extra.extend(_started_between(since, until))
        if statuses is not None:
            extra.append(R.status.in_(list(statuses)))
        out: list[ObservationValue] = []
        rows = self._coded_rows(
            resource_types=("Observation",),
            patient_id=patient_id,
            systems=systems,
            codes=wanted,
            extra=extra,
        )
        for row in rows:
            resource = self._json(row)
            parts = [(resource, False)] + [(c, True) for c in resource.get("component") or ()]
            for part, is_component in parts:
                for coding in _codings(part.get("code")):
                    if coding.code in wanted and coding.system in systems:
                        out.append(_observation_value(resource, part, coding, row, is_component))
                        break
        return out

    def conditions(
        self,
        patient_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        system: str = "icd10",
        active_at: datetime | None = None,
    ) -> list[ConditionRecord]:
        """The patient's Conditions whose code starts with a prefix, optionally active at a time.

        Active at T: onset (or recorded date) not after T, no abatement at or before T, not
        entered-in-error or refuted, and clinical status active/recurrence/relapse — or an
        abatement after T (a condition resolved later was active then). A resolved condition
        without an abatement date is not counted as active at any time: when it ended is unknown.
        """
        extra: list[Any] = []
        if active_at is not None:
            at = _utc(active_at)
            extra += [
                sa.or_(R.time_start.is_(None), R.time_start <= at),
                sa.or_(R.time_end.is_(None), R.time_end > at),
                sa.or_(
                    R.verification_status.is_(None), R.verification_status.not_in(_NOT_VERIFIED)
                ),
                sa.or_(
                    R.clinical_status.is_(None),
                    R.clinical_status.in_(_ACTIVE_CLINICAL),
                    R.time_end > at,
                ),
            ]
        out = []
        rows = self._coded_rows(
            resource_types=("Condition",),
            patient_id=patient_id,
            systems=systems_for(system),
            prefixes=list(prefixes) if prefixes is not None else None,
            extra=extra,
        )
        for row in rows:
            resource = self._json(row)
            fields = index_fields(resource)
            out.append(
                ConditionRecord(
                    resource_id=row.id,
                    codes=_codings(resource.get("code")),
                    onset=row.time_start,
                    abatement=row.time_end,
                    clinical_status=fields.clinical_status,
                    verification_status=fields.verification_status,
                    text=_text(resource.get("code")),
                )
            )
        return out

    def medications(
        self,
        patient_id: str,
        *,
        codes: Iterable[str] | None = None,
        system: str = "rxnorm",
        statuses: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[MedicationRecord]:
        """The patient's medication requests, statements and administrations, oldest first."""
        extra: list[Any] = []
        if statuses is not None:
            extra.append(R.status.in_(list(statuses)))
        extra.extend(_started_between(since, until))
        out = []
        rows = self._coded_rows(
            resource_types=MEDICATION_TYPES,
            patient_id=patient_id,
            systems=systems_for(system),
            codes=list(codes) if codes is not None else None,
            extra=extra,
        )
        for row in rows:
            resource = self._json(row)
            concept = resource.get("medicationCodeableConcept")
            out.append(
                MedicationRecord(
                    resource_type=row.resource_type,
                    resource_id=row.id,
                    codes=_codings(concept),
                    status=resource.get("status"),
                    start=row.time_start,
                    end=row.time_end,
                    text=_text(concept),
                )
            )
        return out

    def procedures(
        self,
        patient_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        system: str = "snomed",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[ProcedureRecord]:
        """The patient's Procedures (with a code prefix, in a time window), oldest first."""
        extra: list[Any] = []
        extra.extend(_started_between(since, until))
        out = []
        rows = self._coded_rows(
            resource_types=("Procedure",),
            patient_id=patient_id,
            systems=systems_for(system),
            prefixes=list(prefixes) if prefixes is not None else None,
            extra=extra,
        )
        for row in rows:
            resource = self._json(row)
            out.append(
                ProcedureRecord(
                    resource_id=row.id,
                    codes=_codings(resource.get("code")),
                    status=resource.get("status"),
                    start=row.time_start,
                    end=row.time_end,
                    text=_text(resource.get("code")),
                )
            )
        return out

    def notes(
        self, patient_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Note]:
        """The text of the patient's DocumentReferences (inline attachments), oldest first."""
        extra: list[Any] = [R.status.is_(None) | (R.status != "entered-in-error")]
        extra.extend(_started_between(since, until))
        out = []
        rows = self._coded_rows(
            resource_types=("DocumentReference",), patient_id=patient_id, systems=None, extra=extra
        )
        for row in rows:
            resource = self._json(row)
            for content in resource.get("content") or ():
                attachment = content.get("attachment") or {}
                text = _attachment_text(attachment)
                if text is None:
                    continue
                out.append(
                    Note(
                        resource_id=row.id,
                        date=row.time_start,
                        type=_codings(resource.get("type")),
                        content_type=attachment.get("contentType"),
                        text=text,
                    )
                )
        return out


def _read_one(path: Path, validate: bool) -> Batch | tuple[str, tuple[Problem, ...]]:
    """Read a file in a worker; problems come back as plain data (they pickle)."""
    try:
        return read_file(path, validate=validate)
    except RecordImportError as error:
        return (error.subject, error.problems)


def _read_all(
    files: list[Path], *, validate: bool, workers: int
) -> Iterator[Batch | RecordImportError]:
    """Read files in order, in `workers` processes when more than one, a few files ahead."""
    if workers <= 1 or len(files) <= 1:
        for path in files:
            try:
                yield read_file(path, validate=validate)
            except RecordImportError as error:
                yield error
        return
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[Batch | tuple[str, tuple[Problem, ...]]]] = deque()
        queue = iter(files)
        for path in queue:
            pending.append(pool.submit(_read_one, path, validate))
            if len(pending) >= 2 * workers:
                break
        while pending:
            outcome = pending.popleft().result()
            next_path = next(queue, None)
            if next_path is not None:
                pending.append(pool.submit(_read_one, next_path, validate))
            if isinstance(outcome, Batch):
                yield outcome
            else:
                yield RecordImportError(outcome[0], outcome[1])


def _attachment_text(attachment: dict[str, Any]) -> str | None:
    data = attachment.get("data")
    content_type = str(attachment.get("contentType") or "text/plain")
    if not isinstance(data, str) or not content_type.startswith("text/"):
        return None
    try:
        return base64.b64decode(data, validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None


def _observation_value(
    resource: dict[str, Any], part: dict[str, Any], coding: Coding, row: Any, component: bool
) -> ObservationValue:
    value: float | str | bool | None = None
    unit = unit_code = unit_system = None
    quantity = part.get("valueQuantity")
    if isinstance(quantity, dict):
        raw = quantity.get("value")
        value = float(raw) if isinstance(raw, (int, float)) else None
        unit, unit_code, unit_system = (
            quantity.get("unit"),
            quantity.get("code"),
            quantity.get("system"),
        )
    elif "valueInteger" in part:
        value = float(part["valueInteger"])
    elif "valueBoolean" in part:
        value = bool(part["valueBoolean"])
    elif "valueString" in part:
        value = str(part["valueString"])
    elif "valueCodeableConcept" in part:
        codings = _codings(part["valueCodeableConcept"])
        value = _text(part["valueCodeableConcept"]) or (codings[0].code if codings else None)
    return ObservationValue(
        resource_id=row.id,
        code=coding,
        effective=row.time_start,
        status=resource.get("status"),
        value=value,
        unit=unit,
        unit_code=unit_code,
        unit_system=unit_system,
        component=component,
    )
