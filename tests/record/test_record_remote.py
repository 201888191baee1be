"""The remote FHIR reader against our FHIR API served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from medagent.record import RecordStore, RemoteFHIRError
from medagent.record.fhir_api import create_app
from medagent.record.remote import (
    ASSERTION_TYPE,
    RemoteFHIR,
    SmartBackendAuth,
    discover_token_url,
    import_remote,
)
from medagent.secure.outbound import OutboundPolicy, OutboundPolicyError

CLIENT_ID = "medagent-test"
OFFSITE = "http://203.0.113.7/fhir"  # TEST-NET-3: refused before any connection is tried


@pytest.fixture(autouse=True)
def _onsite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server plays the hospital's own FHIR server on the LAN: declared on-site."""
    monkeypatch.setenv("MEDAGENT_ONSITE_HOSTS", "127.0.0.1")
    monkeypatch.delenv("MEDAGENT_OUTBOUND", raising=False)


@dataclass
class AuthServer:
    """What the test's token endpoint knows: client public keys and the tokens it issued."""

    public_keys: dict[str, object] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    grants: int = 0


def _add_token_endpoint(app: FastAPI, auth: AuthServer) -> None:
    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_assertion_type") != ASSERTION_TYPE
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        assertion = form["client_assertion"]
        header = jwt.get_unverified_header(assertion)
        key = auth.public_keys.get(header["alg"])
        try:
            claims = jwt.decode(
                assertion,
                key,  # type: ignore[arg-type]
                algorithms=[header["alg"]],
                audience=str(request.url),
            )
        except jwt.PyJWTError as exc:
            return JSONResponse({"error": "invalid_client", "detail": str(exc)}, status_code=401)
        if claims["iss"] != CLIENT_ID or claims["sub"] != CLIENT_ID:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued = uuid.uuid4().hex
        auth.tokens.add(issued)
        auth.grants += 1
        return JSONResponse(
            {"access_token": issued, "token_type": "bearer", "expires_in": 300, "scope": "x"}
        )


@dataclass
class Served:
    base_url: str
    auth: AuthServer
    patient_id: str


@pytest.fixture
def served(sqlite_store: RecordStore, precious: Path) -> Iterator[Served]:
    """Our FHIR API (bearer tokens required) plus a token endpoint, served by uvicorn."""
    (pid,) = sqlite_store.import_file(precious).patients
    auth = AuthServer()
    app = create_app(
        sqlite_store, token_validator=auth.tokens.__contains__, token_endpoint="/token"
    )
    _add_token_endpoint(app, auth)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}/fhir", auth, pid)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _keys(algorithm: str) -> tuple[bytes, object]:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, private.public_key()


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_remote_reader_with_smart_backend_auth(
    served: Served, algorithm: str, tmp_path: Path
) -> None:
    pem, public = _keys(algorithm)
    served.auth.public_keys[algorithm] = public
    token_url = discover_token_url(served.base_url)
    auth = SmartBackendAuth(
        token_url=token_url, client_id=CLIENT_ID, private_key=pem, algorithm=algorithm, kid="k1"
    )
    with RemoteFHIR(served.base_url, auth=auth) as remote:
        assert "Observation" in remote.searchable_types()
        # paging: 150 Observations in pages of 7
        observations = list(
            remote.search("Observation", {"patient": served.patient_id, "_count": "7"})
        )
        assert len(observations) == 150 == len({o["id"] for o in observations})
        target = RecordStore.open(str(tmp_path / "copy.db"))
        result = import_remote(target, remote, served.patient_id)
        assert served.auth.grants == 1  # the token is reused across requests
    counts = target.counts()
    assert counts["Observation"] == 150 and counts["Condition"] == 21 and counts["Patient"] == 1
    assert result.patients == (served.patient_id,)
    assert target.patient(served.patient_id).name == "Precious Stark"
    assert len(target.observations(served.patient_id, codes=["8480-6"])) == 15
    target.close()


def test_remote_since_and_errors(served: Served) -> None:
    pem, public = _keys("ES384")
    served.auth.public_keys["ES384"] = public
    auth = SmartBackendAuth(
        token_url=discover_token_url(served.base_url),
        client_id=CLIENT_ID,
        private_key=pem,
        algorithm="ES384",
    )
    with RemoteFHIR(served.base_url, auth=auth) as remote:
        later = datetime.now(UTC) + timedelta(hours=1)
        fresh = remote.patient_resources(served.patient_id, since=later)
        assert [r["resourceType"] for r in fresh] == ["Patient"]  # nothing changed since
        with pytest.raises(RemoteFHIRError, match="404"):
            remote.read("Patient", "nobody")
    with RemoteFHIR(served.base_url) as anonymous, pytest.raises(RemoteFHIRError, match="401"):
        anonymous.metadata()
    wrong_key, _ = _keys("ES384")
    bad = SmartBackendAuth(
        token_url=discover_token_url(served.base_url),
        client_id=CLIENT_ID,
        private_key=wrong_key,
        algorithm="ES384",
    )
    with RemoteFHIR(served.base_url, auth=bad) as remote, pytest.raises(RemoteFHIRError):
        remote.metadata()


def test_offsite_server_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OutboundPolicyError, match="MEDAGENT_ONSITE_HOSTS"):
        RemoteFHIR(OFFSITE)
    with pytest.raises(OutboundPolicyError, match="MEDAGENT_GATEWAY_URL"):
        discover_token_url(OFFSITE)
    monkeypatch.delenv("MEDAGENT_ONSITE_HOSTS")
    with pytest.raises(OutboundPolicyError):  # loopback is not trusted implicitly
        RemoteFHIR("http://127.0.0.1:9/fhir")
    # the hospital gateway's local address is allowed
    gateway = OutboundPolicy.build(gateways=["http://127.0.0.1:18443"])
    RemoteFHIR("http://127.0.0.1:18443/fhir", policy=gateway).close()


class _Pager(BaseHTTPRequestHandler):
    """A server whose search points its `next` link off-site, and whose read redirects there."""

    def do_GET(self) -> None:
        if self.path.startswith("/fhir/Observation"):
            body = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Observation", "id": "o1"}}],
                "link": [{"relation": "next", "url": OFFSITE + "/Observation?page=2"}],
            }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(302)
            self.send_header("Location", OFFSITE + "/Patient/p1")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def pager() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_offsite_next_link_and_redirect_are_refused(pager: str) -> None:
    with RemoteFHIR(pager) as remote:
        pages = remote.search("Observation", {})
        assert next(pages)["id"] == "o1"
        with pytest.raises(OutboundPolicyError, match=r"203\.0\.113\.7:80"):
            next(pages)  # the next page is off-site: refused, never requested
        with pytest.raises(RemoteFHIRError, match="302"):
            remote.read("Patient", "p1")  # the redirect is not followed


def test_a_client_passed_in_cannot_bypass_the_policy(pager: str) -> None:
    with pytest.raises(OutboundPolicyError, match="trust_env=False"):
        RemoteFHIR(pager, client=httpx.Client())  # environment proxies would bypass it
    own = httpx.Client(trust_env=False, follow_redirects=True)
    with RemoteFHIR(pager, client=own) as remote:
        assert own.follow_redirects is False
        with pytest.raises(OutboundPolicyError):
            list(remote.search("Observation", {}))
