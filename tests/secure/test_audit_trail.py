"""The audit trail of patient data: the audited record store, the log's query and concurrency.

Every read and write of the record store is written with who, what, when, from where and why;
each (context, patient, action) once, at the first access; the chain verifies after several
processes wrote to it at once.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa
from fastapi.testclient import TestClient

from medagent.demo import load_demo
from medagent.demo.build import INDEX_TIME
from medagent.populate import populate
from medagent.record.audited import (
    ALL_PATIENTS,
    AuditContextError,
    AuditedRecordStore,
    audit_context,
    process_context,
)
from medagent.record.errors import ResourceNotFoundError
from medagent.record.fhir_api import create_app as fhir_app
from medagent.record.importer import Batch
from medagent.secure.audit import GENESIS, AuditEntry, AuditLog, Draft, chain_hash

KEY = mldsa.MLDSA65PrivateKey.generate()
SEPSIS = "demo-sepsis-ward"
AF = "demo-af-anticoagulation"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("audited") / "record.db"
    store = AuditedRecordStore.open(
        f"sqlite:///{path}", audit=path.with_name("setup-audit.db"), default=None
    )
    with audit_context(actor="setup", source="pytest", reason="load the demo patients"):
        load_demo(store, now=INDEX_TIME)
    store.close()
    return f"sqlite:///{path}"


@pytest.fixture
def store(demo_db: str, tmp_path: Path) -> Iterator[AuditedRecordStore]:
    """The demo record, audited to a fresh log, without a default context."""
    s = AuditedRecordStore.open(demo_db, audit=tmp_path / "audit.db")
    yield s
    s.close()


def _entries(store: AuditedRecordStore) -> list[AuditEntry]:
    return list(store.audit.entries())


# ---- who, what, from where, why ---------------------------------------------------------


def test_a_read_outside_any_context_is_refused_and_nothing_is_returned(
    store: AuditedRecordStore,
) -> None:
    with pytest.raises(AuditContextError, match="outside any audit context"):
        store.observations(SEPSIS, codes=["8867-4"])
    with pytest.raises(AuditContextError):
        store.patients()
    with pytest.raises(AuditContextError):
        store.put([{"resourceType": "Patient", "id": "x"}])
    assert _entries(store) == []


def test_a_default_context_names_the_operating_system_user(store: AuditedRecordStore) -> None:
    cli = store.with_default(process_context("list patients"))
    cli.patient(SEPSIS)
    (entry,) = _entries(store)
    assert entry.actor.startswith("os:") and entry.source.startswith("cli@")
    assert (entry.action, entry.resource, entry.reason) == (
        "read",
        f"Patient/{SEPSIS}",
        "list patients",
    )


# one row per public read method: the call, and what the entry's detail starts with
READS = [
    ("patient", lambda s: s.patient(SEPSIS), "Patient/"),
    ("get", lambda s: s.get("Patient", SEPSIS), "Patient/"),
    (
        "observations",
        lambda s: s.observations(SEPSIS, codes=["8867-4"]),
        "Observation (codes 8867-4",
    ),
    ("conditions", lambda s: s.conditions(SEPSIS, prefixes=["A41"]), "Condition (icd10"),
    ("medications", lambda s: s.medications(SEPSIS), "MedicationRequest/"),
    ("procedures", lambda s: s.procedures(SEPSIS), "Procedure (snomed"),
    ("notes", lambda s: s.notes(SEPSIS), "DocumentReference (note text"),
    ("counts", lambda s: s.counts(SEPSIS), "resource counts"),
    ("search", lambda s: s.search("Observation", patient=SEPSIS), "search Observation"),
]


@pytest.mark.parametrize(("name", "call", "detail"), READS, ids=[r[0] for r in READS])
def test_every_read_method_writes_who_what_where_why(
    store: AuditedRecordStore, name: str, call: object, detail: str
) -> None:
    before = datetime.now(UTC)
    with audit_context(actor="dr.house", source="10.1.2.3", reason=f"test {name}"):
        call(store)  # type: ignore[operator]
    (entry,) = _entries(store)
    assert (entry.actor, entry.action, entry.resource, entry.source, entry.reason) == (
        "dr.house",
        "read",
        f"Patient/{SEPSIS}",
        "10.1.2.3",
        f"test {name}",
    )
    assert entry.detail.startswith(detail), entry.detail
    assert entry.outcome == "success"
    assert before <= datetime.fromisoformat(entry.ts) <= datetime.now(UTC)


def test_populate_writes_one_read_per_patient_and_context(store: AuditedRecordStore) -> None:
    with audit_context(actor="dr.a", source="10.0.0.1", reason="populate news2"):
        populate("news2", SEPSIS, store=store, at=INDEX_TIME)
        populate("qsofa", SEPSIS, store=store, at=INDEX_TIME)  # same context: covered
        store.patient(AF)  # another patient: its own entry
    with audit_context(actor="dr.a", source="10.0.0.1", reason="populate news2 again"):
        populate("news2", SEPSIS, store=store, at=INDEX_TIME)
    got = [(e.resource, e.reason) for e in _entries(store)]
    assert got == [
        (f"Patient/{SEPSIS}", "populate news2"),
        (f"Patient/{AF}", "populate news2"),
        (f"Patient/{SEPSIS}", "populate news2 again"),
    ]


def test_the_entry_is_written_at_first_access_so_a_crash_cannot_lose_it(
    store: AuditedRecordStore,
) -> None:
    with (
        pytest.raises(RuntimeError, match="crash"),
        audit_context(actor="dr.b", source="10.0.0.2", reason="read then crash"),
    ):
        store.observations(SEPSIS, codes=["8867-4"])
        assert len(_entries(store)) == 1  # already there, before the context ends
        raise RuntimeError("crash")
    assert [e.actor for e in _entries(store)] == ["dr.b"]


def test_a_nested_context_narrows_the_reason_and_keeps_who_and_where(
    store: AuditedRecordStore,
) -> None:
    with audit_context(actor="dr.c", source="10.0.0.3", reason="assess"):
        with audit_context(reason="assess: populate curb65"):
            store.patient(SEPSIS)
        store.patient(SEPSIS)  # the outer context has not read it yet
    assert [(e.actor, e.source, e.reason) for e in _entries(store)] == [
        ("dr.c", "10.0.0.3", "assess: populate curb65"),
        ("dr.c", "10.0.0.3", "assess"),
    ]
    with pytest.raises(AuditContextError, match="actor and a source"):
        audit_context(reason="who?").__enter__()
    with pytest.raises(AuditContextError, match="non-empty actor"):
        audit_context(actor=" ", source="x", reason="y").__enter__()


def test_threads_sharing_a_context_write_one_entry(store: AuditedRecordStore) -> None:
    import contextvars

    with audit_context(actor="dr.d", source="10.0.0.4", reason="parallel populate"):
        ctx = contextvars.copy_context()
        threads = [
            threading.Thread(
                target=ctx.copy().run,
                args=(store.observations, SEPSIS),
                kwargs={"codes": ["8867-4"]},
            )
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(_entries(store)) == 1


def test_list_reads_and_cross_patient_searches(store: AuditedRecordStore) -> None:
    with audit_context(actor="dr.e", source="10.0.0.5", reason="ward list"):
        listed = store.patients()
        found, _ = store.search("Patient", count=100)
    entries = _entries(store)
    assert entries[0].resource == ALL_PATIENTS
    assert entries[0].detail.startswith(f"patient list ({len(listed)} patients")
    # the search returned every patient: one entry for each, in one transaction
    assert sorted(e.resource for e in entries[1:]) == sorted(f"Patient/{r['id']}" for r in found)
    assert len({e.ts for e in entries[1:]}) == 1


def test_a_failed_read_is_written_every_time(store: AuditedRecordStore) -> None:
    with audit_context(actor="dr.f", source="10.0.0.6", reason="look up"):
        for _ in range(2):
            with pytest.raises(ResourceNotFoundError):
                store.patient("nobody")
    got = [(e.resource, e.outcome) for e in _entries(store)]
    assert got == [("Patient/nobody", "failed: ResourceNotFoundError")] * 2


def test_writes_name_each_patient_with_resource_types_and_counts(
    demo_db: str, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy.db"
    shutil.copy(demo_db.removeprefix("sqlite:///"), copy)
    store = AuditedRecordStore.open(f"sqlite:///{copy}", audit=tmp_path / "audit.db")
    resources = [
        {"resourceType": "Patient", "id": "p-new", "birthDate": "1950-01-01"},
        *[
            {
                "resourceType": "Observation",
                "id": f"o-{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/p-new"},
                "valueQuantity": {"value": 80 + i, "unit": "/min", "code": "/min"},
            }
            for i in range(3)
        ],
        {"resourceType": "Organization", "id": "org-1", "name": "A hospital"},
    ]
    with audit_context(actor="hl7-feed", source="10.9.9.9", reason="import admission"):
        store.put(resources, source="adt.json")
        store.import_batch(
            Batch("cleanup.json", [], [("Observation", "o-0"), ("Observation", "absent")])
        )
    entries = _entries(store)
    assert [(e.action, e.resource, e.detail) for e in entries] == [
        ("write", "Patient/p-new", "Observation×3, Patient×1 from adt.json"),
        ("write", "record", "Organization×1 from adt.json (not patient data)"),
        ("delete", "Patient/p-new", "Observation/o-0 from cleanup.json"),
    ]
    assert {e.actor for e in entries} == {"hl7-feed"}
    store.close()


def test_an_import_that_fails_is_written_as_failed(store: AuditedRecordStore) -> None:
    with (
        audit_context(actor="dr.g", source="10.0.0.7", reason="import"),
        pytest.raises(KeyError),
    ):
        store.put([{"resourceType": "Observation"}], source="bad.json")  # no id
    (entry,) = _entries(store)
    assert (entry.action, entry.resource, entry.outcome) == ("write", "record", "failed: KeyError")
    assert entry.detail == "1 resources from bad.json"


# ---- the FHIR API -----------------------------------------------------------------------


def test_fhir_api_reads_are_attributed_to_the_token_and_the_client(
    store: AuditedRecordStore,
) -> None:
    app = fhir_app(store, token_validator=lambda t: "ehr-backend" if t == "good" else t == "anon")
    with TestClient(app) as client:
        assert (
            client.get(
                f"/fhir/Patient/{SEPSIS}", headers={"Authorization": "Bearer good"}
            ).status_code
            == 200
        )
        r = client.get(
            f"/fhir/Observation?patient={SEPSIS}", headers={"Authorization": "Bearer anon"}
        )
        assert r.status_code == 200
        assert (
            client.get("/fhir/Patient/x", headers={"Authorization": "Bearer bad"}).status_code
            == 401
        )
    entries = _entries(store)
    assert [(e.actor, e.action, e.resource, e.source) for e in entries] == [
        ("ehr-backend", "read", f"Patient/{SEPSIS}", "testclient"),
        (entries[1].actor, "read", f"Patient/{SEPSIS}", "testclient"),
        (entries[2].actor, "authenticate", "session", "testclient"),
    ]
    assert entries[1].actor.startswith("token:") and len(entries[1].actor) == 18
    assert entries[1].reason == "FHIR API search Observation"
    assert entries[2].outcome == "failed: bearer token refused"
    assert "bad" not in json.dumps([e.to_dict() for e in entries])  # the token itself is not kept


# ---- the log itself: detail, upgrade, query, speed-ups ------------------------------------


def test_detail_is_hashed_so_editing_it_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db")
    log.append(actor="a", action="read", resource="Patient/1", source="s", reason="r", detail="x")
    log.append(actor="a", action="read", resource="Patient/2", source="s", reason="r")
    db = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    db.execute("DROP TRIGGER audit_entries_no_update")
    db.execute("UPDATE audit_entries SET detail='y' WHERE seq=1")
    report = log.verify(KEY.public_key())
    assert report.first_bad_seq == 1 and "edited" in report.problems[0].message


def test_a_log_written_before_entries_had_a_detail_still_verifies(tmp_path: Path) -> None:
    """Regression: adding the detail column must not change the hash of existing entries."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE audit_entries (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT"
        " NULL, action TEXT NOT NULL, resource TEXT NOT NULL, source TEXT NOT NULL, reason TEXT"
        " NOT NULL, outcome TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL)"
    )
    old = AuditEntry(
        1, "2025-01-01T00:00:00.000000+00:00", "a", "read", "Patient/1", "s", "r", "success"
    )
    fields = (old.seq, old.ts, old.actor, old.action, old.resource, old.source, old.reason)
    db.execute(
        "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*fields, old.outcome, GENESIS, chain_hash(GENESIS, old)),
    )
    db.close()
    log = AuditLog(path)  # adds the column
    log.append(actor="b", action="read", resource="Patient/2", source="s", reason="r", detail="d")
    report = log.verify(KEY.public_key())
    assert report.ok, report.problems
    assert [e.detail for e in log.entries()] == ["", "d"]


def test_search_filters_answer_who_looked_at_a_patient(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("dr.a", "read", "Patient/p1"),
        ("dr.b", "read", "Patient/p2"),
        ("dr.b", "r:Observation", "Observation/p1"),  # an access decision about p1
        ("dr.a", "score", "Patient/p1"),
        ("dr.c", "read", "Patient/p10"),  # not p1
        ("dr.c", "read", "Patient/p_1"),  # LIKE wildcards are escaped
    ]
    for i, (actor, action, resource) in enumerate(rows):
        log.append(
            actor=actor,
            action=action,
            resource=resource,
            source="s",
            reason="r",
            when=t0 + timedelta(hours=i),
        )
    assert [e.seq for e in log.search(patient="p1")] == [1, 3, 4]
    assert [e.seq for e in log.search(patient="p1", actor="dr.a")] == [1, 4]
    assert [e.seq for e in log.search(action="read")] == [1, 2, 5, 6]
    assert [
        e.seq for e in log.search(since=t0 + timedelta(hours=2), until=t0 + timedelta(hours=4))
    ] == [3, 4, 5]
    assert [e.seq for e in log.search(since=datetime(2026, 1, 1, 3))] == [4, 5, 6]  # naive = UTC
    assert [e.seq for e in log.search(limit=2)] == [5, 6]  # the newest two, oldest first
    assert [e.seq for e in log.search(resource="Patient/p2")] == [2]


def test_append_many_numbers_consecutively_in_one_transaction(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db")
    log.append(actor="a", action="read", resource="Patient/0", source="s", reason="r")
    got = log.append_many(
        [Draft("a", "read", f"Patient/{i}", "s", "r", detail=str(i)) for i in range(1, 4)]
    )
    assert [e.seq for e in got] == [2, 3, 4]
    assert log.append_many([]) == []
    assert log.verify(KEY.public_key()).ok


def _child_append(path: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append(actor="child", action="read", resource=f"Patient/{i}", source="c", reason="r")


def test_a_forked_child_does_not_reuse_the_parents_connection(tmp_path: Path) -> None:
    """Regression guard: the per-thread connection must be reopened in a forked process."""
    log = AuditLog(tmp_path / "a.db")
    log.append(actor="parent", action="read", resource="Patient/p", source="p", reason="r")

    def child() -> None:
        log.append(actor="child", action="read", resource="Patient/c", source="c", reason="r")

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    log.append(actor="parent", action="read", resource="Patient/p", source="p", reason="r")
    assert [e.actor for e in log.entries()] == ["parent", "child", "parent"]
    assert log.verify(KEY.public_key()).ok


# ---- a mixed workload from several processes ----------------------------------------------


def _worker(db_url: str, audit_path: str, n: int, worker: int) -> None:
    store = AuditedRecordStore.open(db_url, audit=audit_path)
    for i in range(n):
        who = f"w{worker}"
        with audit_context(actor=who, source=f"10.0.0.{worker}", reason=f"round {i}"):
            store.patient(SEPSIS)
            store.observations(SEPSIS, codes=["8867-4"])
            if i % 3 == 0:
                store.put(
                    [{"resourceType": "Patient", "id": f"w{worker}-{i}"}], source=f"w{worker}"
                )
        store.audit.append(
            actor=f"w{worker}", action="score", resource=f"Patient/{SEPSIS}", source="x", reason="r"
        )
    store.close()


def test_the_chain_verifies_after_a_concurrent_mixed_workload(demo_db: str, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "record.db"
    shutil.copy(demo_db.removeprefix("sqlite:///"), copy)
    audit_path = tmp_path / "audit.db"
    log = AuditLog(audit_path)
    mp = multiprocessing.get_context("spawn")
    n = 12
    procs = [
        mp.Process(target=_worker, args=(f"sqlite:///{copy}", str(audit_path), n, w))
        for w in range(4)
    ]
    for p in procs:
        p.start()
    # this process writes too, through threads with their own connections
    threads = [threading.Thread(target=_child_append, args=(str(audit_path), 10)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log.checkpoint(KEY)
    report = log.verify(KEY.public_key())
    assert report.ok, report.problems
    per_worker = n + n // 3 + n  # a read per round, a write every third round, a score
    assert report.entries == 4 * per_worker + 20
    times = [e.ts for e in log.entries()]
    assert times == sorted(times)  # time taken under the write lock: never backwards
