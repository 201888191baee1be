"""Fixtures of the service tests: one app with the demo patients, served on 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from service_helpers import PASSWORD, CdsClientKey, LiveServer, Service, free_port

from medagent.record.audited import audit_context
from medagent.secure.access import Passwords
from medagent.service import Settings, create_app


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from medagent.demo import load_demo

    tmp = tmp_path_factory.mktemp("service")
    port = free_port()
    key = CdsClientKey(ec.generate_private_key(ec.SECP384R1()), "ehr-1", "https://ehr.example.org")
    jwks_file = tmp / "cds-jwks.json"
    jwks_file.write_text(json.dumps(key.jwks()))
    users = tmp / "users.txt"
    users.write_text(f"alice:clinician:{Passwords().hash(PASSWORD)}\n")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'service.db'}",
        base_url=f"http://127.0.0.1:{port}",
        secret=os.urandom(32),
        cds_jwks_file=jwks_file,
        users_file=users,
        audit_path=tmp / "audit.db",
        smart_iss_allow=(),
    )
    app = create_app(settings)
    with audit_context(actor="test-setup", source="pytest", reason="load the demo patients"):
        load_demo(app.state.svc.store)
    with LiveServer(app, port) as live:
        yield Service(app, live.url, settings, key, tmp)


@pytest.fixture(scope="session")
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(service.app, raise_server_exceptions=False) as c:
        yield c
