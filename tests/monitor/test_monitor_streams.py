"""Redis Streams fan-out: two worker processes, one killed mid-stream; its pending messages are
reclaimed and nothing is lost or stored (scored) twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import sqlalchemy as sa
from monitor_helpers import T0, Clock

from medagent.monitor import db
from medagent.monitor.core import Monitor
from medagent.monitor.readings import Reading
from medagent.monitor.streams import GROUP, STREAM, connect, decode, encode, ensure_group, publish
from medagent.record.store import RecordStore

N_PATIENTS = 20
PER_PATIENT = 100


def readings() -> list[Reading]:
    out = []
    for i in range(PER_PATIENT):
        for p in range(N_PATIENTS):
            signal, loinc = ("heart_rate", "8867-4") if i % 2 else ("respiratory_rate", "9279-1")
            value = 70.0 + i * 0.8 if i % 2 else 14.0 + i * 0.15  # deteriorating: alerts open
            out.append(Reading(f"msg-{p}-{i}", f"s{p}", signal, loinc, value, "/min",
                               T0 + timedelta(minutes=i), "test"))  # fmt: skip
    return out


def test_entry_round_trip() -> None:
    r = readings()[0]
    back, _ = decode(encode(r, T0))
    assert back == r


def worker(db_path: str, url: str, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "medagent.monitor.streams", "--db", db_path, "--redis", url,
         "--name", name, "--batch", "40", "--claim-idle-ms", "500", "--pause", "0.03",
         "--idle-exit", "2", "--no-record"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(db.observations)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count(sa.distinct(db.observations.c.message_id)))
        ).scalar_one()
    return int(total), int(distinct)


def by_worker(engine: sa.Engine) -> dict[str, int]:
    column = db.observations.c.worker
    with engine.connect() as conn:
        rows = conn.execute(sa.select(column, sa.func.count()).group_by(column)).all()
    return {str(w): int(n) for w, n in rows}


def test_killed_worker_loses_nothing(redis_url: str, db_path: str) -> None:
    store = RecordStore.open(db_path)
    Monitor(store, clock=Clock(T0))  # creates the tables
    client = connect(redis_url)
    ensure_group(client)
    sent = readings()
    publish(client, sent)
    a, b = worker(db_path, redis_url, "w1"), worker(db_path, redis_url, "w2")
    try:
        deadline = time.monotonic() + 30
        while by_worker(store.engine).get("w1", 0) < 80 and time.monotonic() < deadline:
            time.sleep(0.02)
        a.send_signal(signal.SIGKILL)  # mid-stream: w1 holds read, unacknowledged entries
        a.wait(10)
        left = client.xpending_range(STREAM, GROUP, min="-", max="+", count=1000, consumername="w1")
        out, _ = b.communicate(timeout=60)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
    stats = json.loads(out.strip().splitlines()[-1])
    total, distinct = stored(store.engine)
    assert total == distinct == len(sent)  # nothing lost, nothing stored twice
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    assert left and stats["reclaimed"] >= len(left)  # w2 took over what w1 left
    with store.engine.connect() as conn:
        workers = dict(
            conn.execute(
                sa.select(db.observations.c.worker, sa.func.count()).group_by(
                    db.observations.c.worker
                )
            ).all()
        )
        live = conn.execute(
            sa.select(db.alerts.c.patient_id, db.alerts.c.rule, sa.func.count())
            .where(db.alerts.c.open_key.is_not(None))
            .group_by(db.alerts.c.patient_id, db.alerts.c.rule)
        ).all()
    assert workers.get("w1", 0) > 0 and workers.get("w2", 0) > 0
    assert live and all(n == 1 for *_, n in live)  # one live alert per patient and rule
    # the twins rebuilt from the store score every patient on all of its readings
    monitor = Monitor(store, clock=Clock(T0), seed_from_record=False)
    monitor.rebuild()
    assert all(len(monitor.twin(f"s{p}").signals["heart_rate"].values) == PER_PATIENT // 2
               for p in range(N_PATIENTS))  # fmt: skip
