"""SMART EHR launch against a small authorization server run on 127.0.0.1 by the test."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from fastapi import FastAPI, Form, HTTPException, Query
from fastapi.responses import RedirectResponse
from service_helpers import LiveServer, Service, free_port

PATIENT = "demo-af-anticoagulation"


class AuthServer:
    """Authorization code + PKCE (S256); knows one launch id bound to one patient."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.codes: dict[str, dict[str, str]] = {}
        self.launches = {"launch-123": PATIENT}
        self.token_requests = 0
        app = FastAPI()

        @app.get("/fhir/.well-known/smart-configuration")
        def config() -> dict[str, Any]:
            return {
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "capabilities": ["launch-ehr", "client-public", "context-ehr-patient"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/authorize")
        def authorize(
            response_type: str,
            client_id: str,
            redirect_uri: str,
            launch: str,
            scope: str,
            state: str,
            aud: str,
            code_challenge: str,
            code_challenge_method: Annotated[str, Query()],
        ) -> RedirectResponse:
            if response_type != "code" or code_challenge_method != "S256":
                raise HTTPException(400, "bad request")
            if aud != f"{self.url}/fhir" or launch not in self.launches:
                raise HTTPException(400, "bad aud or launch")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": code_challenge,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "patient": self.launches[launch],
                "scope": scope,
            }
            return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

        @app.post("/token")
        def token(
            grant_type: Annotated[str, Form()],
            code: Annotated[str, Form()],
            redirect_uri: Annotated[str, Form()],
            client_id: Annotated[str, Form()],
            code_verifier: Annotated[str, Form()],
        ) -> dict[str, Any]:
            self.token_requests += 1
            grant = self.codes.pop(code, None)
            if grant is None or grant_type != "authorization_code":
                raise HTTPException(400, "invalid_grant")
            digest = hashlib.sha256(code_verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                raise HTTPException(400, "invalid_grant: PKCE")
            if redirect_uri != grant["redirect_uri"] or client_id != grant["client_id"]:
                raise HTTPException(400, "invalid_grant")
            id_token = jwt.encode(
                {"sub": "u1", "fhirUser": "Practitioner/dr-smart"}, "as-secret", algorithm="HS256"
            )
            return {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": grant["scope"],
                "patient": grant["patient"],
                "id_token": id_token,
            }

        self.app = app


@pytest.fixture(scope="module")
def auth_server(service: Service) -> Iterator[AuthServer]:
    port = free_port()
    server = AuthServer(port)
    state = service.app.state.svc
    original = state.settings
    state.settings = replace(original, smart_iss_allow=(f"{server.url}/fhir",))
    with LiveServer(server.app, port):
        yield server
    state.settings = original


def test_ehr_launch_opens_the_patient_page(service: Service, auth_server: AuthServer) -> None:
    iss = f"{auth_server.url}/fhir"
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(
            f"{service.url}/smart/launch", params={"iss": iss, "launch": "launch-123"}
        )
        assert page.status_code == 200, page.text
        assert page.url.path == f"/app/patients/{PATIENT}"
        assert "Harold Becker" in page.text
        assert "Practitioner/dr-smart" in page.text  # the session is the launching user's
        # The session cookie now opens other pages of the same patient.
        scale = browser.get(f"{service.url}/app/patients/{PATIENT}/scales/has_bled")
        assert scale.status_code == 200
    # the launch is a sign-in, and what the launched user then read is theirs in the trail
    trail = service.app.state.svc.audit.search(actor="Practitioner/dr-smart")
    login = next(e for e in trail if e.action == "login")
    assert (login.source, login.outcome, login.reason) == (
        "127.0.0.1",
        "success",
        "SMART App Launch",
    )
    assert login.detail == f"SMART launch from {iss} in the context of Patient/{PATIENT}"
    reads = [(e.resource, e.reason) for e in trail if e.action == "read"]
    assert (f"Patient/{PATIENT}", "patient page") in reads
    assert (f"Patient/{PATIENT}", "scale page has_bled") in reads


def test_launch_refusals(service: Service, auth_server: AuthServer) -> None:
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        other = browser.get(
            f"{service.url}/smart/launch",
            params={"iss": "http://127.0.0.1:9/fhir", "launch": "launch-123"},
        )
        assert other.status_code == 403  # iss not on the allow-list
        forged = browser.get(f"{service.url}/smart/callback", params={"code": "x", "state": "y"})
        assert forged.status_code == 401
        # A code replayed with a state of our own: the launch state is single-use.
        start = browser.get(
            f"{service.url}/smart/launch",
            params={"iss": f"{auth_server.url}/fhir", "launch": "launch-123"},
        )
        assert start.status_code == 302
        at_as = browser.get(start.headers["location"])
        callback = at_as.headers["location"]
        assert browser.get(callback).status_code == 303
        assert browser.get(callback).status_code == 401
    refused = [e.outcome for e in service.app.state.svc.audit.search(action="login")]
    assert "refused: iss not allowed" in refused
    assert "failed: unknown or expired launch state" in refused
