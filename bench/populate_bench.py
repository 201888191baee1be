"""Benchmark of auto-population: latency per scale on the largest Synthea patient, fill rates.

Imports the 40 Synthea patients (structural checks only, to save time) into a fresh SQLite file,
then prints JSON on stdout:

- ``latency``: populate-and-score (``populate(...).evaluate()``) of every scale in the library
  for the patient with the most resources, at the time of their last observation, warm (each
  scale once before timing), ``--repeat`` times each: median and p95 over all calls (and of the
  population step alone), the slowest scales, and the time for the whole library in one go, one
  scale at a time and with ``populate_all`` (the record read once for every scale).
- ``fill_rate``: over the 40 patients (each at their last observation), for each scale, the share
  of its record-bound inputs that were filled **when the data existed**. Data existed for an input
  when the record holds, at or before that time, a final/amended/corrected observation with one
  of its LOINC codes, a condition (not entered-in-error) or medication with one of its codes, or
  the Patient's birth date / gender. Also reported: the share filled when the data existed
  *within the input's lookback window* (or, for conditions, active at that time).

With ``--audit`` the store is a ``medagent.record.audited.AuditedRecordStore`` writing to a fresh
audit log, and every timed populate call (and every ``populate_all`` round) runs in its own audit
context, as one service request or one CLI command would: each call then writes one ``read``
entry (untimed set-up reads fall to a default context naming the OS user). ``audit_overhead``
then times every scale on the plain and the audited store alternately on the same database
(so machine load hits both alike) and reports the added time per call and the cost of one
append with a reused and with a new connection. ``latency.audit_entries`` says how many entries
were written. The fill rates are computed outside any timing, under one context.

Run: ``python bench/populate_bench.py --data ../shared/data`` (``--quick`` for 8 patients).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any


def _bundles(data: Path, tmp: Path) -> list[Path]:
    folder = data / "synthea" / "fhir"
    if not folder.is_dir():
        archive = data / "synthea-40.tar.xz" if data.is_dir() else data
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        folder = tmp / "fhir"
    return sorted(folder.glob("*.json"))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _last_observation(store: Any, patient_id: str) -> datetime:
    import sqlalchemy as sa

    from medagent.record.store import R

    with store.engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(R.time_start)).where(
                R.patient_id == patient_id, R.resource_type == "Observation"
            )
        ).scalar_one()
    return last if isinstance(last, datetime) else datetime.now()


def _evaluate(population: Any) -> None:
    from medagent.errors import InputError

    with contextlib.suppress(InputError):  # a formula refusing an empty call (opioids)
        population.evaluate()


def _request(store: Any, reason: str) -> contextlib.AbstractContextManager[Any]:
    """One audit context (a request) when the store is audited, else nothing."""
    from medagent.record.audited import AuditedRecordStore, audit_context

    if isinstance(store, AuditedRecordStore):
        return audit_context(actor="bench", source="127.0.0.1", reason=reason)
    return contextlib.nullcontext()


def latency(store: Any, patient_id: str, repeat: int) -> dict[str, Any]:
    from medagent.populate import populate
    from medagent.scales import all_scales

    at = _last_observation(store, patient_id)
    scales = list(all_scales())
    for scale in scales:  # warm: plans compiled, unit converters cached, SQLite pages read
        with _request(store, f"warm {scale.id}"):
            _evaluate(populate(scale, patient_id, store=store, at=at))
    samples: list[float] = []
    fill_only: list[float] = []
    per_scale: dict[str, list[float]] = defaultdict(list)
    whole: list[float] = []
    for _ in range(repeat):
        start_all = time.perf_counter()
        for scale in scales:
            start = time.perf_counter()
            with _request(store, f"populate scale {scale.id}"):
                population = populate(scale, patient_id, store=store, at=at)
            filled = time.perf_counter()
            _evaluate(population)
            elapsed = (time.perf_counter() - start) * 1000
            samples.append(elapsed)
            fill_only.append((filled - start) * 1000)
            per_scale[scale.id].append(elapsed)
        whole.append((time.perf_counter() - start_all) * 1000)
    from medagent.populate import populate_all

    together: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        with _request(store, "populate every scale"):
            for population in populate_all(scales, patient_id, store=store, at=at):
                _evaluate(population)
        together.append((time.perf_counter() - start) * 1000)
    slowest = sorted(per_scale.items(), key=lambda kv: -statistics.median(kv[1]))[:5]
    return {
        "patient": patient_id,
        "resources": store.counts(patient_id),
        "at": at.isoformat(),
        "scales": len(scales),
        "calls": len(samples),
        "per_scale_ms": {
            "median": round(statistics.median(samples), 2),
            "p95": round(_p(samples, 0.95), 2),
            "max": round(max(samples), 2),
        },
        "populate_only_ms": {
            "median": round(statistics.median(fill_only), 2),
            "p95": round(_p(fill_only, 0.95), 2),
        },
        "slowest_scales_median_ms": {k: round(statistics.median(v), 2) for k, v in slowest},
        "whole_library_ms": {
            "median": round(statistics.median(whole), 1),
            "p95": round(_p(whole, 0.95), 1),
        },
        "whole_library_populate_all_ms": {
            "median": round(statistics.median(together), 1),
            "p95": round(_p(together, 0.95), 1),
        },
        "goal_p95_ms": 50,
        "audit_entries": _entries(store),
    }


def audit_overhead(store: Any, audited: Any, patient_id: str, repeat: int) -> dict[str, Any]:
    """Paired timing: each scale populated on the plain and on the audited store (same database),
    alternating which goes first, each audited call in its own context (one entry per call);
    plus the cost of one audit append (reused connection, as now, and a new connection per
    entry, as before)."""
    from medagent.populate import populate
    from medagent.scales import all_scales
    from medagent.secure.audit import AuditLog

    at = _last_observation(store, patient_id)
    scales = list(all_scales())
    plain_ms: list[float] = []
    audited_ms: list[float] = []
    for round_ in range(repeat + 1):
        for i, scale in enumerate(scales):
            pair: dict[str, float] = {}
            order = (store, audited) if (i + round_) % 2 else (audited, store)
            for target in order:
                start = time.perf_counter()
                with _request(target, f"populate scale {scale.id}"):
                    populate(scale, patient_id, store=target, at=at)
                pair["a" if target is audited else "p"] = (time.perf_counter() - start) * 1000
            if round_:  # the first round warms both
                plain_ms.append(pair["p"])
                audited_ms.append(pair["a"])
    diffs = [a - p for a, p in zip(audited_ms, plain_ms, strict=True)]
    log: AuditLog = audited.audit
    append_reused: list[float] = []
    append_fresh: list[float] = []
    for bucket, reconnect in ((append_reused, False), (append_fresh, True)):
        for i in range(200):
            if reconnect:
                log.close()  # what every append did before: open, append, close
            start = time.perf_counter()
            log.append(
                actor="bench", action="read", resource=f"Patient/{i}", source="b", reason="x"
            )
            bucket.append((time.perf_counter() - start) * 1000)
    log.close()
    return {
        "calls": len(diffs),
        "populate_plain_ms": {
            "median": round(statistics.median(plain_ms), 3),
            "p95": round(_p(plain_ms, 0.95), 3),
        },
        "populate_audited_ms": {
            "median": round(statistics.median(audited_ms), 3),
            "p95": round(_p(audited_ms, 0.95), 3),
        },
        "added_per_call_ms": {
            "median": round(statistics.median(diffs), 3),
            "p95": round(_p(diffs, 0.95), 3),
        },
        "append_ms_reused_connection": {
            "median": round(statistics.median(append_reused), 3),
            "p95": round(_p(append_reused, 0.95), 3),
        },
        "append_ms_new_connection": {
            "median": round(statistics.median(append_fresh), 3),
            "p95": round(_p(append_fresh, 0.95), 3),
        },
    }


def _entries(store: Any) -> int | None:
    audit = getattr(store, "audit", None)
    return None if audit is None else sum(1 for _ in audit.entries())


def _evidence(store: Any, patient_id: str, at: datetime) -> dict[str, Any]:
    """What the record holds at or before ``at``: LOINC codes with their latest time, condition
    codes (ever, and active at ``at``), medication codes."""
    from medagent.populate import default_defaults
    from medagent.scales import all_scales

    loinc = sorted({c for s in all_scales() for i in s.inputs for c in i.codes.loinc})
    latest: dict[str, datetime] = {}
    for obs in store.observations(
        patient_id, codes=loinc, until=at, statuses=default_defaults().observation_statuses
    ):
        if obs.effective is not None and obs.value is not None:
            latest[obs.code.code] = max(obs.effective, latest.get(obs.code.code, obs.effective))
    ever: set[tuple[str, str]] = set()
    for system in ("icd10", "snomed"):
        for cond in store.conditions(patient_id, prefixes=[""], system=system):
            if cond.verification_status != "entered-in-error" and (
                cond.onset is None or cond.onset <= at
            ):
                ever.update((c.system, c.code) for c in cond.codes)
    active: set[tuple[str, str]] = set()
    for system in ("icd10", "snomed"):
        for cond in store.conditions(patient_id, prefixes=[""], system=system, active_at=at):
            active.update((c.system, c.code) for c in cond.codes)
    meds = {(c.system, c.code) for m in store.medications(patient_id, until=at) for c in m.codes}
    return {"latest": latest, "ever": ever, "active": active, "meds": meds}


def _matches(spec: Any, codes: set[tuple[str, str]]) -> bool:
    for system, code in codes:
        if "snomed" in system and code in spec.codes.snomed:
            return True
        if "icd-10" in system and any(code.startswith(p) for p in spec.codes.icd10):
            return True
        if "rxnorm" in system and code in spec.codes.rxnorm:
            return True
        if "atc" in system and any(code.startswith(p) for p in spec.codes.atc):
            return True
    return False


def fill_rates(store: Any, patients: list[str]) -> dict[str, Any]:
    from medagent.populate import default_defaults, parse_duration, populate, record_bound
    from medagent.populate.engine import _demographic
    from medagent.scales import all_scales

    d = default_defaults()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for patient_id in patients:
        at = _last_observation(store, patient_id)
        evidence = _evidence(store, patient_id, at)
        summary = store.patient(patient_id)
        for scale in all_scales():
            pop = populate(scale, patient_id, store=store, at=at, stored_overrides=False)
            c = counts[scale.id]
            for spec in scale.inputs:
                if not record_bound(spec, d):
                    continue
                c["bound"] += 1
                filled = spec.id in pop.filled
                c["filled"] += filled
                demographic = _demographic(spec, d)
                if demographic == "age":
                    ever = window = summary.birth_date is not None
                elif demographic == "sex":
                    ever = window = bool(summary.gender)
                elif spec.codes.loinc:
                    seen = [
                        evidence["latest"][x] for x in spec.codes.loinc if x in evidence["latest"]
                    ]
                    lookback = spec.lookback or d.kind_for(spec.codes.loinc).lookback
                    ever = bool(seen)
                    window = any(t >= at - parse_duration(lookback) for t in seen)
                else:
                    ever = _matches(spec, evidence["ever"] | evidence["meds"])
                    window = _matches(spec, evidence["active"] | evidence["meds"])
                c["existed"] += ever
                c["filled_when_existed"] += filled and ever
                c["existed_in_window"] += window
                c["filled_when_in_window"] += filled and window
    per_scale: dict[str, Any] = {}
    for scale_id, c in sorted(counts.items()):
        if not c["bound"]:
            continue
        per_scale[scale_id] = {
            "record_bound_inputs": c["bound"],
            "data_existed": c["existed"],
            "fill_rate_when_data_existed": (
                round(c["filled_when_existed"] / c["existed"], 3) if c["existed"] else None
            ),
            "fill_rate_when_in_window": (
                round(c["filled_when_in_window"] / c["existed_in_window"], 3)
                if c["existed_in_window"]
                else None
            ),
            "share_of_bound_filled": round(c["filled"] / c["bound"], 3),
        }
    rated = {k: v for k, v in per_scale.items() if v["fill_rate_when_data_existed"] is not None}
    total_existed = sum(counts[k]["existed"] for k in rated)
    total_filled = sum(counts[k]["filled_when_existed"] for k in rated)
    lowest = sorted(rated.items(), key=lambda kv: kv[1]["fill_rate_when_data_existed"])[:8]
    return {
        "patients": len(patients),
        "overall_fill_rate_when_data_existed": round(total_filled / total_existed, 3),
        "lowest": {k: v["fill_rate_when_data_existed"] for k, v in lowest},
        "per_scale": per_scale,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="8 patients, 5 repeats")
    parser.add_argument("--db", help="use this already-imported store instead of importing")
    parser.add_argument("--audit", action="store_true", help="audit every access (see above)")
    parser.add_argument("--no-fill-rates", action="store_true", help="latency only")
    args = parser.parse_args()
    from medagent.record import RecordStore
    from medagent.record.audited import AuditedRecordStore, process_context

    with tempfile.TemporaryDirectory(prefix="populate-bench-") as tmp:
        start = time.perf_counter()
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = (
            AuditedRecordStore.open(
                url, audit=Path(tmp) / "audit.db", default=process_context("benchmark")
            )
            if args.audit
            else RecordStore.open(url)
        )
        with _request(store, "benchmark set-up"):
            if not args.db:
                files = _bundles(args.data, Path(tmp))
                if args.quick:
                    files = sorted(files, key=lambda p: p.stat().st_size)[-8:]
                store.import_paths(files, validate=False)
            imported = time.perf_counter() - start
            patients = store.patients()
        largest = max(patients, key=lambda p: p.resource_count)
        out: dict[str, Any] = {
            "audited": args.audit,
            "import_seconds": round(imported, 1),
            "latency": latency(store, largest.id, 5 if args.quick else args.repeat),
        }
        if args.audit:
            plain = RecordStore(store.engine)
            out["audit_overhead"] = audit_overhead(
                plain, store, largest.id, 3 if args.quick else min(args.repeat, 5)
            )
        if not args.no_fill_rates:
            with _request(store, "fill-rate benchmark"):
                out["fill_rate"] = fill_rates(store, [p.id for p in patients])
        store.close()
    sys.stdout.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
