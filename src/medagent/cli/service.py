"""`medagent serve`: the web service (REST API, CDS Hooks, SMART launch, pages) under uvicorn."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (else MEDAGENT_DB).")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo patients and print a sign-in URL.")
    ] = False,
) -> None:
    """Serve medagent; settings come from MEDAGENT_* environment variables."""
    import uvicorn

    from medagent.secure.access import Principal, Role
    from medagent.service import Settings, create_app
    from medagent.service.security import issue_session
    from medagent.service.settings import DEFAULT_BASE_URL

    settings = Settings.from_env()
    if db is not None:
        settings = replace(settings, database_url=db)
    if settings.base_url == DEFAULT_BASE_URL:
        settings = replace(settings, base_url=f"http://{host}:{port}")
    app = create_app(settings)
    if demo:
        from medagent.demo import load_demo
        from medagent.record.audited import audit_context, process_context

        ctx = process_context("load the demo patients")
        with audit_context(actor=ctx.actor, source=ctx.source, reason=ctx.reason):
            loaded = load_demo(app.state.svc.store)
        token = issue_session(app.state.svc, Principal.grant("demo-clinician", Role.CLINICIAN))
        typer.echo(f"loaded {len(loaded)} demo patients")
        typer.echo(f"open {settings.base_url}/auth/session?token={token}")
    typer.echo(
        f"API docs at {settings.base_url}/docs; CDS Hooks at {settings.base_url}/cds-services"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
