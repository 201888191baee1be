"""Typer commands of auto-population: `populate SCALE PATIENT` and `override SCALE PATIENT K=V`."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from medagent.cli._common import JsonFlag, audit_event, fail, open_store, print_json

if TYPE_CHECKING:
    from medagent.populate.model import Evaluation, Population

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default: $MEDAGENT_DB, else the user data dir).",
        show_default=False,
    ),
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Populate as of this time (ISO 8601, e.g. 2024-03-01T08:00Z; default now).",
        show_default=False,
    ),
]


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--at {text!r} is not an ISO 8601 time (e.g. 2024-03-01T08:00Z)")


def populate_command(
    scale_id: Annotated[str, typer.Argument(metavar="SCALE", help="Scale id, e.g. news2.")],
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id.")],
    at: AtOption = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Fill a scale from the patient's record (with the source of each value), then score it."""
    from medagent.errors import MedAgentError
    from medagent.populate import populate
    from medagent.record.audited import score_detail

    when = _parse_time(at)
    reason = f"populate scale {scale_id}"
    with open_store(db, reason=reason) as store:
        try:
            population = populate(scale_id, patient_id, store=store, at=when)
            evaluation = population.evaluate()
        except MedAgentError as exc:
            fail(str(exc))
        audit_event(
            action="score",
            resource=f"Patient/{patient_id}",
            reason=reason,
            detail=score_detail(evaluation.result),
            log=store.audit,
        )
    if as_json:
        print_json({**population.to_dict(), "evaluation": evaluation.to_dict()})
        return
    _print_population(population, evaluation)


def _print_population(population: Population, evaluation: Evaluation) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    scale = population.scale
    title = (
        f"{scale.short_title or scale.title} (v{scale.version}) for patient "
        f"{population.patient_id} at {population.at.isoformat(timespec='minutes')} UTC"
    )
    table = Table(title=title)
    for col in ("input", "value", "source", "time", "rule"):
        table.add_column(col, overflow="fold", ratio=3 if col == "rule" else 2)
    for filled in population.filled.values():
        prov = filled.provenance
        value = filled.value
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, float):
            shown = f"{value:.6g}" + (f" {filled.unit}" if filled.unit else "")
        else:
            shown = str(value)
        if prov.conversion:
            shown += f"\n({prov.conversion})"
        source = prov.reference or (
            f"user {prov.entered_by}" if prov.source == "user" else prov.source
        )
        when = prov.effective or prov.entered_at
        table.add_row(
            filled.label,
            shown,
            source,
            when.isoformat(timespec="minutes") if when else "",
            prov.rule,
        )
    console.print(table)
    if population.unfilled:
        missing = Table(title="Not filled from the record")
        for col in ("input", "why", "detail", "who can answer"):
            missing.add_column(col, overflow="fold")
        for unfilled in population.unfilled.values():
            missing.add_row(
                unfilled.label,
                unfilled.reason.value,
                unfilled.detail,
                ", ".join(unfilled.answerable_by),
            )
        console.print(missing)
    for note in population.notes:
        console.print(f"note: {note}")
    sys.stdout.write(evaluation.result.explanation + "\n")


def override_command(
    scale_id: Annotated[str, typer.Argument(metavar="SCALE", help="Scale id.")],
    patient_id: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id.")],
    assignment: Annotated[
        str, typer.Argument(metavar="INPUT=VALUE", help="e.g. supplemental_oxygen=true")
    ],
    user: Annotated[str, typer.Option("--user", help="Who enters the value.")],
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Store a clinician's value for one input; it wins over the record from now on."""
    from medagent.errors import MedAgentError
    from medagent.populate import save_override

    key, sep, value = assignment.partition("=")
    if not sep or not key.strip() or not value.strip():
        fail(f"{assignment!r} is not INPUT=VALUE")
    reason = f"override {scale_id}.{key.strip()}"
    with open_store(db, reason=reason) as store:
        try:
            store.patient(patient_id)
            saved = save_override(
                store,
                scale_id=scale_id,
                patient_id=patient_id,
                input_id=key.strip(),
                value=value.strip(),
                user=user,
            )
        except MedAgentError as exc:
            fail(str(exc))
        audit_event(
            action="override",
            resource=f"Patient/{patient_id}",
            reason=reason,
            detail=f"{saved.scale_id}.{saved.input_id} entered by user {saved.user}",
            log=store.audit,
        )
    record = {
        "scale": saved.scale_id,
        "patient": saved.patient_id,
        "input": saved.input_id,
        "value": saved.value,
        "user": saved.user,
        "entered_at": saved.entered_at.isoformat(),
    }
    if as_json:
        print_json(record)
    else:
        sys.stdout.write(
            f"stored {saved.input_id}={saved.value} for {saved.scale_id} of patient "
            f"{saved.patient_id}, entered by user {saved.user} at "
            f"{saved.entered_at.isoformat(timespec='minutes')} UTC\n"
        )
