"""Population-wide batch scoring on Dask: every patient's latest values through every monitored
scale, on a local cluster by default or on any Dask cluster by address."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from medagent.memory import peak_rss_mb
from medagent.monitor.config import MonitorConfig, default_config
from medagent.monitor.readings import Reading

if TYPE_CHECKING:
    from medagent.monitor.scoring import Scorer


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A patient's latest fresh value of each signal, and whether SpO2 scale 2 applies."""

    patient_id: str
    values: dict[str, object]
    hypercapnic: bool = False


def snapshot(
    patient_id: str, readings: Iterable[Reading], *, config: MonitorConfig, hypercapnic: bool
) -> Snapshot:
    """The latest value per signal, keeping only those still fresh at the newest reading."""
    latest: dict[str, Reading] = {}
    for r in readings:
        if r.signal not in latest or r.effective >= latest[r.signal].effective:
            latest[r.signal] = r
    if not latest:
        return Snapshot(patient_id, {}, hypercapnic)
    at: datetime = max(r.effective for r in latest.values())
    values: dict[str, object] = {
        sid: r.value for sid, r in latest.items() if at - r.effective <= config.signal(sid).max_age
    }
    return Snapshot(patient_id, values, hypercapnic)


def score_partition(snapshots: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Every monitored scale on each snapshot (runs inside a Dask worker)."""
    from medagent.monitor.scoring import score_inputs

    scorer = _scorer()
    out = []
    for snap in snapshots:
        row: dict[str, Any] = {"patient_id": snap.patient_id}
        for scale_id, spec in scorer.specs.items():
            if spec.only_when_labs and not (set(snap.values) & scorer.lab_signals):
                continue
            inputs = score_inputs(spec, snap.values, hypercapnic=snap.hypercapnic)
            result = scorer.evaluate(scale_id, inputs)
            esc = scorer.escalation(result)
            row[scale_id] = {
                "value": result.value,
                "minimum": result.minimum,
                "maximum": result.maximum,
                "complete": result.complete,
                "escalation": esc.rule.id if esc else None,
            }
        out.append(row)
    return out


@cache
def _scorer() -> Scorer:
    """One scorer per process, so its memo of exact inputs serves every partition."""
    from medagent.monitor.scoring import Scorer

    return Scorer(default_config())


def _warm() -> None:
    _scorer()


def batch_score(
    snapshots: Sequence[Snapshot],
    *,
    address: str | None = None,
    workers: int = 2,
    partitions: int | None = None,
) -> dict[str, Any]:
    """Score every snapshot on Dask (a local cluster of ``workers`` processes unless ``address``
    names a scheduler). Returns the rows, escalation counts and the workers' peak memory."""
    import dask.bag as db
    from distributed import Client, LocalCluster

    cluster = None
    if address is None:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            host="127.0.0.1",
        )  # fmt: skip
        client = Client(cluster)  # type: ignore[no-untyped-call]
    else:
        client = Client(address)  # type: ignore[no-untyped-call]
    try:
        client.run(_warm)  # load the scale library in every worker before timing
        n_parts = partitions or max(1, len(client.scheduler_info()["workers"]) * 4)
        started = time.perf_counter()
        bag = db.from_sequence(list(snapshots), npartitions=n_parts)  # type: ignore[no-untyped-call]
        rows: list[dict[str, Any]] = bag.map_partitions(score_partition).compute()
        compute_seconds = time.perf_counter() - started
        worker_peaks = client.run(peak_rss_mb)
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
    escalations: Counter[str] = Counter()
    for row in rows:
        for value in row.values():
            if isinstance(value, dict) and value.get("escalation"):
                escalations[value["escalation"]] += 1
    return {
        "rows": rows,
        "patients": len(rows),
        "compute_seconds": compute_seconds,
        "escalations": dict(escalations),
        "worker_peak_rss_mb": max(worker_peaks.values(), default=0.0),
        "client_peak_rss_mb": peak_rss_mb(),
    }
