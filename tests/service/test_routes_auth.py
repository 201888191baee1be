"""Every route of the app either is listed as public or refuses a caller without credentials."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from service_helpers import Service
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from medagent.secure.access import Role
from medagent.service.app import PUBLIC_ROUTES

_PARAM = re.compile(r"\{[^}]+\}")


def all_routes(service: Service) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, from the router itself (WS: websockets)."""
    out: list[tuple[str, str]] = []
    for context in iter_route_contexts(service.app.routes):
        route = context.original_route
        path = getattr(context, "path", "") or getattr(route, "path", "")
        if isinstance(route, WebSocketRoute | APIWebSocketRoute):
            out.append(("WS", path))
            continue
        methods = getattr(route, "methods", None) or {"GET"}
        out += [(m, path) for m in sorted(methods) if m != "HEAD"]
    return out


def test_every_route_is_known(service: Service) -> None:
    routes = set(all_routes(service))
    assert len(routes) >= 30
    stale = set(PUBLIC_ROUTES) - routes
    assert not stale, f"public routes that no longer exist: {stale}"


def _concrete(path: str) -> str:
    # A real patient id, so that a missing check cannot hide behind a 404.
    return _PARAM.sub(
        lambda m: {
            "{patient_id}": "demo-af-anticoagulation",
            "{scale_id}": "has_bled",
            "{service_id}": "medagent-patient-view",
        }.get(m.group(0), "x" * 24),
        path,
    )


@pytest.mark.parametrize("as_cookie", [False, True], ids=["no-credentials", "bad-cookie"])
def test_protected_routes_refuse_without_credentials(
    service: Service, client: TestClient, as_cookie: bool
) -> None:
    checked = 0
    for method, path in all_routes(service):
        if (method, path) in PUBLIC_ROUTES:
            continue
        if method == "WS":
            headers = {"Cookie": "medagent_session=forged.token.value"} if as_cookie else {}
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                client.websocket_connect(_concrete(path), headers=headers),
            ):
                pass
            assert closed.value.code == 1008, path
            checked += 1
            continue
        cookies = {"medagent_session": "forged.token.value"} if as_cookie else {}
        client.cookies.clear()
        for k, v in cookies.items():
            client.cookies.set(k, v)
        response = client.request(method, _concrete(path), json={})
        client.cookies.clear()
        assert response.status_code in (401, 403), (method, path, response.status_code)
        assert "demo-af" not in response.text or "instance" in response.text
        checked += 1
    assert checked >= 15


def test_patient_scoped_routes_refuse_other_roles(service: Service, client: TestClient) -> None:
    """An administrator's session holds no patient scopes: no patient route answers."""
    admin = service.headers(role=Role.ADMIN)
    for method, path in all_routes(service):
        if (method, path) in PUBLIC_ROUTES or method == "WS":
            continue
        if not path.startswith(("/api/patients", "/app", "/monitor")):
            continue
        response = client.request(method, _concrete(path), json={}, headers=admin)
        # 422: a malformed body is refused before the handler's scope check; nothing is read.
        assert response.status_code in (403, 422), (method, path, response.status_code)
        assert "Harold Becker" not in response.text


def test_public_routes_serve_no_patient_data(service: Service, client: TestClient) -> None:
    for method, path in PUBLIC_ROUTES:
        if method != "GET" or "{" in path or path == "/static":
            continue
        response = client.get(path, follow_redirects=False)
        assert "demo-af-anticoagulation" not in response.text, path
        assert "Harold Becker" not in response.text, path
