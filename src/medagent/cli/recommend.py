"""Typer commands of the recommender: `recommend PATIENT | --text`, `eval recommend`, vignettes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medagent.cli._common import JsonFlag, audit_event, fail, open_store, print_json

if TYPE_CHECKING:
    from medagent.eval.recommend import MedCalcReport, VignetteReport
    from medagent.recommend import Recommendation

SettingOption = Annotated[
    str | None,
    typer.Option(
        "--setting", help="Care setting: ed, icu, ward, clinic or preop.", show_default=False
    ),
]


def recommend_command(
    patient: Annotated[
        str | None, typer.Argument(help="Patient id in the record store.", show_default=False)
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            "--text", help="Free-text description (English or Chinese) instead of a patient."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="As of this time (ISO 8601; default now).", show_default=False),
    ] = None,
    setting: SettingOption = None,
    department: Annotated[
        str | None, typer.Option("--department", help="Department, e.g. cardiology.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries (1-10).")] = 5,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL or SQLite path (default: $MEDAGENT_DB).", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Which scales fit this patient now, and why (from the record, or from --text)."""
    from medagent.errors import MedAgentError
    from medagent.recommend import from_record, from_text, recommend

    if (patient is None) == (text is None):
        fail("give a PATIENT id or --text, not both")
    try:
        when = datetime.fromisoformat(at) if at else None
    except ValueError:
        fail(f"--at {at!r} is not an ISO 8601 time")
    try:
        if text is not None:
            ctx = from_text(text, setting=setting, department=department, at=when)
        else:
            with open_store(db, reason="recommend scales") as store:
                ctx = from_record(
                    store, str(patient), at=when, setting=setting, department=department
                )
        rec = recommend(ctx, limit=limit)
    except MedAgentError as error:
        fail(str(error))
    if as_json:
        print_json(rec.to_dict())
    else:
        _print_recommendation(rec)


def _print_recommendation(rec: Recommendation) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ctx = rec.context
    who = ctx.patient_id or "text"
    facts = [
        f"age {ctx.age:g}" if ctx.age is not None else "age unknown",
        ctx.sex or "sex unknown",
    ]
    if ctx.pregnant:
        facts.append("pregnant")
    if ctx.setting:
        facts.append(f"setting {ctx.setting}{' (from the text)' if ctx.setting_inferred else ''}")
    console.print(f"[bold]{who}[/bold] as of {ctx.as_of:%Y-%m-%d %H:%M}: {', '.join(facts)}")
    if not rec.entries:
        console.print("No scale is indicated by what is known.")
    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("Scale")
    table.add_column("Why")
    table.add_column("To complete")
    table.add_column("Result / guidance")
    for i, entry in enumerate(rec.entries, 1):
        best = entry.best
        name = entry.title
        if entry.variants:
            name += "\n" + ", ".join(v.scale.id for v in entry.variants)
        why = "\n".join(f"• {r.text}" for r in best.reasons if r.kind != "data" or r.weight)
        need = (
            "\n".join(f"• {n.label} ({'/'.join(n.answerable_by)})" for n in best.needed[:6])
            or "nothing: every input is known"
        )
        if len(best.needed) > 6:
            need += f"\n… and {len(best.needed) - 6} more"
        outcome = ""
        result = best.result or (best.previous.result if best.previous else None)
        if result is not None:
            band = f" — {result.band.label}" if result.band else ""
            outcome = f"{result.display}{band}"
            for advice in best.guidance():
                source = advice["link"] or _short(advice["citation"], 40)
                outcome += f"\n{advice['text']} [{source}]"
        table.add_row(str(i), name, why, need, outcome)
    if rec.entries:
        console.print(table)
    for x in rec.excluded:
        console.print(f"[dim]not recommended: {x.title} — {x.reason}[/dim]")


def _short(text: str, width: int = 48) -> str:
    head = text.split(" (", maxsplit=1)[0]
    return head if len(head) <= width else head[: width - 1] + "…"


def eval_recommend_command(
    csv_path: Annotated[Path, typer.Argument(help="A MedCalc-Bench CSV (read, never copied).")],
    as_json: JsonFlag = False,
) -> None:
    """Rank of each row's calculator among the recommendations for its Patient Note alone."""
    from medagent.errors import MedAgentError
    from medagent.eval.recommend import run_medcalc_csv

    try:
        report = run_medcalc_csv(csv_path)
    except MedAgentError as error:
        fail(str(error))
    if as_json:
        print_json(report.to_dict())
    else:
        _print_medcalc(report)


def _print_medcalc(report: MedCalcReport) -> None:
    from rich.console import Console
    from rich.table import Table

    data = report.to_dict()
    console = Console()
    o = data["overall"]
    console.print(
        f"{o['rows']} notes: top-1 {o['top1']:.1%}, top-3 {o['top3']:.1%}, top-5 {o['top5']:.1%}"
        f" (members: {o['member_top1']:.1%} / {o['member_top3']:.1%} / {o['member_top5']:.1%});"
        f" entries per note median {data['entries_per_note']['median']}"
    )
    table = Table()
    for col in ("id", "calculator", "scale", "rows", "top-1", "top-3", "top-5", "member top-3"):
        table.add_column(col)
    for c in data["by_calculator"]:
        table.add_row(
            str(c["calculator_id"]),
            c["name"][:40],
            c["scale"],
            str(c["rows"]),
            f"{c['top1']:.0%}",
            f"{c['top3']:.0%}",
            f"{c['top5']:.0%}",
            f"{c['member_top3']:.0%}",
        )
    console.print(table)


def eval_vignettes_command(as_json: JsonFlag = False) -> None:
    """Precision and recall of the recommender on the shipped vignettes (English and Chinese)."""
    from medagent.eval.recommend import run_vignettes

    report = run_vignettes()
    if as_json:
        print_json(report.to_dict())
    else:
        _print_vignettes(report)


def _print_vignettes(report: VignetteReport) -> None:
    from rich.console import Console

    data = report.to_dict()
    console = Console()
    for key in ("overall", "en", "zh"):
        f = data[key]
        console.print(
            f"{key}: {f['vignettes']} vignettes, recall {f['recall']:.1%} "
            f"({f['must_found']}/{f['must']}), precision {f['precision']:.1%} "
            f"({f['must_not_recommended']} must-not recommended), all correct {f['all_correct']}"
        )
    for fail_row in data["failures"]:
        console.print(
            f"[dim]{fail_row['id']}: missing {fail_row['missing']}, wrong {fail_row['wrong']},"
            f" got {fail_row['got']}[/dim]"
        )


def assess_command(
    patient: Annotated[str, typer.Argument(help="Patient id in the record store.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="As of this time (ISO 8601; default now).", show_default=False),
    ] = None,
    setting: SettingOption = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries (1-10).")] = 5,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL or SQLite path (default: $MEDAGENT_DB).", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recommend, populate and score in one go: results, missing items and guidance."""
    from medagent.errors import MedAgentError
    from medagent.recommend import assess
    from medagent.record.audited import score_detail

    try:
        when = datetime.fromisoformat(at) if at else None
    except ValueError:
        fail(f"--at {at!r} is not an ISO 8601 time")
    reason = "assess: recommend, populate and score"
    try:
        with open_store(db, reason=reason) as store:
            outcome = assess(store, patient, at=when, setting=setting, limit=limit)
            for item in outcome.assessed:
                audit_event(
                    action="score",
                    resource=f"Patient/{patient}",
                    reason=reason,
                    detail=score_detail(item.evaluation.result),
                    log=store.audit,
                )
    except MedAgentError as error:
        fail(str(error))
    if as_json:
        print_json(outcome.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ctx = outcome.recommendation.context
    console.print(f"[bold]{patient}[/bold] as of {ctx.as_of:%Y-%m-%d %H:%M}")
    if not outcome.assessed:
        console.print("No scale is indicated by what is known.")
        return
    table = Table(show_lines=True)
    for column in ("Scale", "Result", "From the record", "Still needed (who can answer)"):
        table.add_column(column)
    for item in outcome.assessed:
        result = item.evaluation.result
        if result.complete:
            shown = result.display + (f" — {result.band.label}" if result.band else "")
        elif result.minimum is not None and result.maximum is not None:
            shown = f"incomplete: {result.minimum:g} to {result.maximum:g}"
        else:
            shown = "incomplete"
        if result.band is not None:
            for advice in result.band.guidance:
                shown += f"\n[dim]{advice.text}[/dim]"
        filled = "\n".join(
            f"{f.id} = {f.value}  [dim]{f.provenance.describe()}[/dim]"
            for f in item.population.filled.values()
        )
        needed = "\n".join(f"{m.label} ({', '.join(m.answerable_by)})" for m in result.missing)
        table.add_row(result.scale.title, shown, filled or "—", needed or "—")
    console.print(table)
