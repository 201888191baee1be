"""Page rendering: the Jinja2 environment and the data each page shows."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from medagent.service.i18n import LANG_COOKIE, language_of, messages


@cache
def environment() -> Environment:
    """The template environment (autoescaped HTML from package data)."""
    return Environment(
        loader=PackageLoader("medagent.service", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the request's language (and remember a language chosen by `?lang=`)."""
    lang = language_of(request)
    html = (
        environment()
        .get_template(template)
        .render(t=messages(lang), lang=lang, path=request.url.path, **context)
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang"):
        response.set_cookie(LANG_COOKIE, lang, samesite="lax")
    return response


def trend_svg(values: list[float | None], *, width: int = 240, height: int = 60) -> str:
    """A small inline SVG line of the values (oldest first); empty when fewer than two."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    span = (hi - lo) or 1.0
    step = (width - 10) / max(1, len(values) - 1)
    coords = [(5 + i * step, height - 5 - (v - lo) / span * (height - 10)) for i, v in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in coords)
    return (
        f'<svg class="trend" role="img" aria-label="trend" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><polyline fill="none" stroke="currentColor" '
        f'stroke-width="1.5" points="{line}"/>{dots}</svg>'
    )
