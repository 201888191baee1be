"""A record store that writes every read and write of patient data to the audit log.

Who, from where and why come from an *audit context* (a context variable), set once where a
request or command starts — ``with audit_context(actor=…, source=…, reason=…)`` — so that deep
calls (the populate engine asking the store twenty times for one scale) are attributed without
passing those three through every function.

Volume: a read is written once per (context, patient, action), at the first access, before the
data is handed back (so a crash later in the request cannot lose it); later reads of the same
patient in the same context are covered by that entry. Writes are already batched (a file, a
Bundle): each write is one entry per patient per batch, with the resource types and counts.

Without a context the store refuses to read or write (``AuditContextError``) unless it was given
a ``default`` context: a service must say on whose behalf it reads, so a route that forgot is a
bug that fails closed, never an anonymous read; the CLI and the monitor pass a default naming
the operating-system user (who is authenticated by the OS) or the monitor itself.
"""

from __future__ import annotations

import copy
import getpass
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from medagent.errors import MedAgentError
from medagent.record.extract import reference_id
from medagent.record.importer import Batch
from medagent.record.models import (
    LOINC,
    ConditionRecord,
    ImportResult,
    MedicationRecord,
    Note,
    ObservationValue,
    PatientSummary,
    ProcedureRecord,
)
from medagent.record.store import MEDICATION_TYPES, ImportReport, ProgressCallback, R, RecordStore
from medagent.secure.audit import AuditLog, Draft

if TYPE_CHECKING:
    from medagent.scales.engine import Result

ALL_PATIENTS = "Patient/*"
_PATIENT_FIELDS = ("subject", "patient", "beneficiary")  # as the store indexes them
_DETAIL_MAX = 500


class AuditContextError(MedAgentError, PermissionError):
    """Patient data was asked for without saying who asks, from where and why."""


@dataclass(frozen=True, slots=True, eq=False)
class AuditContext:
    """Who reads or writes (``actor``), from where (``source``) and why (``reason``).

    It also remembers which (log, patient, action) it has already written, so that each is
    written once however many queries the work behind it makes.
    """

    actor: str
    source: str
    reason: str
    _seen: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for name in ("actor", "source", "reason"):
            if not str(getattr(self, name)).strip():
                raise AuditContextError(f"an audit context needs a non-empty {name}")

    def once(self, log: AuditLog, resources: Iterable[str], *, action: str, detail: str) -> None:
        """Write ``action`` on each resource this context has not yet written it for, in one
        transaction; threads sharing the context write each at most once between them."""
        where = str(log.path)
        with self._lock:
            fresh = [r for r in dict.fromkeys(resources) if (where, r, action) not in self._seen]
            if not fresh:
                return
            log.append_many(
                [
                    Draft(
                        actor=self.actor,
                        action=action,
                        resource=r,
                        source=self.source,
                        reason=self.reason,
                        detail=_short(detail),
                    )
                    for r in fresh
                ]
            )
            self._seen.update((where, r, action) for r in fresh)


_CURRENT: ContextVar[AuditContext | None] = ContextVar("medagent_audit_context", default=None)


def current_audit_context() -> AuditContext | None:
    """The audit context in force here, if any."""
    return _CURRENT.get()


def _make(actor: str | None, source: str | None, reason: str) -> AuditContext:
    outer = _CURRENT.get()
    actor = actor if actor is not None else (outer.actor if outer else None)
    source = source if source is not None else (outer.source if outer else None)
    if actor is None or source is None:
        raise AuditContextError("an audit context needs an actor and a source")
    return AuditContext(actor, source, reason)


@contextmanager
def audit_context(
    *, reason: str, actor: str | None = None, source: str | None = None
) -> Iterator[AuditContext]:
    """Attribute the store accesses inside the block; actor and source default to the outer
    context's (so a command can narrow the reason without repeating who and where)."""
    ctx = _make(actor, source, reason)
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def bind_audit_context(
    *, reason: str, actor: str | None = None, source: str | None = None
) -> AuditContext:
    """Set the audit context for the rest of the current context (one request's handler).

    Web frameworks run each request's handler in its own copy of the context, so a binding made
    there ends with the request; use :func:`audit_context` everywhere else.
    """
    ctx = _make(actor, source, reason)
    _CURRENT.set(ctx)
    return ctx


def process_context(reason: str, *, program: str = "cli") -> AuditContext:
    """A context for this process: the operating-system user, ``PROGRAM@hostname``."""
    return AuditContext(_os_user(), f"{program}@{socket.gethostname()}", reason)


def _os_user() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (containers): the uid still says who
        import os

        return f"os:uid={os.getuid()}"


def patient_of(resource: dict[str, Any]) -> str | None:
    """The id of the patient a FHIR resource belongs to (its own id for a Patient)."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) if resource.get("id") else None
    for name in _PATIENT_FIELDS:
        pid = reference_id(resource.get(name), "Patient")
        if pid:
            return pid
    return None


def score_detail(result: Result) -> str:
    """What an audit entry says about a score: scale, version, complete or not (not the value:
    the audit trail names what was done, it is not a second copy of the record)."""
    state = "complete" if result.complete else f"incomplete, {len(result.missing)} missing"
    return f"{result.scale.id} v{result.scale.version} ({state})"


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _codes(codes: Iterable[str] | None) -> str:
    if codes is None:
        return "any code"
    listed = list(codes)
    shown = ", ".join(listed[:6]) + (f" … ({len(listed)} codes)" if len(listed) > 6 else "")
    return f"codes {shown}" if listed else "no code"


def _patients_first(item: tuple[str, list[str]]) -> tuple[bool, str]:
    return (item[0] == "", item[0])  # "" collects what belongs to no patient: last


def _counted(types: Iterable[str]) -> str:
    counts = Counter(types)
    return ", ".join(f"{t}×{n}" for t, n in sorted(counts.items()))


class AuditedRecordStore(RecordStore):
    """:class:`RecordStore` whose public reads and writes of patient data are audited."""

    audit: AuditLog
    default_context: AuditContext | None

    def __init__(
        self,
        engine: Any,
        *args: Any,
        audit: AuditLog | None = None,
        default: AuditContext | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(engine, *args, **kwargs)
        opening = _OPENING.get()
        log = audit if audit is not None else (opening[0] if opening else None)
        if log is None:
            raise AuditContextError("an audited record store needs an audit log")
        self.audit = log
        self.default_context = default if default is not None else (opening[1] if opening else None)

    @classmethod
    def open(  # type: ignore[override]
        cls,
        url: str | None = None,
        *,
        audit: AuditLog | Path | str,
        default: AuditContext | None = None,
        **kwargs: Any,
    ) -> AuditedRecordStore:
        """Open the store like :meth:`RecordStore.open` (any of its options), audited to ``audit``
        (a log or its path); ``default`` attributes accesses made outside any context."""
        log = audit if isinstance(audit, AuditLog) else AuditLog(audit)
        # RecordStore.open builds the instance itself (cls(engine, …)); hand the log to
        # __init__ through a context variable so any option RecordStore.open gains still works.
        token = _OPENING.set((log, default))
        try:
            store = super().open(url, **kwargs)
        finally:
            _OPENING.reset(token)
        assert isinstance(store, AuditedRecordStore)
        return store

    def with_default(self, default: AuditContext | None) -> AuditedRecordStore:
        """The same store (same engine and log) with another default context."""
        other = copy.copy(self)
        other.default_context = default
        return other

    # ---- writing entries ---------------------------------------------------------------

    def _context(self) -> AuditContext:
        ctx = _CURRENT.get() or self.default_context
        if ctx is None:
            raise AuditContextError(
                "patient data asked for outside any audit context: say who asks, from where and"
                " why (medagent.record.audited.audit_context)"
            )
        return ctx

    def _read(self, ctx: AuditContext, patients: Iterable[str], detail: str) -> None:
        """One ``read`` entry per patient not yet read in this context (failures every time)."""
        resources = [p if p == ALL_PATIENTS else f"Patient/{p}" for p in patients]
        ctx.once(self.audit, resources, action="read", detail=detail)

    def _failed_read(self, ctx: AuditContext, patient: str, detail: str, exc: Exception) -> None:
        self.audit.append(
            actor=ctx.actor,
            action="read",
            resource=f"Patient/{patient}",
            source=ctx.source,
            reason=ctx.reason,
            outcome=f"failed: {type(exc).__name__}",
            detail=_short(detail),
        )

    # ---- reads -------------------------------------------------------------------------

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        ctx = self._context()
        what = f"{resource_type}/{resource_id}"
        try:
            resource = super().get(resource_type, resource_id)
        except MedAgentError as exc:
            if resource_type == "Patient":
                self._failed_read(ctx, resource_id, what, exc)
            raise
        patient = patient_of(resource)
        if patient is not None:
            self._read(ctx, [patient], what)
        return resource

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
        ctx = self._context()
        resources, total = super().search(
            resource_type, patient=patient, ids=ids, since=since, count=count, offset=offset
        )
        detail = f"search {resource_type}: {len(resources)} of {total}"
        if patient is not None:
            self._read(ctx, [patient], detail)
        else:
            found = [p for p in (patient_of(r) for r in resources) if p is not None]
            self._read(ctx, found, detail)
        return resources, total

    def counts(self, patient: str | None = None) -> dict[str, int]:
        ctx = self._context()
        counts = super().counts(patient)
        self._read(ctx, [patient or ALL_PATIENTS], "resource counts")
        return counts

    def patients(self) -> list[PatientSummary]:
        ctx = self._context()
        out = super().patients()
        self._read(ctx, [ALL_PATIENTS], f"patient list ({len(out)} patients, demographics)")
        return out

    def patient(self, patient_id: str) -> PatientSummary:
        ctx = self._context()
        out = super().patient(patient_id)  # a missing patient is written by get()
        self._read(ctx, [patient_id], "Patient (demographics)")
        return out

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
        ctx = self._context()
        wanted = list(codes)
        out = super().observations(
            patient_id, codes=wanted, system=system, since=since, until=until, statuses=statuses
        )
        self._read(ctx, [patient_id], f"Observation ({_codes(wanted)})")
        return out

    def conditions(
        self,
        patient_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        system: str = "icd10",
        active_at: datetime | None = None,
    ) -> list[ConditionRecord]:
        ctx = self._context()
        wanted = list(prefixes) if prefixes is not None else None
        out = super().conditions(patient_id, prefixes=wanted, system=system, active_at=active_at)
        self._read(ctx, [patient_id], f"Condition ({system} {_codes(wanted)})")
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
        ctx = self._context()
        wanted = list(codes) if codes is not None else None
        out = super().medications(
            patient_id, codes=wanted, system=system, statuses=statuses, since=since, until=until
        )
        self._read(ctx, [patient_id], f"{'/'.join(MEDICATION_TYPES)} ({_codes(wanted)})")
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
        ctx = self._context()
        wanted = list(prefixes) if prefixes is not None else None
        out = super().procedures(
            patient_id, prefixes=wanted, system=system, since=since, until=until
        )
        self._read(ctx, [patient_id], f"Procedure ({system} {_codes(wanted)})")
        return out

    def notes(
        self, patient_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Note]:
        ctx = self._context()
        out = super().notes(patient_id, since=since, until=until)
        self._read(ctx, [patient_id], f"DocumentReference (note text, {len(out)} notes)")
        return out

    # ---- writes ------------------------------------------------------------------------

    def import_file(
        self,
        path: Path | str,
        *,
        validate: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> ImportResult:
        self._context()  # refuse before reading the file
        return super().import_file(path, validate=validate, on_progress=on_progress)

    def import_paths(
        self,
        paths: Iterable[Path | str],
        *,
        validate: bool = True,
        workers: int = 1,
        on_progress: ProgressCallback | None = None,
    ) -> ImportReport:
        self._context()
        return super().import_paths(
            paths, validate=validate, workers=workers, on_progress=on_progress
        )

    def put(self, resources: Sequence[dict[str, Any]], *, source: str = "api") -> ImportResult:
        self._context()
        return super().put(resources, source=source)

    def import_batch(
        self, batch: Batch, *, on_progress: ProgressCallback | None = None
    ) -> ImportResult:
        """Write the batch, then one ``write`` entry per patient (resource types and counts) and
        one ``delete`` entry per patient whose resources the batch deleted."""
        ctx = self._context()
        written: dict[str, list[str]] = {}
        for resource in batch.resources:
            key = patient_of(resource) or ""
            written.setdefault(key, []).append(str(resource.get("resourceType")))
        deleted = self._owners(batch.deletes)
        try:
            result = super().import_batch(batch, on_progress=on_progress)
        except Exception as exc:
            self.audit.append(
                actor=ctx.actor,
                action="write",
                resource="record",
                source=ctx.source,
                reason=ctx.reason,
                outcome=f"failed: {type(exc).__name__}",
                detail=_short(f"{len(batch.resources)} resources from {batch.source}"),
            )
            raise
        drafts = [
            Draft(
                actor=ctx.actor,
                action="write",
                resource=f"Patient/{pid}" if pid else "record",
                source=ctx.source,
                reason=ctx.reason,
                detail=_short(
                    f"{_counted(types)} from {batch.source}"
                    + ("" if pid else " (not patient data)")
                ),
            )
            for pid, types in sorted(written.items(), key=_patients_first)
        ]
        drafts += [
            Draft(
                actor=ctx.actor,
                action="delete",
                resource=f"Patient/{pid}" if pid else "record",
                source=ctx.source,
                reason=ctx.reason,
                detail=_short(", ".join(keys) + f" from {batch.source}"),
            )
            for pid, keys in sorted(deleted.items(), key=_patients_first)
        ]
        self.audit.append_many(drafts)
        return result

    def _owners(self, keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
        """The patients of resources about to be deleted (those that exist), with their keys."""
        owners: dict[str, list[str]] = {}
        if not keys:
            return owners
        with self.engine.connect() as conn:
            for rtype, rid in keys:
                row = conn.execute(
                    sa.select(R.patient_id).where(R.resource_type == rtype, R.id == rid)
                ).first()
                if row is not None:
                    owners.setdefault(row.patient_id or "", []).append(f"{rtype}/{rid}")
        return owners


_OPENING: ContextVar[tuple[AuditLog, AuditContext | None] | None] = ContextVar(
    "medagent_audited_store_opening", default=None
)
