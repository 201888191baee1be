"""RFC 9457 problem details: every error of the service, and how library errors map to them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from medagent.errors import InputError, MedAgentError, UnitError, UnknownScaleError

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("medagent.service")


class ProblemError(Exception):
    """An HTTP error raised by the service layer, answered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        detail: str = "",
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra or {}


def unauthorized(detail: str = "credentials are required") -> ProblemError:
    """401 with a Bearer challenge."""
    return ProblemError(401, "Unauthorized", detail=detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> ProblemError:
    """403: authenticated, but not allowed."""
    return ProblemError(403, "Forbidden", detail=detail)


def not_found(detail: str) -> ProblemError:
    """404."""
    return ProblemError(404, "Not Found", detail=detail)


def _html_page(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/app", "/p/", "/smart/")) and "text/html" in request.headers.get(
        "accept", ""
    )


def problem_response(request: Request, exc: ProblemError) -> Response:
    """The problem as JSON, or as a small HTML page for browser routes."""
    if _html_page(request):
        from html import escape

        body = (
            "<!doctype html><meta charset=utf-8><title>medagent</title>"
            f"<h1>{exc.status} {escape(exc.title)}</h1><p id=problem>{escape(exc.detail)}</p>"
        )
        return HTMLResponse(body, status_code=exc.status, headers=exc.headers)
    content: dict[str, Any] = {
        "type": exc.type,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": request.url.path,
        **exc.extra,
    }
    return JSONResponse(
        content, status_code=exc.status, headers=exc.headers, media_type=PROBLEM_JSON
    )


def _input_problem(exc: InputError) -> ProblemError:
    return ProblemError(
        422,
        "Invalid inputs",
        detail=f"{len(exc.problems)} problem(s) with the inputs of {exc.subject}",
        type_="https://medagent.example.org/problems/invalid-inputs",
        extra={"errors": [{"input": p.path, "message": p.message} for p in exc.problems]},
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details (never a trace)."""
    from medagent.secure.access import AccessDeniedError, AuthenticationError, RateLimitedError

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(request, exc)

    async def on_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputError)
        return problem_response(request, _input_problem(exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "input": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        problem = ProblemError(
            422,
            "Invalid request",
            detail=f"{len(errors)} problem(s) with the request",
            type_="https://medagent.example.org/problems/invalid-request",
            extra={"errors": errors},
        )
        return problem_response(request, problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "HTTP error")
        problem = ProblemError(
            exc.status_code, title, detail=str(exc.detail), headers=dict(exc.headers or {})
        )
        return problem_response(request, problem)

    async def on_medagent(request: Request, exc: Exception) -> Response:
        if isinstance(exc, UnknownScaleError):
            problem = not_found(str(exc))
        elif isinstance(exc, RateLimitedError):
            retry = str(max(1, round(exc.retry_after)))
            problem = ProblemError(
                429, "Too Many Requests", detail=str(exc), headers={"Retry-After": retry}
            )
        elif isinstance(exc, AuthenticationError):
            problem = unauthorized(str(exc))
        elif isinstance(exc, AccessDeniedError):
            problem = forbidden(str(exc))
        elif isinstance(exc, KeyError):
            problem = not_found(str(exc.args[0]) if exc.args else "not found")
        elif isinstance(exc, (ValueError, UnitError)):
            problem = ProblemError(422, "Unprocessable", detail=str(exc))
        else:
            problem = ProblemError(400, "Bad Request", detail=str(exc))
        return problem_response(request, problem)

    async def on_any(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error on %s", request.url.path)
        problem = ProblemError(500, "Internal Server Error", detail="the error was logged")
        return problem_response(request, problem)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(InputError, on_input)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(MedAgentError, on_medagent)
    app.add_exception_handler(Exception, on_any)
