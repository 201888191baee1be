"""Commands for clinical notes: `extract SCALE NOTE_FILE` and the notes mode of `eval medcalc`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from medagent.errors import MedAgentError
from medagent.eval.medcalc import Row
from medagent.eval.medcalc_notes import Extractor, extract, run_notes
from medagent.notes.model import Extraction, NoteError
from medagent.scales import evaluate, get_scale
from medagent.secure.deid import PatientIdentifiers


def extract_command(
    scale: Annotated[str, typer.Argument(help="Scale id")],
    note_file: Annotated[Path, typer.Argument(help="A text file holding the note", exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    extractor: Annotated[str, typer.Option(help="rules | llm | both")] = "rules",
    patient_file: Annotated[
        Path | None,
        typer.Option(
            "--patient",
            exists=True,
            help="FHIR Patient (or a Bundle holding one): its names, identifiers, telecoms and "
            "address are removed before the note goes to an LLM (patterns and date shifts "
            "apply either way)",
        ),
    ] = None,
) -> None:
    """Print the inputs read from the note, each with its span, and the score."""
    from medagent.cli._common import audit_event
    from medagent.record.audited import score_detail

    try:
        note = note_file.read_text(encoding="utf-8")
        choice = extractor_choice(extractor)
        if patient_file is not None and choice != "rules":
            ex = _extract_with_patient(scale, note, choice, _patient(patient_file))
        else:
            ex = extract(scale, note, extractor=choice)
        result = evaluate(get_scale(scale), ex.inputs())
    except MedAgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # a clinical note is patient data even outside the record: who read which file, and why
    audit_event(
        action="score",
        resource="note-file",
        reason=f"extract {scale} from a note ({extractor})",
        detail=f"{note_file.resolve()}: {score_detail(result)}",
    )
    if as_json:
        typer.echo(
            json.dumps({"extraction": ex.to_dict(), "result": result.to_dict()}, default=str)
        )
        return
    for f in ex.filled.values():
        value = f"{f.value[0]:g} {f.value[1]}" if isinstance(f.value, tuple) else str(f.value)
        span = f.chosen.span
        extra = f" (+{len(f.alternatives)} other)" if f.alternatives else ""
        typer.echo(
            f"  {f.input_id} = {value}   [{span.start}:{span.end}] {span.text!r} {f.rule}{extra}"
        )
    if ex.missing:
        typer.echo("  not in the note: " + ", ".join(ex.missing))
    for flag in ex.flags:
        typer.echo(f"  FLAG {flag.input_id}: {flag.message}")
    typer.echo(result.explanation)


def _patient(path: Path) -> PatientIdentifiers:
    """The identifiers of the Patient in a FHIR JSON file (a Patient or a Bundle with one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoteError(f"{path}: {exc}") from None
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        found: list[dict[str, Any]] = [
            e["resource"]
            for e in data.get("entry") or ()
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
        data = next((r for r in found if r.get("resourceType") == "Patient"), None)
    if not isinstance(data, dict) or data.get("resourceType") != "Patient":
        raise NoteError(f"{path}: no FHIR Patient resource in the file")
    return PatientIdentifiers.from_fhir_patient(data)


def _extract_with_patient(
    scale_id: str, note: str, choice: Extractor, patient: PatientIdentifiers
) -> Extraction:
    from medagent.llm.client import ChatClient
    from medagent.notes.llm import extract_llm, merge
    from medagent.notes.rules import extract_rules

    scale = get_scale(scale_id)
    llm = extract_llm(scale, note, client=ChatClient.from_env(), patient=patient)
    return llm if choice == "llm" else merge(extract_rules(scale, note), llm)


def extractor_choice(value: str) -> Extractor:
    """Check an --extractor value."""
    if value not in ("rules", "llm", "both"):
        raise NoteError(f"extractor must be rules, llm or both, not {value!r}")
    return cast(Extractor, value)


def eval_notes(
    rows: Iterable[Row], *, extractor: str = "rules", failures: Path | None = None
) -> dict[str, object]:
    """`medagent eval medcalc CSV --mode notes`: the report as a dict, for the lead's CLI to print
    (same shape as the entities mode, so `_print_medcalc` works unchanged)."""
    report = run_notes(rows, extractor_choice(extractor), failures=failures)
    return report.to_dict(mode=f"notes-{extractor}")
