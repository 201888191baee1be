"""Benchmarks of medagent.secure on 127.0.0.1; prints one JSON document on stdout.

- handshake: full mutual-auth TLS 1.3 handshakes over TCP, sequential, new connection each time:
  the quantum-safe link (pyOpenSSL, X25519MLKEM768, ML-DSA-65 certificates) vs classical TLS 1.3
  with Python's ``ssl`` (system OpenSSL, X25519, ECDSA P-256 certificates); plus pyOpenSSL with
  the classical X25519 + P-256 setting, to separate the library from the algorithms;
- bulk: one connection each, 32 MiB from client to server, 15 interleaved rounds; median and
  best MB/s and the PQ/classical ratios (client and server share one 2-core machine and one
  process, so other load on the machine shows: the best-round ratio is the steadier figure);
- at_rest: per-record AES-256-GCM envelope cost, and store put/get with vs without encryption
  (same SQLite access pattern, so the difference is the encryption);
- outbound_deid (with ``--data`` holding ``synthea-40.tar.xz``): every DocumentReference note of
  the 40 Synthea patients goes through the LLM extractor (``medagent.notes.llm``), the hospital
  gateway, the PQ link and the compute gateway to a local fake OpenAI-compatible server that
  keeps every request body; known identifiers of each patient (names, identifier values,
  telecoms, address parts, birth date, the note's date and every date written in it) are
  counted in the notes ("before": what the extractor sent verbatim before de-identification
  was wired in) and in the bodies the fake model received ("after").

Run: ``python bench/secure_bench.py --data /work/shared/data`` (``--quick`` for a short run;
``--only outbound_deid`` for one part).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import socket
import sqlite3
import ssl
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cryptography
import OpenSSL
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medagent.secure.at_rest import EncryptedStore, LocalKeyProvider, decrypt_record, encrypt_record
from medagent.secure.deid import (
    Deidentifier,
    PatientIdentifiers,
    known_identifier_values,
    leaked,
)
from medagent.secure.gateway import ComputeGateway, HospitalGateway
from medagent.secure.tls import (
    HYBRID_GROUP,
    LinkIdentity,
    LinkPolicy,
    accept,
    connect,
    generate_link_identity,
    make_context,
    recv_some,
    send_all,
)

CHUNK = 64 * 1024


def _ecdsa_identity(directory: Path, name: str) -> LinkIdentity:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt.pem", directory / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return LinkIdentity(cert_path=cert_path, key_path=key_path)


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


class _PyOpenSSLServer:
    """Serves link connections: handshake, then read until close (bulk) or close at once."""

    def __init__(self, policy: LinkPolicy) -> None:
        self.policy = policy
        self.context = make_context(policy)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.received = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return str(host), int(port)

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            try:
                conn = accept(sock, self.context, self.policy)
                while data := recv_some(conn, sock, timeout=60):
                    self.received += len(data)
                send_all(conn, sock, b"k", timeout=10)
                conn.shutdown()
            except Exception as exc:  # a benchmark server reports, never dies
                print(f"server error: {exc}", file=sys.stderr)
            finally:
                sock.close()

    def close(self) -> None:
        self.listener.close()


class _SSLServer:
    """The same server with Python's ssl."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.received = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return str(host), int(port)

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as tls:
                    while data := tls.recv(CHUNK):
                        self.received += len(data)
                    tls.sendall(b"k")
            except (OSError, ssl.SSLError) as exc:
                print(f"server error: {exc}", file=sys.stderr)
            finally:
                raw.close()

    def close(self) -> None:
        self.listener.close()


def _pq_client(server: _PyOpenSSLServer, policy: LinkPolicy) -> Callable[[bytes], float]:
    context = make_context(policy)  # built once, as HospitalGateway does

    def run(payload: bytes) -> float:
        start = time.perf_counter()
        conn, sock = connect(server.address, policy, context)
        handshake = time.perf_counter() - start
        try:
            view = memoryview(payload)
            for i in range(0, len(view), CHUNK):
                send_all(conn, sock, view[i : i + CHUNK].tobytes(), timeout=60)
            conn.shutdown()
            while recv_some(conn, sock, timeout=60):
                pass
        finally:
            sock.close()
        return handshake

    return run


def _ssl_client(server: _SSLServer, ctx: ssl.SSLContext) -> Callable[[bytes], float]:
    def run(payload: bytes) -> float:
        start = time.perf_counter()
        raw = socket.create_connection(server.address)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = ctx.wrap_socket(raw, server_hostname="compute")
        handshake = time.perf_counter() - start
        try:
            view = memoryview(payload)
            for i in range(0, len(view), CHUNK):
                tls.sendall(view[i : i + CHUNK])
            plain = tls.unwrap()  # close_notify, then read the server's answer on the raw socket
            plain.recv(1)
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()
        return handshake

    return run


def _ssl_contexts(server_id: LinkIdentity, client_id: LinkIdentity) -> tuple[Any, Any]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(server_id.cert_path, server_id.key_path)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(client_id.cert_path)
    server.num_tickets = 0
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.check_hostname = False
    client.load_verify_locations(server_id.cert_path)
    client.load_cert_chain(client_id.cert_path, client_id.key_path)
    return server, client


def bench_link(*, handshakes: int, bulk_mib: int, rounds: int) -> dict[str, Any]:
    """Handshake latency and bulk throughput for the three configurations."""
    tmp = Path(tempfile.mkdtemp(prefix="medagent-bench-"))
    pq_s, pq_c = (generate_link_identity(tmp, name=n) for n in ("pq-server", "pq-client"))
    ec_s, ec_c = (_ecdsa_identity(tmp, n) for n in ("ec-server", "ec-client"))
    pq_server = _PyOpenSSLServer(LinkPolicy(identity=pq_s, peer_pins=frozenset({pq_c.pin})))
    pq_run = _pq_client(pq_server, LinkPolicy(identity=pq_c, peer_pins=frozenset({pq_s.pin})))
    classical = LinkPolicy(
        identity=ec_s, peer_pins=frozenset({ec_c.pin}), groups="X25519", required_group="x25519"
    )
    py_server = _PyOpenSSLServer(classical)
    py_run = _pq_client(
        py_server, replace(classical, identity=ec_c, peer_pins=frozenset({ec_s.pin}))
    )
    ssl_server_ctx, ssl_client_ctx = _ssl_contexts(ec_s, ec_c)
    ssl_server = _SSLServer(ssl_server_ctx)
    ssl_run = _ssl_client(ssl_server, ssl_client_ctx)
    runs = {"pq_pyopenssl": pq_run, "classical_python_ssl": ssl_run, "classical_pyopenssl": py_run}

    results: dict[str, Any] = {}
    for run in runs.values():
        for _ in range(10):
            run(b"")  # warm up
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(handshakes):  # interleaved, so that noise hits every configuration alike
        for name, run in runs.items():
            samples[name].append(run(b""))
    for name in runs:
        results[name] = {"handshake": _stats(samples[name])}

    payload = os.urandom(bulk_mib * 1024 * 1024)
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):  # interleaved as well
        for name, run in runs.items():
            start = time.perf_counter()
            run(payload)
            speeds[name].append(len(payload) / (time.perf_counter() - start) / 1e6)
    for name in runs:
        results[name]["bulk_MBps"] = round(statistics.median(speeds[name]), 1)
        results[name]["bulk_MBps_best"] = round(max(speeds[name]), 1)

    pq, ref = results["pq_pyopenssl"], results["classical_python_ssl"]
    results["comparison"] = {
        "handshake_overhead_ms_median": round(
            pq["handshake"]["median_ms"] - ref["handshake"]["median_ms"], 3
        ),
        "bulk_ratio_pq_over_classical": round(pq["bulk_MBps"] / ref["bulk_MBps"], 3),
        "bulk_ratio_best_rounds": round(pq["bulk_MBps_best"] / ref["bulk_MBps_best"], 3),
        "goal_handshake_overhead_under_ms": 5,
        "goal_bulk_ratio_at_least": 0.7,
    }
    for server in (pq_server, py_server, ssl_server):
        server.close()
    return results


class _PlainStore:
    """The EncryptedStore access pattern (a connection per operation) without encryption."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE r (record_id TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def put(self, record_id: str, data: bytes) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        with db:
            db.execute("INSERT OR REPLACE INTO r VALUES (?, ?)", (record_id, data))
        db.close()

    def get(self, record_id: str) -> bytes:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        row = db.execute("SELECT data FROM r WHERE record_id = ?", (record_id,)).fetchone()
        db.close()
        return bytes(row[0])


def bench_at_rest(*, records: int) -> dict[str, Any]:
    """Envelope cost per record and put/get latency with and without encryption."""
    provider = LocalKeyProvider.generate()
    resource = json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/abc"},
            "effectiveDateTime": "2026-01-01T10:00:00Z",
            "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org"},
            "note": [{"text": "x" * 600}],
        }
    ).encode()
    start = time.perf_counter()
    sealed = [encrypt_record(f"Observation/{i}", resource, provider) for i in range(records)]
    enc_us = (time.perf_counter() - start) / records * 1e6
    start = time.perf_counter()
    for rec in sealed:
        decrypt_record(rec, provider)
    dec_us = (time.perf_counter() - start) / records * 1e6

    tmp = Path(tempfile.mkdtemp(prefix="medagent-bench-"))
    out: dict[str, Any] = {
        "record_bytes": len(resource),
        "envelope_encrypt_us": round(enc_us, 1),
        "envelope_decrypt_us": round(dec_us, 1),
    }
    stores: dict[str, Any] = {
        "plain": _PlainStore(tmp / "plain.sqlite"),
        "encrypted": EncryptedStore(tmp / "enc.sqlite", provider),
    }
    best: dict[str, dict[str, float]] = {n: {"put_us": 1e18, "get_us": 1e18} for n in stores}
    for _ in range(5):  # alternate the stores and keep the best round of each: less noise
        for name, store in stores.items():
            start = time.perf_counter()
            for i in range(records):
                store.put(f"Observation/{i}", resource)
            put_us = (time.perf_counter() - start) / records * 1e6
            start = time.perf_counter()
            for i in range(records):
                store.get(f"Observation/{i}")
            get_us = (time.perf_counter() - start) / records * 1e6
            best[name]["put_us"] = min(best[name]["put_us"], round(put_us, 1))
            best[name]["get_us"] = min(best[name]["get_us"], round(get_us, 1))
    out.update(best)
    out["put_overhead_pct"] = round(
        (out["encrypted"]["put_us"] / out["plain"]["put_us"] - 1) * 100, 1
    )
    out["get_overhead_pct"] = round(
        (out["encrypted"]["get_us"] / out["plain"]["get_us"] - 1) * 100, 1
    )
    return out


class _FakeLLM(ThreadingHTTPServer):
    bodies: list[bytes]


class _FakeLLMHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible stand-in that keeps every request body and answers all nulls."""

    server: _FakeLLM

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(raw)
        schema = json.loads(raw)["response_format"]["json_schema"]["schema"]
        answer = {k: {"value": None, "unit": None, "quote": None} for k in schema["properties"]}
        reply = json.dumps({"choices": [{"message": {"content": json.dumps(answer)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        return


_NOTE_DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b")


def _synthea_patients(
    archive: Path, limit: int | None
) -> list[tuple[PatientIdentifiers, list[tuple[str, str]]]]:
    out: list[tuple[PatientIdentifiers, list[tuple[str, str]]]] = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            if limit is not None and len(out) >= limit:
                break
            if not (member.isfile() and member.name.endswith(".json")):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            found = [e["resource"] for e in json.load(handle)["entry"]]
            patient = next(r for r in found if r["resourceType"] == "Patient")
            notes = [
                (r["date"][:10], base64.b64decode(r["content"][0]["attachment"]["data"]).decode())
                for r in found
                if r["resourceType"] == "DocumentReference"
            ]
            out.append((PatientIdentifiers.from_fhir_patient(patient), notes))
    return out


def _referral_letter(patient: PatientIdentifiers) -> str | None:
    """A note harder than Synthea writes: every identifier of the record, some reformatted."""
    phones = [t for t in patient.telecoms if "@" not in t]
    if len(patient.identifiers) < 3 or not phones or not patient.dates:
        return None
    name = max(patient.names, key=len)
    digits = "".join(c for c in phones[0] if c.isdigit())
    born = patient.dates[0]
    return (
        f"Referral for {name} (MRN {patient.identifiers[1]}, SSN {patient.identifiers[2]}), "
        f"DOB {born[5:7]}/{born[8:10]}/{born[:4]}.\nContact: ({digits[:3]}) {digits[3:6]}-"
        f"{digits[6:]} / {', '.join(t for t in patient.telecoms if '@' in t)}.\n"
        f"Address: {', '.join(patient.addresses)}.\n{name.split()[0].upper()} is a 94 "
        f"year-old with dyspnoea. BP 150/90 mmHg, Na 134, platelets 250000/uL. Driver's "
        f"license {patient.identifiers[-1]}. Seen 03/15/2019 and 2019-04-02."
    )


class _Counts:
    """Known identifiers of each note before, and in what the model received after."""

    def __init__(self) -> None:
        self.notes = self.chars = 0
        self.before: dict[str, int] = {}
        self.after: dict[str, int] = {}
        self.examples: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {
            "notes": self.notes,
            "identifiers_before": sum(self.before.values()),
            "identifiers_after": sum(self.after.values()),
            "by_kind_before": dict(sorted(self.before.items())),
            "by_kind_after": dict(sorted(self.after.items())),
            "leak_examples": self.examples,
            "mean_note_chars": round(self.chars / max(self.notes, 1)),
        }


def bench_outbound_deid(archive: Path, *, limit: int | None) -> dict[str, Any]:
    """Identifiers in outbound LLM requests before / after de-identification, over the link."""
    from medagent.llm.client import ChatClient
    from medagent.notes.llm import extract_llm
    from medagent.scales import get_scale
    from medagent.secure.outbound import OutboundPolicy

    patients = _synthea_patients(archive, limit)
    fake = _FakeLLM(("127.0.0.1", 0), _FakeLLMHandler)
    fake.bodies = []
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    synthea, letters = _Counts(), _Counts()
    with tempfile.TemporaryDirectory() as tmp:
        ids = {n: generate_link_identity(Path(tmp), name=n) for n in ("hospital", "compute")}
        compute = ComputeGateway(
            upstream=("127.0.0.1", int(fake.server_address[1])),
            policy=LinkPolicy(identity=ids["compute"], peer_pins=frozenset({ids["hospital"].pin})),
        )
        compute.start()
        hospital = HospitalGateway(
            remote=compute.address,
            policy=LinkPolicy(identity=ids["hospital"], peer_pins=frozenset({ids["compute"].pin})),
        )
        hospital.start()
        gateway_url = f"http://127.0.0.1:{hospital.address[1]}"
        client = ChatClient(
            gateway_url + "/v1", "fake", policy=OutboundPolicy.build(gateways=[gateway_url])
        )
        scale = get_scale("cha2ds2_vasc")
        deid = Deidentifier(os.urandom(32))
        start = time.perf_counter()
        for patient, patient_notes in patients:
            reid = deid.new_map(patient)
            letter = _referral_letter(patient)
            work = [(synthea, d, n) for d, n in patient_notes]
            work += [(letters, "2020-01-01", letter)] if letter else []
            for counts, note_date, note in work:
                known = known_identifier_values(patient, (note_date,))
                for written in _NOTE_DATES.findall(note):
                    known.setdefault(written, "date")
                present = leaked(note, known)
                first = len(fake.bodies)
                extract_llm(
                    scale, note, client=client, patient=patient, reid=reid, deidentifier=deid
                )
                for raw in fake.bodies[first:]:
                    received = json.loads(raw)["messages"][-1]["content"]
                    for value in dict.fromkeys(
                        leaked(received, present) + leaked(raw.decode(), present)
                    ):
                        counts.after[known[value]] = counts.after.get(known[value], 0) + 1
                        if len(counts.examples) < 20:
                            counts.examples.append(
                                f"{patient.patient_id}: {known[value]} {value!r}"
                            )
                for value in present:
                    counts.before[known[value]] = counts.before.get(known[value], 0) + 1
                counts.notes += 1
                counts.chars += len(note)
        elapsed = time.perf_counter() - start
        hospital.stop()
        compute.stop()
    fake.shutdown()
    fake.server_close()
    requests = synthea.notes + letters.notes
    return {
        "patients": len(patients),
        "synthea_notes": synthea.as_dict(),
        "referral_letters": letters.as_dict(),
        "requests_received": len(fake.bodies),
        "forwarded_over_link": compute.forwarded,
        "link_refusals": len(hospital.refusals) + len(compute.refusals),
        "seconds": round(elapsed, 2),
        "ms_per_request_end_to_end": round(1000 * elapsed / max(requests, 1), 2),
        "note": "an identifier counts once per note it occurs in (whole words, any case); "
        "before = in the note the extractor sent verbatim before de-identification was wired in",
    }


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke test")
    parser.add_argument(
        "--data", type=Path, help="folder holding synthea-40.tar.xz (for outbound_deid)"
    )
    parser.add_argument(
        "--only", choices=["link", "at_rest", "outbound_deid"], help="run one part only"
    )
    args = parser.parse_args(argv)
    handshakes, bulk_mib, rounds, records = (20, 8, 1, 300) if args.quick else (200, 32, 15, 3000)
    from cryptography.hazmat.backends.openssl.backend import backend

    report: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cryptography": cryptography.__version__,
            "pyOpenSSL": OpenSSL.__version__,
            "pq_openssl": backend.openssl_version_text(),
            "python_ssl_openssl": ssl.OPENSSL_VERSION,
            "pq_group": HYBRID_GROUP,
        },
    }
    if args.only in (None, "link"):
        report["link"] = bench_link(handshakes=handshakes, bulk_mib=bulk_mib, rounds=rounds)
    if args.only in (None, "at_rest"):
        report["at_rest"] = bench_at_rest(records=records)
    if args.only in (None, "outbound_deid"):
        archive = args.data / "synthea-40.tar.xz" if args.data else None
        if archive is None or not archive.is_file():
            report["outbound_deid"] = {"skipped": "pass --data with synthea-40.tar.xz"}
        else:
            report["outbound_deid"] = bench_outbound_deid(archive, limit=4 if args.quick else None)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
