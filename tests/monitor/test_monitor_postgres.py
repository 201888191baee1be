"""The monitor on PostgreSQL: migrations, ingest, dedup of alerts and rebuild on a throwaway
server (skipped without the binaries, a failure under CI=true)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from monitor_helpers import T0, Clock, vitals

from medagent.monitor.core import Monitor
from medagent.record.pgtemp import TempPostgres
from medagent.record.store import RecordStore


@pytest.fixture(scope="module")
def pg_url(postgres_server: TempPostgres) -> str:
    return postgres_server.create_database("monitor_test")


def test_monitor_on_postgresql(pg_url: str) -> None:
    clock = Clock(T0)
    monitor = Monitor(RecordStore.open(pg_url), clock=clock)
    for i in range(6):
        monitor.ingest_fhir(vitals(f"v{i}", T0 + timedelta(minutes=10 * i), hr=120 + 5 * i, rr=24))
    assert monitor.ingest_fhir(vitals("v0", T0)).duplicates == 7
    alerts = [a for a in monitor.alerts(patient_id="p1") if a.rule == "news2"]
    assert len(alerts) == 1 and alerts[0].count > 1
    monitor.acknowledge(alerts[0].id, user="nurse")
    restarted = Monitor(RecordStore.open(pg_url), clock=clock)
    restarted.rebuild()
    before = json.dumps(monitor.twin("p1").snapshot(), sort_keys=True, default=str)
    assert json.dumps(restarted.twin("p1").snapshot(), sort_keys=True, default=str) == before
