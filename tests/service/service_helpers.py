"""Helpers of the service tests: a live uvicorn server, a CDS client key, the app handle."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from medagent.secure.access import Principal, Role
from medagent.service import Settings
from medagent.service.security import issue_session

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "service"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A uvicorn server in a thread on 127.0.0.1."""

    def __init__(self, app: FastAPI, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class CdsClientKey:
    """A CDS client's ES384 key and a helper to sign request JWTs."""

    key: ec.EllipticCurvePrivateKey
    kid: str
    issuer: str

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "alg": "ES384", "use": "sig"})
        return {"keys": [public]}

    def token(self, aud: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "ehr-client",
            "aud": aud,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        headers: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        headers.update(overrides.pop("headers", {}))
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="ES384", headers=headers)


@dataclass
class Service:
    """The app under test, its live URL, and credentials."""

    app: FastAPI
    url: str
    settings: Settings
    cds_key: CdsClientKey
    tmp: Path

    def session(self, role: Role = Role.CLINICIAN, subject: str = "dr-test") -> str:
        return issue_session(self.app.state.svc, Principal.grant(subject, role))

    def headers(self, role: Role = Role.CLINICIAN, subject: str = "dr-test") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session(role, subject)}"}
