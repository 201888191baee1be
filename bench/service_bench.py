"""Service benchmark: CDS Hooks patient-view with prefetch under 32 concurrent clients; page load.

Imports the 40 Synthea patients (``--data``/synthea-40.tar.xz) into a throwaway SQLite store,
starts ``uvicorn medagent.service.app:create_app --factory`` in its own process on 127.0.0.1,
and sends ``patient-view`` calls with the full prefetch of each patient (Patient, Conditions,
MedicationRequests, the Observations with the scales' LOINC codes newest first, Procedures:
what an EHR answers to the discovery's prefetch templates), each with its own signed JWT, from a
bounded number of concurrent httpx clients (bounded in requests and in time). Prints JSON:
throughput, p50/p95/p99 latency, and the load time of the clinician page for the largest
patient (HTTP, and in Chromium when it is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

TYPES = [
    ("conditions", "Condition"),
    ("medications", "MedicationRequest"),
    ("observations", "Observation"),
    ("procedures", "Procedure"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _newest_first(resource: dict[str, Any]) -> str:
    period = resource.get("effectivePeriod") or resource.get("performedPeriod") or {}
    return str(
        resource.get("effectiveDateTime")
        or resource.get("performedDateTime")
        or period.get("start")
        or ""
    )


def _prefetch(store: Any, patient_id: str) -> dict[str, Any]:
    """What an EHR answers to the discovery's prefetch templates (`code=`, `_sort=-date`)."""
    from medagent.service.cds import _observation_wanted

    out: dict[str, Any] = {"patient": store.get("Patient", patient_id)}
    for key, rtype in TYPES:
        found, total = store.search(rtype, patient=patient_id, count=100_000)
        if rtype == "Observation":
            found = [r for r in found if _observation_wanted(r)]
        if rtype in ("Observation", "Procedure"):
            found = sorted(found, key=_newest_first, reverse=True)[:1000]
        total = len(found)
        out[key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "entry": [{"resource": r} for r in found],
        }
    return out


async def _load(
    url: str, bodies: list[bytes], *, tokens: list[str], clients: int, time_limit: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    deadline = time.perf_counter() + time_limit

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            headers = {"Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json"}
            start = time.perf_counter()
            response = await client.post(url, content=bodies[i], headers=headers)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors += 1
                if errors <= 3:
                    sys.stderr.write(f"{response.status_code} {response.text[:300]}\n")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def _page_load(base: str, token: str, *, patient_id: str) -> dict[str, Any]:
    path = f"/app/patients/{patient_id}"
    times = []
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(5):
            start = time.perf_counter()
            r = client.get(base + path)
            times.append(time.perf_counter() - start)
            r.raise_for_status()
    out: dict[str, Any] = {"http_median_ms": round(1000 * statistics.median(times), 1)}
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        out["browser"] = "skipped: playwright not installed"
        return out
    if not chromium.exists():
        out["browser"] = "skipped: /usr/bin/chromium missing"
        return out
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    loads = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=args)
        page = browser.new_page()
        page.goto(f"{base}/auth/session?token={token}&next=/app")
        for _ in range(5):
            start = time.perf_counter()
            page.goto(base + path, wait_until="load")
            loads.append(time.perf_counter() - start)
        browser.close()
    out["browser_load_median_ms"] = round(1000 * statistics.median(loads), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="calls per patient")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds of load, at most")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--quick", action="store_true", help="8 patients, 2 rounds")
    args = parser.parse_args()
    archive = Path(args.data) / "synthea-40.tar.xz"
    if not archive.is_file():
        sys.stdout.write(json.dumps({"service": {"skipped": f"{archive} not found"}}) + "\n")
        return
    from medagent.record import RecordStore
    from medagent.secure.access import Principal, Role
    from medagent.service.security import issue_session
    from medagent.service.settings import Settings

    with tempfile.TemporaryDirectory(prefix="medagent-service-bench-") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        files = sorted((Path(tmp) / "fhir").glob("*.json"))
        if args.quick:
            files = files[:8]
        db_url = f"sqlite:///{tmp}/bench.db"
        store = RecordStore.open(db_url)
        started = time.perf_counter()
        store.import_paths(files, validate=False)
        imported = time.perf_counter() - started
        patients = [p.id for p in store.patients()]
        sizes = {pid: sum(store.counts(pid).values()) for pid in patients}
        largest = max(sizes, key=lambda k: sizes[k])
        prefetches = {pid: json.dumps(_prefetch(store, pid)).encode() for pid in patients}
        store.close()

        key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        public.update({"kid": "bench", "alg": "ES384"})
        jwks = Path(tmp) / "jwks.json"
        jwks.write_text(json.dumps({"keys": [public]}))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        secret = secrets.token_hex(32)
        env = {
            **os.environ,
            "MEDAGENT_DB": db_url,
            "MEDAGENT_BASE_URL": base,
            "MEDAGENT_CDS_JWKS": str(jwks),
            "MEDAGENT_SECRET": secret,
            "MEDAGENT_AUDIT": f"{tmp}/audit.db",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "medagent.service.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--workers", str(args.workers)],
            env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the service did not start")
                time.sleep(0.2)
            service_url = f"{base}/cds-services/medagent-patient-view"
            rounds = 2 if args.quick else args.rounds
            order = [pid for _ in range(rounds) for pid in patients]
            bodies = []
            for pid in order:
                body = json.loads(prefetches[pid])
                bodies.append(
                    json.dumps(
                        {
                            "hook": "patient-view",
                            "hookInstance": str(uuid.uuid4()),
                            "context": {"userId": "Practitioner/bench", "patientId": pid},
                            "prefetch": body,
                        }
                    ).encode()
                )
            now = int(time.time())
            tokens = [
                jwt.encode(
                    {
                        "iss": "bench-ehr",
                        "sub": "bench",
                        "aud": service_url,
                        "iat": now,
                        "exp": now + 900,
                        "jti": str(uuid.uuid4()),
                    },
                    key,
                    algorithm="ES384",
                    headers={"kid": "bench"},
                )
                for _ in order
            ]
            # Warm-up, not timed: every worker loads the scale library on its first calls.
            warm_tokens = [
                jwt.encode(
                    {
                        "iss": "bench-ehr",
                        "sub": "bench",
                        "aud": service_url,
                        "iat": now,
                        "exp": now + 900,
                        "jti": str(uuid.uuid4()),
                    },
                    key,
                    algorithm="ES384",
                    headers={"kid": "bench"},
                )
                for _ in range(2 * len(patients))
            ]
            asyncio.run(
                _load(
                    service_url,
                    bodies[: len(warm_tokens)],
                    tokens=warm_tokens,
                    clients=4,
                    time_limit=300,
                )
            )
            # One client, one call per patient: the service time without queueing.
            solo_tokens = [
                jwt.encode(
                    {"iss": "bench-ehr", "sub": "bench", "aud": service_url, "iat": now,
                     "exp": now + 900, "jti": str(uuid.uuid4())},
                    key, algorithm="ES384", headers={"kid": "bench"},
                )
                for _ in patients
            ]  # fmt: skip
            solo, solo_errors, _ = asyncio.run(
                _load(
                    service_url,
                    bodies[: len(patients)],
                    tokens=solo_tokens,
                    clients=1,
                    time_limit=300,
                )
            )
            latencies, errors, elapsed = asyncio.run(
                _load(
                    service_url,
                    bodies,
                    tokens=tokens,
                    clients=args.clients,
                    time_limit=args.time_limit,
                )
            )
            state = SimpleNamespace(settings=Settings(secret=secret.encode()))
            token = issue_session(state, Principal.grant("bench", Role.CLINICIAN))  # type: ignore[arg-type]
            page = _page_load(base, token, patient_id=largest)
        finally:
            server.terminate()
            server.wait(timeout=30)
    sizes_sorted = sorted(sizes.values())
    result = {
        "service": {
            "patients": len(patients),
            "import_seconds": round(imported, 1),
            "resources_per_patient": {
                "median": statistics.median(sizes_sorted),
                "max": sizes_sorted[-1],
            },
            "patient_view_one_client": {
                "requests": len(solo),
                "errors": solo_errors,
                "p50_ms": round(1000 * _percentile(solo, 50), 1),
                "p95_ms": round(1000 * _percentile(solo, 95), 1),
                "max_ms": round(1000 * max(solo), 1),
            },
            "patient_view_with_prefetch": {
                "clients": args.clients,
                "server_workers": args.workers,
                "requests": len(latencies),
                "errors": errors,
                "seconds": round(elapsed, 2),
                "throughput_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
                "p50_ms": round(1000 * _percentile(latencies, 50), 1),
                "p95_ms": round(1000 * _percentile(latencies, 95), 1),
                "p99_ms": round(1000 * _percentile(latencies, 99), 1),
                "goal_p95_ms": 200,
            },
            "clinician_page_largest_patient": {
                "patient": largest,
                "resources": sizes[largest],
                **page,
            },
        }
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
