"""Typer commands of the patient record: `import PATH...` and `patients [--json]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medagent.cli._common import JsonFlag, open_store, print_json

if TYPE_CHECKING:
    from medagent.record.errors import RecordImportError
    from medagent.record.models import ImportResult

app = typer.Typer(help="The patient record (FHIR R4 store).", no_args_is_help=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default: $MEDAGENT_DB, else the user data dir).",
        show_default=False,
    ),
]


@app.command("import")
def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Bundle/NDJSON files or folders.")],
    db: DbOption = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip FHIR model validation (faster).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import FHIR Bundles and NDJSON; each file is all-or-nothing. Exit 1 if any file failed."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TimeRemainingColumn,
    )

    from medagent.record.errors import RecordImportError
    from medagent.record.importer import expand_paths, read_file

    files = list(expand_paths(paths))
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        sys.stderr.write("error: no such file: " + ", ".join(missing) + "\n")
        raise typer.Exit(2)
    console = Console(stderr=True)
    total_bytes = sum(p.stat().st_size for p in files)
    names = ", ".join(str(p) for p in paths)
    with open_store(db, reason=f"import {names}"[:300]) as store:
        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal or total_bytes < 1_000_000,
        )
        imported: list[ImportResult] = []
        failed: list[RecordImportError] = []
        with progress:
            files_task = progress.add_task("files", total=len(files))
            for path in files:
                try:
                    batch = read_file(path, validate=not no_validate)
                except RecordImportError as error:
                    failed.append(error)
                    progress.advance(files_task)
                    continue
                task = progress.add_task(path.name[:40], total=len(batch.resources))

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                imported.append(store.import_batch(batch, on_progress=advance))
                progress.remove_task(task)
                progress.advance(files_task)
    if as_json:
        print_json(
            {
                "imported": [
                    {"file": r.source, "resources": r.resources, "patients": list(r.patients)}
                    for r in imported
                ],
                "failed": [
                    {"file": e.subject, "problems": [str(p) for p in e.problems]} for e in failed
                ],
            }
        )
    else:
        count = sum(r.resources for r in imported)
        patients = {p for r in imported for p in r.patients}
        sys.stdout.write(
            f"imported {count} resources of {len(patients)} patient(s) from "
            f"{len(imported)} file(s)\n"
        )
        for failure in failed:
            sys.stderr.write(f"error: {failure}\n")
    if failed:
        raise typer.Exit(1)


@app.command("patients")
def patients_command(db: DbOption = None, as_json: JsonFlag = False) -> None:
    """List the patients in the store: id, name, sex, birth date, number of resources."""
    with open_store(db, reason="list patients") as store:
        patients = store.patients()
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "gender": p.gender,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "deceased": p.deceased,
            "resources": p.resource_count,
        }
        for p in patients
    ]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} patient(s)")
    table.add_column("id", overflow="fold")
    for col in ("name", "gender", "birth date", "resources"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["name"]),
            str(row["gender"] or ""),
            str(row["birth_date"] or ""),
            str(row["resources"]),
        )
    Console().print(table)
