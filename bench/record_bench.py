"""Benchmark of the record store: import of all 40 Synthea patients; prints JSON on stdout.

For each configuration a fresh process imports the 40 bundles (118,018 resources) into an empty
store and reports wall time, resources per second and peak resident memory (the importing
process, and its reader processes when there are workers). Configurations: SQLite with full
FHIR model validation (1 and 2 reader processes), SQLite without validation, a re-import of the
same files (upsert path), and PostgreSQL (a throwaway server on 127.0.0.1, started here) when its
binaries are installed. Also: validation speed alone on the largest bundle.

Encryption at rest is on in every configuration (as by default), under a throwaway keyring made
for the run (``MEDAGENT_KEK_FILE``). ``encryption_at_rest`` measures its overhead side by side:
the same import with encryption off and on, in alternating order (structural checks only, where
the crypto weighs most, three rounds; full validation with 2 readers, two rounds); the crypto
alone per resource of the largest bundle (seal = new data key, wrap, encrypt; open = unwrap,
decrypt); then populate-and-score latency of every scale for the patient with the most
resources on the plaintext and the encrypted store, paired (alternating which goes first), warm.

Run: ``python bench/record_bench.py --data ../shared/data`` (add ``--quick`` for 8 patients).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from medagent.memory import peak_rss_mb


def _child(args: argparse.Namespace) -> None:
    from medagent.record import RecordStore

    files = sorted(Path(args.files).glob("*.json"))[: args.limit or None]
    store = RecordStore.open(args.url, encrypt=not args.no_encrypt)
    start = time.perf_counter()
    report = store.import_paths(files, validate=not args.no_validate, workers=args.workers)
    first = time.perf_counter() - start
    out: dict[str, Any] = {
        "files": len(report.imported),
        "failed": len(report.failed),
        "resources": report.resources,
        "seconds": round(first, 2),
        "resources_per_s": round(report.resources / first),
    }
    if args.reimport:
        start = time.perf_counter()
        again = store.import_paths(files, validate=not args.no_validate, workers=args.workers)
        second = time.perf_counter() - start
        out["reimport_seconds"] = round(second, 2)
        out["reimport_resources_per_s"] = round(again.resources / second)
        out["stored_after_reimport"] = sum(store.counts().values())
    store.close()
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if args.workers > 1:
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out["peak_rss_reader_mb"] = round(children, 1)
    sys.stdout.write(json.dumps(out) + "\n")


_peak_rss_mb = peak_rss_mb  # the tests read the child's figure through this name


def _run(files: Path, url: str, *extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--files", str(files), "--url", url, *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _validation_speed(files: Path) -> dict[str, Any]:
    from medagent.record.importer import read_file

    largest = max(files.glob("*.json"), key=lambda p: p.stat().st_size)
    read_file(largest, validate=True)  # warm the model classes
    timings = {}
    for validate in (False, True):
        start = time.perf_counter()
        batch = read_file(largest, validate=validate)
        timings[validate] = time.perf_counter() - start
    n = len(batch.resources)
    return {
        "bundle": largest.name,
        "resources": n,
        "read_structural_s": round(timings[False], 3),
        "read_validated_s": round(timings[True], 3),
        "validated_resources_per_s": round(n / timings[True]),
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


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


def _populate_paired(plain_db: Path, sealed_db: Path, repeat: int) -> dict[str, Any]:
    """Populate-and-score every scale on the plaintext and the encrypted store, paired."""
    from medagent.errors import InputError
    from medagent.populate import populate, populate_all
    from medagent.record import RecordStore
    from medagent.scales import all_scales

    stores = {
        "off": RecordStore.open(str(plain_db), encrypt=False),
        "on": RecordStore.open(str(sealed_db)),
    }
    assert stores["off"].key_usage() == {None: sum(stores["off"].counts().values())}
    assert None not in stores["on"].key_usage()
    largest = max(stores["on"].patients(), key=lambda p: p.resource_count)
    at = _last_observation(stores["on"], largest.id)
    scales = list(all_scales())

    def one(mode: str, scale: Any) -> float:
        start = time.perf_counter()
        with contextlib.suppress(InputError):  # a formula refusing an empty call
            populate(scale, largest.id, store=stores[mode], at=at).evaluate()
        return (time.perf_counter() - start) * 1000

    def whole(mode: str) -> float:
        start = time.perf_counter()
        for population in populate_all(scales, largest.id, store=stores[mode], at=at):
            with contextlib.suppress(InputError):
                population.evaluate()
        return (time.perf_counter() - start) * 1000

    for scale in scales:  # warm both
        one("off", scale), one("on", scale)
    per_call: dict[str, list[float]] = {"off": [], "on": []}
    library: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(repeat):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        for scale in scales:
            for mode in order:
                per_call[mode].append(one(mode, scale))
        for mode in order:
            library[mode].append(whole(mode))
    for store in stores.values():
        store.close()

    def summary(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 2), "p95": round(_p95(values), 2)}

    return {
        "patient_resources": largest.resource_count,
        "scales": len(scales),
        "calls_per_mode": len(per_call["on"]),
        "per_scale_ms": {mode: summary(v) for mode, v in per_call.items()},
        "whole_library_populate_all_ms": {mode: summary(v) for mode, v in library.items()},
        "overhead_per_scale_median_pct": round(
            100 * (statistics.median(per_call["on"]) / statistics.median(per_call["off"]) - 1), 1
        ),
        "overhead_whole_library_median_pct": round(
            100 * (statistics.median(library["on"]) / statistics.median(library["off"]) - 1), 1
        ),
    }


def _import_rounds(
    files: Path, db: Path, name: str, rounds: int, *extra: str
) -> dict[str, list[dict[str, Any]]]:
    """Fresh imports with encryption off and on, alternating which goes first."""
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for round_ in range(rounds):
        for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            switch = ["--no-encrypt"] if mode == "off" else []
            url = str(db / f"enc-{name}-{mode}-{round_}.db")
            runs[mode].append(_run(files, url, *extra, *switch))
    return runs


def _import_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    rates = {m: [int(r["resources_per_s"]) for r in rs] for m, rs in runs.items()}
    best = {m: max(v) for m, v in rates.items()}
    median = {m: statistics.median(v) for m, v in rates.items()}
    return {
        "resources": runs["on"][0]["resources"],
        "resources_per_s": rates,
        "seconds": {m: [r["seconds"] for r in rs] for m, rs in runs.items()},
        "overhead_pct_best_rounds": round(100 * (best["off"] / best["on"] - 1), 1),
        "overhead_pct_medians": round(100 * (median["off"] / median["on"] - 1), 1),
    }


def _crypto_cost(files: Path) -> dict[str, Any]:
    """Seal and open every resource of the largest bundle in memory: the crypto alone."""
    from medagent.record.importer import read_file
    from medagent.record.store import RESOURCE_SEALING
    from medagent.secure.at_rest import LocalKeyProvider, open_row_key, open_text

    largest = max(files.glob("*.json"), key=lambda p: p.stat().st_size)
    bodies = [
        ((str(r["resourceType"]), str(r["id"])), json.dumps(r, separators=(",", ":")))
        for r in read_file(largest, validate=False).resources
    ]
    keys = LocalKeyProvider.generate("bench")
    seal_s: list[float] = []
    open_s: list[float] = []
    for _ in range(5):
        start = time.perf_counter()
        sealed = [RESOURCE_SEALING.seal(keys, key, {"body": body}) for key, body in bodies]
        middle = time.perf_counter()
        for (key, _body), row in zip(bodies, sealed, strict=True):
            context = RESOURCE_SEALING.context(key)
            data_key = open_row_key(keys, row["kek_id"], row["wrapped_key"], context)
            open_text(data_key, context, "body", row["body"])
        seal_s.append(middle - start)
        open_s.append(time.perf_counter() - middle)
    n = len(bodies)
    return {
        "resources": n,
        "mean_body_bytes": round(sum(len(b) for _, b in bodies) / n),
        "seal_us_per_resource_best": round(min(seal_s) / n * 1e6, 2),
        "open_us_per_resource_best": round(min(open_s) / n * 1e6, 2),
    }


def _encryption_overhead(files: Path, db: Path, limit: list[str], repeat: int) -> dict[str, Any]:
    """Import with encryption off and on (same files, fresh stores), then populate latency."""
    structural = _import_rounds(files, db, "structural", 3, "--no-validate", *limit)
    validated = _import_rounds(files, db, "validated", 2, "--workers", "2", *limit)
    return {
        "import_structural_only": _import_summary(structural),
        "import_validated_2_processes": _import_summary(validated),
        "crypto_largest_bundle": _crypto_cost(files),
        "populate": _populate_paired(
            db / "enc-structural-off-0.db", db / "enc-structural-on-0.db", repeat
        ),
    }


def main() -> None:
    """Parse arguments; run each configuration in its own process; print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--quick", action="store_true", help="8 patients instead of 40")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-validate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reimport", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-encrypt", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="populate rounds per store")
    parser.add_argument(
        "--only-encryption", action="store_true", help="only the encryption-at-rest comparison"
    )
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    archive = Path(args.data) / "synthea-40.tar.xz"
    if not archive.is_file():
        sys.stdout.write(json.dumps({"record_import": {"skipped": f"{archive} not found"}}) + "\n")
        return
    limit = ["--limit", "8"] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="medagent-bench-") as tmp:
        from medagent.secure.at_rest import ENV_FILE_VAR, ENV_VAR, create_keyring

        keyring = Path(tmp) / "keyring"
        create_keyring(keyring)  # never the user's keyring; children inherit the variable
        os.environ[ENV_FILE_VAR] = str(keyring)
        os.environ.pop(ENV_VAR, None)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        files = Path(tmp) / "fhir"
        db = Path(tmp)
        repeat = 2 if args.quick else args.repeat
        if args.only_encryption:
            overhead = _encryption_overhead(files, db, limit, repeat)
            sys.stdout.write(json.dumps({"encryption_at_rest": overhead}, indent=2) + "\n")
            return
        results: dict[str, Any] = {
            "patients": 8 if args.quick else 40,
            "validation_largest_bundle": _validation_speed(files),
            "sqlite_validated_1_process": _run(files, str(db / "a.db"), *limit),
            "sqlite_validated_2_processes": _run(
                files, str(db / "b.db"), "--workers", "2", "--reimport", *limit
            ),
            "sqlite_structural_only": _run(files, str(db / "c.db"), "--no-validate", *limit),
        }
        from medagent.record.pgtemp import PostgresUnavailableError, TempPostgres

        try:
            with TempPostgres() as pg:
                url = pg.create_database("bench")
                results["postgresql_validated_2_processes"] = _run(
                    files, url, "--workers", "2", "--reimport", *limit
                )
        except PostgresUnavailableError as exc:
            results["postgresql_validated_2_processes"] = {"skipped": str(exc)}
        results["encryption_at_rest"] = _encryption_overhead(files, db, limit, repeat)
    sys.stdout.write(json.dumps({"record_import": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
