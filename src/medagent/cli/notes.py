"""Commands for clinical notes: `extract SCALE NOTE_FILE` and the notes mode of `eval medcalc`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, cast

import typer

from medagent.errors import MedAgentError
from medagent.eval.medcalc import Row
from medagent.eval.medcalc_notes import Extractor, extract, run_notes
from medagent.notes.model import NoteError
from medagent.scales import evaluate, get_scale


def extract_command(
    scale: Annotated[str, typer.Argument(help="Scale id")],
    note_file: Annotated[Path, typer.Argument(help="A text file holding the note", exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    extractor: Annotated[str, typer.Option(help="rules | llm | both")] = "rules",
) -> None:
    """Print the inputs read from the note, each with its span, and the score."""
    try:
        note = note_file.read_text(encoding="utf-8")
        ex = extract(scale, note, extractor=extractor_choice(extractor))
        result = evaluate(get_scale(scale), ex.inputs())
    except MedAgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
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
