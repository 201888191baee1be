"""The remote FHIR reader against our FHIR API served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

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

CLIENT_ID = "medagent-test"


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
