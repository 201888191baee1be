"""Benchmark of the recommender; prints one JSON document on stdout.

- Synthea: the 40 patients of ``synthea-40.tar.xz`` imported into a temporary SQLite store; per
  patient, the time to build the context from the record (as of now; for a deceased patient, the
  time of death) and recommend, and the number of entries recommended (default list length, and
  with the maximum of 10);
- MedCalc-Bench: top-1/3/5 recall of the row's calculator among the recommendations for its
  Patient Note alone (family entries and members), when the CSV is there;
- vignettes: precision and recall on the shipped suite.

Run: ``python bench/recommend_bench.py --data ../shared/data`` (``--quick``: 8 patients, no CSV).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_synthea(archive: Path, limit: int | None) -> dict[str, Any]:
    from medagent.recommend import DEFAULT_LIMIT, MAX_LIMIT, from_record, recommend
    from medagent.record import RecordStore
    from medagent.scales import all_scales

    library = all_scales()
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        files = sorted(Path(tmp).rglob("*.json"))[:limit]
        with RecordStore.open(f"sqlite:///{tmp}/record.db") as store:
            start = time.perf_counter()
            store.import_paths(files, validate=False, workers=2)
            imported = time.perf_counter() - start
            latencies: list[float] = []
            counts: list[int] = []
            counts_max: list[int] = []
            excluded: list[int] = []
            seen: dict[str, int] = {}
            for patient in store.patients():
                start = time.perf_counter()
                ctx = from_record(store, patient.id, scales=library)
                rec = recommend(ctx, scales=library)
                latencies.append(time.perf_counter() - start)
                counts.append(len(rec.entries))
                excluded.append(len(rec.excluded))
                counts_max.append(len(recommend(ctx, scales=library, limit=MAX_LIMIT).entries))
                for entry in rec.entries:
                    seen[entry.id] = seen.get(entry.id, 0) + 1
    return {
        "patients": len(latencies),
        "import_seconds": round(imported, 1),
        "latency_ms": {
            "median": round(1000 * statistics.median(latencies), 1),
            "p95": round(1000 * _percentile(latencies, 0.95), 1),
            "max": round(1000 * max(latencies), 1),
        },
        "entries_per_patient": {
            "limit": DEFAULT_LIMIT,
            "median": statistics.median(counts),
            "max": max(counts),
            "with_limit_10": {"median": statistics.median(counts_max), "max": max(counts_max)},
            "none": sum(1 for c in counts if c == 0),
        },
        "excluded_per_patient_median": statistics.median(excluded),
        "most_recommended": dict(sorted(seen.items(), key=lambda kv: -kv[1])[:10]),
    }


def bench_medcalc(csv_path: Path) -> dict[str, Any]:
    from medagent.eval.recommend import run_medcalc_csv

    data = run_medcalc_csv(csv_path).to_dict()
    weakest = sorted(data["by_calculator"], key=lambda c: (c["top3"], c["calculator_id"]))[:10]
    return {
        "overall": data["overall"],
        "entries_per_note": data["entries_per_note"],
        "seconds_per_note": data["seconds_per_note"],
        "weakest_top3": [
            {"calculator_id": c["calculator_id"], "scale": c["scale"], "top3": c["top3"]}
            for c in weakest
        ],
    }


def bench_vignettes() -> dict[str, Any]:
    from medagent.eval.recommend import run_vignettes

    data = run_vignettes().to_dict()
    return {
        "overall": data["overall"],
        "en": data["en"],
        "zh": data["zh"],
        "failures": [f["id"] for f in data["failures"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--quick", action="store_true", help="8 patients, no MedCalc-Bench")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    archive = args.data / "synthea-40.tar.xz"
    if archive.exists():
        out["synthea"] = bench_synthea(archive, 8 if args.quick else None)
    else:
        out["synthea"] = {"skipped": f"{archive} not found"}
    csv_path = args.data / "medcalc-bench-v1.0-dev.csv"
    if csv_path.exists() and not args.quick:
        out["medcalc_dev"] = bench_medcalc(csv_path)
    else:
        out["medcalc_dev"] = {"skipped": "quick run" if args.quick else f"{csv_path} not found"}
    out["vignettes"] = bench_vignettes()
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
