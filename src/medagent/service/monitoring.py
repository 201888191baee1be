"""Mounts the vital-sign monitor's routers (ingest, alerts, ward dashboard) behind scope checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, WebSocketException, status
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from medagent.secure.access import AccessDeniedError, Principal
from medagent.service.problems import ProblemError, forbidden
from medagent.service.security import client_address, read_session, token_from
from medagent.service.state import ServiceState, get_state

_ACTIONS = {"GET": "r", "HEAD": "r", "POST": "c", "PUT": "u", "DELETE": "d"}


def monitor_access(
    connection: HTTPConnection, state: Annotated[ServiceState, Depends(get_state)]
) -> Principal:
    """Observations of the monitor need a session with the matching Observation scope."""
    websocket = isinstance(connection, WebSocket)
    try:
        token = token_from(connection)
        if not token:
            raise ProblemError(401, "Unauthorized", detail="credentials are required")
        source = client_address(connection)
        principal = read_session(state, token, source=source)
        action = "c" if websocket else _ACTIONS.get(connection.scope.get("method", "GET"), "r")
        try:
            state.authorizer.check(
                principal,
                resource="Observation",
                action=action,
                source=source,
                reason=f"monitor {connection.url.path}",
            )
        except AccessDeniedError as exc:
            raise forbidden(str(exc)) from exc
    except ProblemError as exc:
        if websocket:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, exc.detail) from exc
        raise
    connection.state.principal = principal  # who acknowledges an alert is who signed in
    return principal


def mount_monitor(app: FastAPI, state: ServiceState) -> Callable[[], Any] | None:
    """Include the monitor's routers if `medagent.monitor` is installed; returns its housekeeping.

    Each route gets :func:`monitor_access` as a router-level dependency, so it is checked before
    the monitor's own handler runs; the monitor shares the service's record store.
    """
    try:
        from medagent.monitor.api import housekeeping
        from medagent.monitor.api import router as api_router
        from medagent.monitor.core import Monitor
        from medagent.monitor.dashboard import router as dashboard_router
    except ImportError:
        return None
    from medagent.record.audited import process_context

    # The monitor builds each patient's context from the record for the early-warning scores on
    # behalf of nobody in particular (readings arrive from devices); its reads are attributed to
    # the monitor. Who looks at the dashboard is in the access decisions of `monitor_access`.
    monitor = Monitor(
        state.store.with_default(process_context("vital-sign monitoring", program="monitor"))
    )
    app.state.monitor = monitor
    guard = [Depends(monitor_access)]
    app.include_router(api_router, dependencies=guard)
    app.include_router(dashboard_router, dependencies=guard)

    def start() -> Any:
        return asyncio.create_task(housekeeping(monitor))

    return start


def lifespan_with(
    start: Callable[[], Any] | None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that runs the monitor's housekeeping task while the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = start() if start is not None else None
        yield
        if task is not None:
            task.cancel()

    return lifespan
