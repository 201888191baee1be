"""The FastAPI application: routers, problem details, shared state, static files and docs."""

from __future__ import annotations

import random
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from medagent.service import problems
from medagent.service.routers import (
    auth,
    cds,
    imports,
    pages,
    patients,
    scales,
    sdc,
    selfassess,
    smart,
)
from medagent.service.settings import Settings
from medagent.service.state import ServiceState

# Routes that need no credentials, each with the reason. Every other route requires a session
# token, a CDS client JWT or (the patient's page) a signed link: tests/service/test_routes_auth.py
# enumerates the app's routes and proves it.
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "redirects to the pages",
    ("GET", "/health"): "liveness probe, no data",
    ("GET", "/openapi.json"): "API description",
    ("GET", "/docs"): "API docs page",
    ("GET", "/docs/oauth2-redirect"): "API docs helper",
    ("GET", "/redoc"): "API docs page",
    ("GET", "/static"): "CSS and JavaScript",
    ("GET", "/api/scales"): "the scale library (reference data, no patient data)",
    ("GET", "/api/scales/{scale_id}"): "one scale definition (reference data)",
    ("GET", "/api/scales/{scale_id}/questionnaire"): "one Questionnaire (reference data)",
    ("GET", "/cds-services"): "CDS Hooks discovery (the specification makes it public)",
    ("POST", "/auth/token"): "password login (Argon2, rate-limited)",
    ("GET", "/auth/session"): "authorizes by the signed session token it carries",
    ("POST", "/auth/logout"): "forgets the cookie",
    ("GET", "/smart/launch"): "starts the SMART launch (allow-listed iss)",
    ("GET", "/smart/callback"): "ends the SMART launch (state + PKCE code exchange)",
    ("GET", "/p/{token}"): "the patient's page: authorizes by the signed link token",
    ("POST", "/p/{token}"): "the patient's answers: authorizes by the signed link token",
}


def _state(settings: Settings) -> ServiceState:
    from medagent.populate.overrides import migrate as migrate_overrides
    from medagent.record.audited import AuditedRecordStore
    from medagent.secure.access import Authorizer, LoginService, RateLimiter, Role
    from medagent.secure.audit import AuditLog, default_audit_path
    from medagent.service.cds_auth import CdsVerifier
    from medagent.service.db import migrate

    audit = AuditLog(settings.audit_path or default_audit_path())
    # Several worker processes start at once and all migrate: the losers of that race see a
    # table appear under them; migrating again then finds the schema at head and does nothing.
    for attempt in range(5):
        try:
            # No default audit context: every read and write must come from a request whose
            # guard bound who, from where and why; a handler that forgot fails closed.
            store = AuditedRecordStore.open(settings.database_url, audit=audit)
            migrate(store.engine)
            migrate_overrides(store.engine)
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 + random.random())
    login = None
    if settings.users_file is not None:
        users: dict[str, tuple[str, Role]] = {}
        for line in settings.users_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                name, role, hashed = line.strip().split(":", 2)
                users[name] = (hashed, Role(role))
        login = LoginService(users=users, audit=audit)
    per_second = settings.link_rate_per_minute / 60
    return ServiceState(
        settings=settings,
        store=store,
        audit=audit,
        authorizer=Authorizer(audit),
        login=login,
        link_limiter=RateLimiter(capacity=settings.link_rate_per_minute, per_second=per_second),
        cds=CdsVerifier.from_file(
            engine=store.engine, jku_allow=settings.cds_jku_allow, path=settings.cds_jwks_file
        ),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The medagent service for these settings (default: from the environment)."""
    settings = settings or Settings.from_env()
    state = _state(settings)
    from medagent.service.monitoring import lifespan_with, mount_monitor

    app = FastAPI(
        title="medagent",
        version="0.1.0",
        description=(
            "Clinical scales with provenance: REST API, CDS Hooks 2.0, SMART launch, "
            "clinician and patient pages. Errors are RFC 9457 problem details."
        ),
    )
    app.state.svc = state
    problems.install(app)
    for router in (scales, patients, imports, cds, auth, smart, pages, selfassess, sdc):
        app.include_router(router.router)
    housekeeping = mount_monitor(app, state) if settings.monitor else None
    app.router.lifespan_context = lifespan_with(housekeeping)
    app.mount("/static", StaticFiles(packages=[("medagent.service", "static")]), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app")

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness: no patient data."""
        return {"status": "ok"}

    return app
