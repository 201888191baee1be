"""Sign-in: password login (Argon2, rate-limited), session links and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from medagent.service.problems import ProblemError, not_found
from medagent.service.schemas import TokenRequest, TokenResponse
from medagent.service.security import (
    SESSION_COOKIE,
    client_address,
    issue_session,
    read_session,
)
from medagent.service.state import StateDep

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
def token(body: TokenRequest, request: Request, *, state: StateDep) -> TokenResponse:
    """Exchange a user name and password for a session token (rate-limited, audited)."""
    if state.login is None:
        raise not_found("password login is not configured (MEDAGENT_USERS)")
    principal = state.login.login(body.username, body.password, source=client_address(request))
    minutes = state.settings.session_minutes
    return TokenResponse(
        access_token=issue_session(state, principal, minutes=minutes),
        expires_in=minutes * 60,
        scope=" ".join(sorted(str(s) for s in principal.scopes)),
    )


@router.get("/session", response_class=RedirectResponse, status_code=303)
def session(
    request: Request,
    state: StateDep,
    token: Annotated[str, Query(min_length=10, max_length=4096)],
    *,
    next_: Annotated[str, Query(alias="next", max_length=512)] = "/app",
) -> Response:
    """Turn a session token into the session cookie and go to the page (authorizes by token)."""
    read_session(state, token, source=client_address(request))  # 401 (audited) unless valid
    if not next_.startswith("/app"):
        raise ProblemError(400, "Bad Request", detail="next must be a page of this app")
    response = RedirectResponse(next_, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax")
    return response


@router.post("/logout", status_code=204)
def logout() -> Response:
    """Forget the session cookie."""
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response
