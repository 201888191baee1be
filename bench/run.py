"""Benchmarks of the scale engine; prints one JSON document (machine-readable) on stdout.

- peer: medagent vs the PyPI package ``medcalc-bench`` (the benchmark's own implementations) on
  identical inputs — the Relevant Entities of the MedCalc-Bench rows — for every calculator both
  have; ratio = peer time / our time (above 1: we are faster). ``ours_us`` renders our
  explanation as text on every call, as the peer does; ``ours_trace_only_us`` records the trace
  the explanation is generated from and leaves the text to be rendered on demand;
- cold start of ``medagent score`` (a fresh process), and the time to load the whole library.

Run: ``make bench`` or ``python bench/run.py --data ../shared/data``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from medagent.eval import medcalc
from medagent.scales import evaluate, get_scale
from peer_params import PEER, peer_function, peer_params


def _time_per_call(fn: Any, calls: list[Any], *, min_seconds: float = 0.2) -> float:
    """Mean seconds per call over repeated passes through ``calls`` (at least ``min_seconds``)."""
    passes = 0
    start = time.perf_counter()
    while True:
        for call in calls:
            fn(call)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / (passes * len(calls))


def bench_peer(csv_path: Path) -> dict[str, Any]:
    rows = medcalc.read_rows(csv_path)
    maps = medcalc.calculator_maps()
    per_calc: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    ours_total = peer_total = trace_total = 0.0
    for cid in sorted({r.calculator_id for r in rows}):
        if cid not in maps or cid not in PEER:
            continue
        scale = get_scale(maps[cid].scale)
        ours_inputs: list[Any] = []
        peer_inputs: list[Any] = []
        try:
            fn = peer_function(cid)
        except (ImportError, AttributeError) as exc:
            unavailable[str(cid)] = f"the peer cannot load it: {exc}"
            continue
        for row in (r for r in rows if r.calculator_id == cid):
            try:
                ours = medcalc.entities_to_inputs(maps[cid], row.entities)
                evaluate(scale, ours)
                theirs = peer_params(cid, row.entities)
                with contextlib.redirect_stdout(io.StringIO()):
                    fn(theirs)
            except Exception:  # a row one side cannot compute is left out of both
                continue
            ours_inputs.append(ours)
            peer_inputs.append(theirs)
        if not ours_inputs:
            continue

        def ours_text(inputs: Any, scale: Any = scale) -> str:
            return evaluate(scale, inputs).explanation  # the explanation rendered as text

        def ours_trace(inputs: Any, scale: Any = scale) -> Any:
            return evaluate(scale, inputs)  # the trace recorded; text rendered on demand

        def peer_fn(params: Any, fn: Any = fn) -> Any:
            return fn(params)

        with contextlib.redirect_stdout(io.StringIO()):
            t_peer = _time_per_call(peer_fn, peer_inputs)
        t_ours = _time_per_call(ours_text, ours_inputs)
        t_trace = _time_per_call(ours_trace, ours_inputs)
        ours_total += t_ours * len(ours_inputs)
        trace_total += t_trace * len(ours_inputs)
        peer_total += t_peer * len(peer_inputs)
        per_calc[str(cid)] = {
            "scale": scale.id,
            "rows": len(ours_inputs),
            "ours_us": round(t_ours * 1e6, 2),
            "ours_trace_only_us": round(t_trace * 1e6, 2),
            "peer_us": round(t_peer * 1e6, 2),
            "ratio": round(t_peer / t_ours, 2),
            "ratio_trace_only": round(t_peer / t_trace, 2),
        }
    slower = [k for k, v in per_calc.items() if v["ratio"] < 1]
    return {
        "calculators": len(per_calc),
        "overall_ratio": round(peer_total / ours_total, 2) if ours_total else None,
        "overall_ratio_trace_only": round(peer_total / trace_total, 2) if trace_total else None,
        "slower_than_peer": slower,
        "peer_unavailable": unavailable,
        "per_calculator": per_calc,
    }


def bench_cold_start(repeats: int = 5) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("medagent")
    cmd = [str(exe), "score", "bmi", "weight=70kg", "height=175cm"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    load = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t=time.perf_counter(); from medagent.scales import all_scales; "
            "n=len(all_scales()); print(n, time.perf_counter()-t)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {
        "score_cold_start_s": {
            "median": round(statistics.median(times), 3),
            "max": round(max(times), 3),
        },
        "library_load_s": round(float(load[1]), 3),
        "library_scales": int(load[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    out: dict[str, Any] = {"cold_start": bench_cold_start()}
    csv_path = args.data / "medcalc-bench-v1.0-dev.csv"
    if csv_path.is_file():
        out["peer"] = bench_peer(csv_path)
    else:
        out["peer"] = {"skipped": f"{csv_path} not found"}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
