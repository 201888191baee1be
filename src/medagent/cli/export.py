"""`medagent export PATIENT --to KEY`: a patient's record as a FHIR Bundle, sealed end to end.

A referral package leaves the hospital only sealed to its recipient (HPKE with ML-KEM-768 +
X25519, signed with ML-DSA-65: :mod:`medagent.secure.seal`); the recipient opens it with
`medagent open`. The record is read through the audited store, so the export is in the audit
trail with the recipient's key id.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from medagent.cli._common import JsonFlag, audit_event, fail, open_store, print_json
from medagent.errors import MedAgentError

if TYPE_CHECKING:
    from medagent.record.store import RecordStore

PAGE = 500
CONTENT_TYPE = "application/fhir+json"


def patient_bundle(store: RecordStore, patient_id: str) -> dict[str, Any]:
    """The Patient and every resource of their compartment, as a FHIR R4 `collection` Bundle."""
    resources = [store.get("Patient", patient_id)]
    for resource_type in store.resource_types():
        if resource_type == "Patient":
            continue
        offset = 0
        while True:
            page, total = store.search(resource_type, patient=patient_id, count=PAGE, offset=offset)
            resources.extend(page)
            offset += len(page)
            if not page or offset >= total:
                break
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource} for resource in resources
        ],
    }


def export_command(
    patient: Annotated[str, typer.Argument(help="Patient id in the record store.")],
    recipient: Annotated[Path, typer.Option("--to", help="The recipient's public key file.")],
    sender: Annotated[Path, typer.Option("--from", help="This site's private key file.")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Package file (default: standard output).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL or SQLite path (default: $MEDAGENT_DB)."),
    ] = None,
    passphrase_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding the private key's passphrase."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Seal a patient's record (FHIR Bundle) to a recipient; open it with `medagent open`."""
    from medagent.cli.secure import _passphrase, _write
    from medagent.secure.keys import read_identity, read_public_identity
    from medagent.secure.seal import inspect, seal

    try:
        to = read_public_identity(recipient)
        me = read_identity(sender, _passphrase(passphrase_env))
        reason = f"referral export to {to.kem_key_id}"
        with open_store(db, reason=reason) as store:
            bundle = patient_bundle(store, patient)
        data = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode()
        package = seal(data, sender=me, recipient=to, content_type=CONTENT_TYPE)
        # the export itself, before the package is written out (the reads are in the trail too)
        audit_event(
            action="export",
            resource=f"Patient/{patient}",
            reason=reason,
            detail=(
                f"package {inspect(package).package_id}: {len(bundle['entry'])} resources"
                f" ({len(data)} bytes) to recipient key {to.kem_key_id},"
                f" written to {output or 'standard output'}"
            ),
        )
    except MedAgentError as exc:
        fail(str(exc), code=1)
    _write(output, package)
    if as_json and output is not None:
        print_json(
            {
                "patient": patient,
                "resources": len(bundle["entry"]),
                "recipient": to.kem_key_id,
                "sender": me.public().signing_key_id,
                "package": str(output),
                "bytes": len(package),
            }
        )
    elif output is not None:
        sys.stdout.write(
            f"{len(bundle['entry'])} resources of {patient} sealed to {to.kem_key_id}: {output}\n"
        )
