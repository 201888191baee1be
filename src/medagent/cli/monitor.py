"""Typer commands of the monitor: `replay PATIENT --url URL`, `monitor serve|worker|batch`."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from medagent.cli._common import JsonFlag, fail, print_json

monitor_app = typer.Typer(
    help="Continuous monitoring: ingest, scores, alerts, dashboard.", no_args_is_help=True
)

TOKEN_ENV = "MEDAGENT_MONITOR_TOKEN"

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite path (default: $MEDAGENT_DB, else the user "
                 "data dir).", show_default=False),
]  # fmt: skip
DataOption = Annotated[
    Path,
    typer.Option("--data", help="Synthea bundles: a .tar.xz, a folder or one file."),
]


def replay_command(
    patient: Annotated[str, typer.Argument(help="Synthea patient id, file name or name prefix.")],
    url: Annotated[str, typer.Option("--url", help="Base URL of a running monitor.")],
    speed: Annotated[float, typer.Option("--speed", help="Data seconds per real second.")] = 3600.0,
    max_gap: Annotated[float, typer.Option("--max-gap", help="Longest wait, seconds.")] = 2.0,
    ward: Annotated[str, typer.Option("--ward", help="Ward to place the patient on.")] = "demo",
    limit: Annotated[int | None, typer.Option("--limit", help="Stop after N posts.")] = None,
    data: DataOption = Path("../shared/data/synthea-40.tar.xz"),
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help=f"Bearer token of the monitor (default: ${TOKEN_ENV}).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stream a Synthea patient's vital signs into a running monitor at a speed-up."""
    import httpx

    from medagent.errors import MedAgentError
    from medagent.monitor.replay import find_patient, replay

    if not data.exists():
        fail(f"no such file: {data}")
    try:
        bundle = find_patient(data, patient)
    except MedAgentError as exc:
        fail(str(exc))
    try:
        stats = replay(
            bundle, url=url, speed=speed, max_gap=max_gap, ward=ward, limit=limit, token=token
        )
    except httpx.HTTPStatusError as exc:
        hint = (
            f" (give the monitor's token with --token or ${TOKEN_ENV})"
            if exc.response.status_code == 401
            else ""
        )
        fail(f"the monitor refused the replay: {exc.response.status_code}{hint}")
    if as_json:
        print_json(asdict(stats))
    else:
        typer.echo(
            f"replayed {stats.observations} observations of {stats.patient_id} in {stats.posts} "
            f"posts ({stats.accepted} accepted, {stats.alerts} alert events) in "
            f"{stats.seconds:.1f} s"
        )


@monitor_app.command("serve")
def serve_command(
    db: DbOption = None,
    port: Annotated[int, typer.Option("--port", help="HTTP port on 127.0.0.1.")] = 8000,
    mllp_port: Annotated[int, typer.Option("--mllp-port", help="MLLP port on 127.0.0.1.")] = 2575,
) -> None:
    """Run FHIR/WebSocket ingest, the MLLP listener and the ward dashboard on 127.0.0.1."""
    import uvicorn

    from medagent.monitor.api import MIN_TOKEN_LENGTH, create_app, new_token
    from medagent.monitor.core import Monitor
    from medagent.monitor.mllp import MLLPServer

    token = os.environ.get(TOKEN_ENV) or new_token()
    if len(token) < MIN_TOKEN_LENGTH:
        fail(f"{TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters")
    monitor = Monitor.open(db)
    monitor.rebuild()
    mllp = MLLPServer(monitor.handle_hl7, host="127.0.0.1", port=mllp_port).start()
    typer.echo(
        f"monitor dashboard: http://127.0.0.1:{port}/monitor/login?token={token}\n"
        f"API calls need the header 'Authorization: Bearer <token>' (the token is "
        f"{'from ' + TOKEN_ENV if os.environ.get(TOKEN_ENV) else 'new for this run'}); "
        f"MLLP on 127.0.0.1:{mllp.port}",
        err=True,
    )
    try:
        uvicorn.run(
            create_app(monitor, token=token), host="127.0.0.1", port=port, log_level="warning"
        )
    finally:
        mllp.stop()


@monitor_app.command("worker")
def worker_command(
    redis_url: Annotated[str, typer.Option("--redis", help="Redis URL.")],
    db: DbOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Consumer name.")] = None,
) -> None:
    """Run one Redis Streams worker (store and score readings of the consumer group)."""
    from medagent.monitor.streams import main

    args = ["--db", db or _default_db(), "--redis", redis_url]
    if name:
        args += ["--name", name]
    raise typer.Exit(main(args))


@monitor_app.command("batch")
def batch_command(
    db: DbOption = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Dask scheduler (default: a local cluster).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score every patient of the record with every monitored scale, on Dask."""
    from medagent.monitor.batch import batch_score
    from medagent.monitor.core import Monitor

    monitor = Monitor.open(db)
    snapshots = [monitor.snapshot(p.id) for p in monitor.store.patients()]
    result = batch_score(snapshots, address=address)
    if as_json:
        print_json({k: v for k, v in result.items() if k != "rows"} | {"rows": result["rows"]})
    else:
        typer.echo(
            f"scored {result['patients']} patients; escalations: {result['escalations'] or 'none'}"
        )


def _default_db() -> str:
    from medagent.record.db import default_url

    return default_url()
