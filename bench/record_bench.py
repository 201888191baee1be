"""Benchmark of the record store: import of all 40 Synthea patients; prints JSON on stdout.

For each configuration a fresh process imports the 40 bundles (118,018 resources) into an empty
store and reports wall time, resources per second and peak resident memory (the importing
process, and its reader processes when there are workers). Configurations: SQLite with full
FHIR model validation (1 and 2 reader processes), SQLite without validation, a re-import of the
same files (upsert path), and PostgreSQL (a throwaway server on 127.0.0.1, started here) when its
binaries are installed. Also: validation speed alone on the largest bundle.

Run: ``python bench/record_bench.py --data ../shared/data`` (add ``--quick`` for 8 patients).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any


def _child(args: argparse.Namespace) -> None:
    from medagent.record import RecordStore

    files = sorted(Path(args.files).glob("*.json"))[: args.limit or None]
    store = RecordStore.open(args.url)
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
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.workers > 1:
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out["peak_rss_reader_mb"] = round(children, 1)
    sys.stdout.write(json.dumps(out) + "\n")


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
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        files = Path(tmp) / "fhir"
        db = Path(tmp)
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
    sys.stdout.write(json.dumps({"record_import": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
