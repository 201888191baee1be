"""What every command module of the CLI shares: --json, JSON output, clean failures, auditing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from medagent.record.audited import AuditedRecordStore
    from medagent.secure.audit import AuditLog

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or arguments)."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


# ---- the audit trail of commands -------------------------------------------------------------
# Every command that reads or writes patient data opens the record through `open_store`, which
# audits it to the log at `$MEDAGENT_AUDIT` (default: medagent-audit.db beside the default
# record store) as the operating-system user, from `cli@HOSTNAME`, for the command's purpose.


def audit_log() -> AuditLog:
    """The audit log of command-line use (`$MEDAGENT_AUDIT`, else the user data directory)."""
    from medagent.secure.audit import AuditLog, default_audit_path

    return AuditLog(default_audit_path())


@contextmanager
def open_store(db: str | None, *, reason: str) -> Iterator[AuditedRecordStore]:
    """The record store at ``db`` (default `$MEDAGENT_DB`), audited, inside an audit context
    naming this user, this host and ``reason``; closed on exit."""
    from medagent.record.audited import AuditedRecordStore, audit_context, process_context
    from medagent.record.db import default_url

    ctx = process_context(reason)
    store = AuditedRecordStore.open(db or default_url(), audit=audit_log(), default=ctx)
    try:
        with audit_context(actor=ctx.actor, source=ctx.source, reason=reason):
            yield store
    finally:
        store.close()


def audit_event(
    *,
    action: str,
    resource: str,
    reason: str,
    detail: str = "",
    outcome: str = "success",
    log: AuditLog | None = None,
) -> None:
    """Write one entry for something a command did besides reading the record (a score, an
    override, an export) as this user from this host."""
    from medagent.record.audited import process_context

    ctx = process_context(reason)
    (log or audit_log()).append(
        actor=ctx.actor,
        action=action,
        resource=resource,
        source=ctx.source,
        reason=reason,
        outcome=outcome,
        detail=detail,
    )
