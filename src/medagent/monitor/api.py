"""FastAPI routers of the monitor (ingest, profile, alerts, live events) for the service."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Path,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from medagent.monitor.core import Monitor
from medagent.monitor.errors import IngestError, UnknownAlertError
from medagent.monitor.profile import patient_cards, patient_profile

HEARTBEAT_SECONDS = 15.0
TOKEN_COOKIE = "medagent_monitor"
MIN_TOKEN_LENGTH = 16


def get_monitor(request: Request) -> Monitor:
    """The monitor the app was created with (``app.state.monitor``)."""
    monitor: Monitor = request.app.state.monitor
    return monitor


MonitorDep = Annotated[Monitor, Depends(get_monitor)]

router = APIRouter(prefix="/monitor", tags=["monitor"])


class Placement(BaseModel):
    """Where a patient is."""

    ward: str | None
    bed: str | None = None


class Acknowledgement(BaseModel):
    """Who acknowledges an alert. Behind the service the signed-in user is recorded and this
    field is not needed; on the standalone monitor it names the person at the screen."""

    user: str | None = None


def _outcome(status: int, text: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": text}],
    }
    return JSONResponse(body, status_code=status, media_type="application/fhir+json")


@router.post("/fhir", summary="Accept a FHIR Observation or a Bundle of Observations")
def post_fhir(monitor: MonitorDep, payload: Annotated[Any, Body()]) -> Any:
    """Stored durably before the answer; a malformed payload is refused (422) and dead-lettered."""
    try:
        return monitor.ingest_fhir(payload).to_dict()
    except IngestError as exc:
        return _outcome(422, exc.reason)


@router.websocket("/fhir/stream")
async def stream_fhir(websocket: WebSocket) -> None:
    """A stream of FHIR Observations/Bundles, one JSON text message each; every message is
    answered in order with what was accepted, or the reason it was refused."""
    monitor: Monitor = websocket.app.state.monitor
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            try:
                payload = json.loads(text)
            except ValueError as exc:
                await run_in_threadpool(monitor.dead_letter, "fhir-ws", f"not JSON: {exc}", text)
                await websocket.send_json({"ok": False, "reason": f"not JSON: {exc}"})
                continue
            try:
                result = await run_in_threadpool(monitor.ingest_fhir, payload, source="fhir-ws")
            except IngestError as exc:
                await websocket.send_json({"ok": False, "reason": exc.reason})
                continue
            await websocket.send_json({"ok": True, **result.to_dict()})
    except WebSocketDisconnect:
        return


@router.get("/patients/{patient_id}", summary="The whole picture of a patient")
def get_profile(monitor: MonitorDep, patient_id: str) -> dict[str, Any]:
    """Demographics, problems, medications, allergies, vitals, labs, scores, alerts, timeline."""
    return patient_profile(monitor, patient_id)


@router.put("/patients/{patient_id}/placement", summary="Put a patient on a ward")
def put_placement(monitor: MonitorDep, patient_id: str, placement: Placement) -> dict[str, Any]:
    """Set the patient's ward and bed."""
    monitor.set_placement(patient_id, ward=placement.ward, bed=placement.bed)
    return {"patient_id": patient_id, "ward": placement.ward, "bed": placement.bed}


@router.get("/alerts", summary="Live alerts")
def get_alerts(
    monitor: MonitorDep, patient: str | None = None, ward: str | None = None
) -> list[dict[str, Any]]:
    """Live alerts of a patient or a ward (or all), most severe first."""
    return [a.to_dict() for a in monitor.alerts(patient_id=patient, ward=ward)]


@router.get("/cards", summary="Live alerts as CDS Hooks cards")
def get_cards(monitor: MonitorDep, patient: str) -> dict[str, Any]:
    """The patient's live alerts as CDS Hooks cards (what a patient-view hook returns)."""
    return {"cards": patient_cards(monitor, patient)}


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert")
def ack_alert(
    request: Request,
    monitor: MonitorDep,
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],  # a database row id, not any integer
    body: Acknowledgement,
) -> Any:
    """Acknowledge an alert: as the signed-in user behind the service (a different name in the
    body is refused), or on the standalone monitor as the named person at the token's screen."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        if body.user is not None and body.user != principal.subject:
            return JSONResponse(
                {"detail": f"signed in as {principal.subject}; cannot acknowledge as {body.user}"},
                status_code=403,
            )
        user = str(principal.subject)
    elif body.user and body.user.strip():
        user = f"{body.user.strip()} (standalone monitor token)"
    else:
        return JSONResponse({"detail": "say who acknowledges the alert (user)"}, status_code=422)
    try:
        return monitor.acknowledge(alert_id, user=user).to_dict()
    except UnknownAlertError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)


@router.get("/wards/{ward}", summary="Every patient on a ward")
def get_ward(monitor: MonitorDep, ward: str) -> list[dict[str, Any]]:
    """Dashboard rows of a ward."""
    return monitor.ward(ward)


@router.get("/dead-letters", summary="Refused messages")
def get_dead_letters(monitor: MonitorDep, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent refused messages with the reason."""
    return monitor.dead_letters(limit)


async def _sse(
    monitor: Monitor, ward: str | None, patient: str | None, limit: int | None
) -> AsyncIterator[str]:
    queue = monitor.hub.subscribe()
    sent = 0
    try:
        yield ": connected\n\n"
        while limit is None or sent < limit:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if ward is not None and event.get("ward") != ward:
                continue
            if patient is not None:
                pid = (event.get("alert") or event.get("row") or {}).get("patient_id")
                if pid != patient:
                    continue
            yield f"event: {event['type']}\ndata: {json.dumps(event, default=str)}\n\n"
            sent += 1
    finally:
        monitor.hub.unsubscribe(queue)


@router.get("/events", summary="Live monitor events (server-sent events)")
async def events(
    request: Request,
    ward: str | None = None,
    patient: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> StreamingResponse:
    """Alert and patient-update events as `text/event-stream` (optionally of one ward/patient)."""
    monitor: Monitor = request.app.state.monitor
    return StreamingResponse(
        _sse(monitor, ward, patient, limit),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def housekeeping(monitor: Monitor, *, every: float = 5.0) -> None:
    """Escalate overdue alerts and refresh forecasts, forever (a background task)."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await run_in_threadpool(monitor.escalate_due)
            await run_in_threadpool(monitor.run_forecasts)


def new_token() -> str:
    """A random access token for a standalone monitor."""
    return secrets.token_urlsafe(32)


def _supplied_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = connection.cookies.get(TOKEN_COOKIE)
    if cookie:
        return cookie
    if isinstance(connection, WebSocket):
        return connection.query_params.get("token")
    return None


def token_guard(expected: str) -> Any:
    """A dependency refusing any request without the monitor's token (bearer header, the cookie
    set by the sign-in link, or for a WebSocket a `token` query parameter)."""

    def check(connection: HTTPConnection) -> None:
        supplied = _supplied_token(connection)
        if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
            if isinstance(connection, WebSocket):
                from fastapi import WebSocketException, status

                raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "token required")
            raise HTTPException(401, "the monitor's access token is required")

    return check


def create_app(monitor: Monitor, *, token: str, background: bool = True) -> FastAPI:
    """A small app with the monitor's routers and pages (the service mounts the same routers
    behind its own sign-in). Every route needs `token`; `/monitor/login?token=…` sets it as a
    cookie for the browser and opens the dashboard."""
    from medagent.monitor.dashboard import router as dashboard_router

    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the monitor's token must be at least {MIN_TOKEN_LENGTH} characters")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(housekeeping(monitor)) if background else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(title="medagent monitor", lifespan=lifespan)
    app.state.monitor = monitor
    guard = [Depends(token_guard(token))]
    app.include_router(router, dependencies=guard)
    app.include_router(dashboard_router, dependencies=guard)

    @app.get("/monitor/login", include_in_schema=False)
    def login(supplied: Annotated[str, Query(alias="token")] = "") -> Any:
        if not supplied or not hmac.compare_digest(supplied.encode(), token.encode()):
            return JSONResponse({"detail": "wrong or missing token"}, status_code=401)
        response = RedirectResponse("/monitor/dashboard", status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/monitor")
        return response

    return app
