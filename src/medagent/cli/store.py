"""Encryption at rest commands: `store status|encrypt|rewrap`, `store keys list|add|retire`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from medagent.cli._common import JsonFlag, fail, print_json
from medagent.errors import MedAgentError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from medagent.secure.at_rest import KeySource, SealedColumns

store_app = typer.Typer(
    help="Encryption at rest of the patient data: status, encrypt, key rotation.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The key-encryption keys (KEKs) of the keyring.", no_args_is_help=True)
store_app.add_typer(keys_app, name="keys")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL or SQLite path (default: $MEDAGENT_DB, else the user data dir).",
        show_default=False,
    ),
]
BatchOption = Annotated[
    int, typer.Option("--batch", min=1, help="Rows per transaction (the unit of resumption).")
]


@contextmanager
def _opened(db: str | None) -> Iterator[tuple[Engine, list[SealedColumns]]]:
    """The database (record tables migrated; service, monitor and override tables too when
    present) and every encrypted table in it."""
    import sqlalchemy as sa

    from medagent.record.db import create_engine, default_url
    from medagent.record.db import migrate as migrate_record
    from medagent.record.store import RESOURCE_SEALING

    engine = create_engine(db or default_url())
    try:
        migrate_record(engine)
        tables = [RESOURCE_SEALING]
        if sa.inspect(engine).has_table("service_assessment"):
            from medagent.service.db import SEALED_TABLES
            from medagent.service.db import migrate as migrate_service

            migrate_service(engine)
            tables.extend(SEALED_TABLES)
        present = set(sa.inspect(engine).get_table_names())
        if "monitor_dead_letter" in present:
            from medagent.monitor.db import SEALED_TABLES as MONITOR_TABLES
            from medagent.monitor.db import migrate as migrate_monitor

            migrate_monitor(engine)
            tables.extend(MONITOR_TABLES)
        if "populate_override" in present:
            from medagent.populate.overrides import SEALED_TABLES as POPULATE_TABLES
            from medagent.populate.overrides import migrate as migrate_populate

            migrate_populate(engine)
            tables.extend(POPULATE_TABLES)
        yield engine, tables
    finally:
        engine.dispose()


def _keys() -> KeySource:
    from medagent.secure.at_rest import configured_keys

    try:
        return configured_keys()
    except MedAgentError as exc:
        fail(str(exc))


def _progress() -> Any:
    """A Rich progress display on stderr (off when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


@store_app.command("status")
def status_command(db: DbOption = None, as_json: JsonFlag = False) -> None:
    """Rows per KEK and plaintext rows of every encrypted table; exit 1 if a KEK is missing."""
    source = _keys()
    try:
        held = _held(source)
        current = source.provider.current_key_id()
        with _opened(db) as (engine, tables):
            usage = {spec.table.name: spec.status(engine) for spec in tables}
    except MedAgentError as exc:
        fail(str(exc))
    used = {kek for counts in usage.values() for kek in counts if kek is not None}
    missing = sorted(used - set(held)) if held is not None else []
    report = {
        "keyring": source.origin,
        "current_kek": current,
        "keks": held,
        "tables": {
            name: {
                "plaintext": counts.get(None, 0),
                "by_kek": {k: n for k, n in sorted(counts.items(), key=_by_kek) if k is not None},
            }
            for name, counts in usage.items()
        },
        "missing_keks": missing,
        "to_rewrap": sum(
            n
            for c in usage.values()
            for k, n in c.items()
            if k not in (None, current) and k not in missing
        ),
        "plaintext": sum(c.get(None, 0) for c in usage.values()),
    }
    if as_json:
        print_json(report)
    else:
        _print_status(report)
    if missing:
        raise typer.Exit(1)


def _by_kek(item: tuple[str | None, int]) -> str:
    return item[0] or ""


def _held(source: KeySource) -> list[str] | None:
    """The KEK ids of a local keyring (None for a provider that cannot list them, e.g. a KMS)."""
    from medagent.secure.at_rest import LocalKeyProvider

    if source.file is not None:
        return source.file.key_ids()
    if isinstance(source.provider, LocalKeyProvider):
        return source.provider.key_ids()
    return None


def _print_status(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"keyring: {report['keyring']}  current KEK: {report['current_kek']}")
    table = Table()
    for column in ("table", "KEK", "rows"):
        table.add_column(column)
    for name, info in report["tables"].items():
        for kek, n in info["by_kek"].items():
            mark = " (current)" if kek == report["current_kek"] else ""
            mark = " (NOT IN KEYRING)" if kek in report["missing_keks"] else mark
            table.add_row(name, f"{kek}{mark}", str(n))
        if info["plaintext"] or not info["by_kek"]:
            table.add_row(name, "plaintext", str(info["plaintext"]))
    console.print(table)
    if report["plaintext"]:
        console.print(f"{report['plaintext']} plaintext row(s): run `medagent store encrypt`")
    if report["to_rewrap"]:
        console.print(
            f"{report['to_rewrap']} row(s) under an older KEK: run `medagent store rewrap`"
        )
    for kek in report["missing_keks"]:
        console.print(f"error: rows are encrypted under KEK {kek!r}, which the keyring lacks")


def _run_batches(
    db: str | None,
    *,
    label: str,
    count: Callable[[SealedColumns, Engine, KeySource], int],
    work: Callable[..., int],
    batch: int,
    as_json: JsonFlag,
) -> None:
    source = _keys()
    done: dict[str, int] = {}
    try:
        with _opened(db) as (engine, tables):
            totals = {spec.table.name: count(spec, engine, source) for spec in tables}
            with _progress() as progress:
                for spec in tables:
                    task = progress.add_task(
                        f"{label} {spec.table.name}", total=totals[spec.table.name]
                    )

                    def advance(n: int, task: Any = task) -> None:
                        progress.advance(task, n)

                    done[spec.table.name] = work(
                        spec, engine, source.provider, batch_size=batch, on_progress=advance
                    )
    except MedAgentError as exc:
        # every finished batch is committed: after fixing the cause, running again resumes
        fail(f"{exc} (batches done so far are kept; run the command again to resume)", code=1)
    if as_json:
        print_json({"current_kek": source.provider.current_key_id(), label: done})
    else:
        for name, n in done.items():
            sys.stdout.write(f"{label}: {n} row(s) of {name}\n")


@store_app.command("encrypt")
def encrypt_command(
    db: DbOption = None, batch: BatchOption = 500, as_json: JsonFlag = False
) -> None:
    """Encrypt plaintext rows in place under the current KEK (resumable: run it again)."""
    from medagent.secure.at_rest import SealedColumns

    _run_batches(
        db,
        label="encrypted",
        count=lambda spec, engine, source: spec.pending(engine, source.provider)[0],
        work=SealedColumns.encrypt_rows,
        batch=batch,
        as_json=as_json,
    )


@store_app.command("rewrap")
def rewrap_command(
    db: DbOption = None, batch: BatchOption = 500, as_json: JsonFlag = False
) -> None:
    """Re-wrap every data key under the current KEK, a batch per transaction (resumable).

    Safe while the service runs: a row written meanwhile is kept as written. When `store status`
    shows nothing under the old KEK, retire it with `store keys retire`.
    """
    from medagent.secure.at_rest import SealedColumns

    _run_batches(
        db,
        label="rewrapped",
        count=lambda spec, engine, source: spec.pending(engine, source.provider)[1],
        work=SealedColumns.rewrap_rows,
        batch=batch,
        as_json=as_json,
    )


def _keyring_file(source: KeySource) -> Any:
    if source.file is None:
        fail(
            f"the keyring comes from {source.origin}; edit it there (a new entry first makes it "
            "current), or use MEDAGENT_KEK_FILE to let medagent manage a keyring file"
        )
    return source.file


@keys_app.command("init")
def keys_init() -> None:
    """Create the keyring file ($MEDAGENT_KEK_FILE, else the default) with one random KEK."""
    import os
    from pathlib import Path

    from medagent.secure.at_rest import ENV_FILE_VAR, create_keyring, default_keyring_path

    name = os.environ.get(ENV_FILE_VAR)
    path = Path(name).expanduser() if name else default_keyring_path()
    try:
        kek = create_keyring(path)
    except (MedAgentError, OSError) as exc:
        fail(str(exc))
    sys.stdout.write(f"created {path} with KEK {kek}\n")
    sys.stderr.write(f"back up {path}: without it the encrypted patient data cannot be read\n")


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """The KEK ids of the keyring, current first, and where the keyring is."""
    source = _keys()
    held = _held(source) or []
    if as_json:
        print_json({"keyring": source.origin, "current": held[:1], "keks": held})
        return
    sys.stdout.write(f"keyring: {source.origin}\n")
    for i, kek in enumerate(held):
        sys.stdout.write(f"{kek}{' (current)' if i == 0 else ''}\n")


@keys_app.command("add")
def keys_add(
    key_id: Annotated[
        str | None, typer.Option("--id", help="KEK id (default: kek-DATE-RANDOM).")
    ] = None,
    not_current: Annotated[
        bool, typer.Option("--not-current", help="Add it without making it current.")
    ] = False,
) -> None:
    """Add a random KEK to the keyring file and make it current (new writes use it at once)."""
    keyring = _keyring_file(_keys())
    try:
        new_id = keyring.add_key(key_id, make_current=not not_current)
    except MedAgentError as exc:
        fail(str(exc))
    sys.stdout.write(f"added KEK {new_id}{'' if not_current else ' (current)'}\n")
    sys.stderr.write(f"back up {keyring.path} now; then run `medagent store rewrap`\n")


@keys_app.command("retire")
def keys_retire(
    key_id: Annotated[str, typer.Argument(help="The KEK to remove from the keyring.")],
    db: DbOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retire even if rows of --db still use it.")
    ] = False,
) -> None:
    """Remove an old KEK; refused while rows of the database are still wrapped under it."""
    source = _keys()
    keyring = _keyring_file(source)
    if key_id == source.provider.current_key_id():
        fail(f"{key_id} is the current KEK: add a new one (`store keys add`) and rewrap first")
    if not force:
        try:
            with _opened(db) as (engine, tables):
                left = sum(spec.status(engine).get(key_id, 0) for spec in tables)
        except MedAgentError as exc:
            fail(str(exc))
        if left:
            fail(f"{left} row(s) are still wrapped under {key_id}: run `medagent store rewrap`")
    try:
        keyring.retire_key(key_id)
    except MedAgentError as exc:
        fail(str(exc))
    sys.stdout.write(f"retired KEK {key_id}\n")
