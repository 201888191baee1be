"""Commands for the scale library: list, show, verify, score, and the MedCalc-Bench harness."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from medagent.cli._common import JsonFlag, fail, print_json
from medagent.errors import MedAgentError

scales_app = typer.Typer(help="Browse and check the scale library.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure medagent against benchmarks.", no_args_is_help=True)


@scales_app.command("list")
def scales_list(as_json: JsonFlag = False) -> None:
    """List every scale: id, title, version, number of references and examples."""
    from medagent.scales import all_scales

    scales = all_scales()
    rows: list[dict[str, Any]] = [
        {
            "id": s.id,
            "title": s.title,
            "version": s.version,
            "category": s.category,
            "references": len(s.references),
            "examples": len(s.examples),
        }
        for s in scales
    ]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} scales")
    for col in ("id", "title", "version", "category", "refs", "examples"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["title"],
            r["version"],
            r["category"],
            str(r["references"]),
            str(r["examples"]),
        )
    Console().print(table)


@scales_app.command("show")
def scales_show(scale_id: str, as_json: JsonFlag = False) -> None:
    """Show a scale's whole definition, with its references as links."""
    from medagent.scales import get_scale

    try:
        scale = get_scale(scale_id)
    except MedAgentError as exc:
        fail(str(exc))
        return
    data = scale.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for ref, out in zip(scale.references, data["references"], strict=True):
        out["link"] = ref.link
    if as_json:
        print_json(data)
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{scale.title}[/bold]  ({scale.id} v{scale.version})")
    console.print(scale.purpose)
    console.print(f"[dim]Population:[/dim] {scale.population}")
    console.print(f"[dim]Licence:[/dim] {scale.licence.status} {scale.licence.note}")
    console.print("[bold]Inputs[/bold]")
    for spec in scale.inputs:
        extra = f" [{spec.unit}]" if spec.unit else ""
        rng = f" range {spec.range[0]:g}–{spec.range[1]:g}" if spec.range else ""
        opts = f" options: {', '.join(o.code for o in spec.options)}" if spec.options else ""
        console.print(f"  {spec.id}: {spec.label} ({spec.type.value}{extra}{rng}){opts}")
    if scale.bands:
        console.print("[bold]Bands[/bold]")
        for band in scale.bands:
            console.print(f"  {band.describe('score')}: {band.label}. {band.interpretation}")
    if scale.alerts:
        console.print("[bold]Alerts[/bold] (fire on single answers, whatever the total)")
        for alert in scale.alerts:
            when = " and ".join(c.describe() for c in alert.when)
            console.print(f"  [bold red]{alert.severity}[/bold red] {alert.id} when {when}")
            console.print(f"    {alert.text}", markup=False)
    console.print("[bold]References[/bold]")
    for ref in scale.references:
        link = ref.link or ""
        console.print(f"  {ref.citation} [link={link}]{link}[/link]")
    console.print(f"[bold]Worked examples[/bold]: {len(scale.examples)}")


@scales_app.command("verify")
def scales_verify(
    scale_ids: Annotated[
        list[str] | None, typer.Argument(help="Scales to check (default all).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run every worked example of every scale; exit non-zero on any failure."""
    from medagent.scales import all_scales, get_scale
    from medagent.scales.verify import verify_scale

    try:
        scales = [get_scale(i) for i in scale_ids] if scale_ids else all_scales()
    except MedAgentError as exc:
        fail(str(exc))
        return
    outcomes = [o for s in scales for o in verify_scale(s)]
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        print_json(
            {
                "scales": len(scales),
                "examples": len(outcomes),
                "failed": [{"id": o.test_id, "message": o.message} for o in failed],
            }
        )
    else:
        for o in failed:
            sys.stdout.write(f"FAIL {o.test_id}: {o.message}\n")
        sys.stdout.write(f"{len(scales)} scales, {len(outcomes)} checks, {len(failed)} failed\n")
    if failed:
        raise typer.Exit(1)


def _parse_assignments(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{pair!r}: write inputs as key=value, e.g. creatinine=1.2mg/dL")
        inputs[key.strip()] = value.strip()
    return inputs


def score(
    scale_id: str,
    assignments: Annotated[
        list[str] | None, typer.Argument(help="Inputs as key=value[unit], e.g. age=72 weight=70kg")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate one scale; incomplete results say what is missing and the range still possible."""
    from medagent.cli._common import audit_event
    from medagent.record.audited import score_detail
    from medagent.scales import evaluate, get_scale

    inputs = _parse_assignments(assignments or [])
    try:
        result = evaluate(get_scale(scale_id), inputs)
    except MedAgentError as exc:
        fail(str(exc))
        return
    # the inputs may be a patient's, typed in: the score is recorded, though no record was read
    audit_event(
        action="score",
        resource=f"scale:{result.scale.id}",
        reason="score from inputs given on the command line",
        detail=score_detail(result) + f", inputs {', '.join(sorted(inputs)) or 'none'}",
    )
    if as_json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.explanation + "\n")


@eval_app.command("medcalc")
def eval_medcalc(
    csv_path: Annotated[Path, typer.Argument(help="A MedCalc-Bench CSV (e.g. the dev half).")],
    mode: Annotated[
        str,
        typer.Option(help="entities: the rows' Relevant Entities; notes: the Patient Note only."),
    ] = "entities",
    extractor: Annotated[str, typer.Option(help="Notes mode: rules | llm | both.")] = "rules",
    failures: Annotated[
        Path | None, typer.Option(help="Notes mode: write every failure (JSON lines) here.")
    ] = None,
    calculator: Annotated[
        list[int] | None, typer.Option("--calculator", "-c", help="Only these calculator ids.")
    ] = None,
    show: Annotated[int, typer.Option(help="Disagreements to print (text mode).")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Run the MedCalc-Bench harness and report accuracy against raw and adjudicated labels."""
    from medagent.eval import medcalc

    if not csv_path.is_file():
        fail(f"{csv_path}: no such file")
    if mode not in ("entities", "notes"):
        fail(f"mode {mode!r} is not available (entities, notes)")
    rows = medcalc.read_rows(csv_path)
    if calculator:
        rows = [r for r in rows if r.calculator_id in set(calculator)]
    try:
        if mode == "notes":
            from medagent.cli.notes import eval_notes

            report = eval_notes(rows, extractor=extractor, failures=failures)
        else:
            report = medcalc.run_entities(rows).to_dict(mode=mode)
    except MedAgentError as exc:
        fail(str(exc))
    if as_json:
        print_json(report)
        return
    _print_medcalc(report, show)


def _print_medcalc(report: dict[str, Any], show: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"MedCalc-Bench ({report['mode']} mode)")
    for col in ("id", "calculator", "rows", "raw", "adjudicated"):
        table.add_column(col)
    for cid, entry in report["per_calculator"].items():
        flag = " *" if entry["label_errors_known"] else ""
        table.add_row(
            cid,
            entry["name"] + flag,
            str(entry["rows"]),
            f"{entry['raw']['accuracy']:.1%}",
            f"{entry['adjudicated']['accuracy']:.1%}",
        )
    console.print(table)
    console.print("* calculators with known label errors in v1.0")
    for cat, entry in report["per_category"].items():
        raw, adj = entry["raw"]["accuracy"], entry["adjudicated"]["accuracy"]
        console.print(f"{cat}: raw {raw:.1%}, adjudicated {adj:.1%}")
    adj = report["adjudicated"]
    cons = report["self_consistent_calculators"]
    console.print(
        f"[bold]Overall[/bold]: raw {report['correct']}/{report['rows']} "
        f"= {report['accuracy']:.1%}; "
        f"adjudicated {adj['correct']}/{adj['rows']} = {adj['accuracy']:.1%}; "
        f"self-consistent calculators {cons['correct']}/{cons['rows']} = {cons['accuracy']:.1%}"
    )
    for d in report["disagreements"][:show]:
        console.print(
            f"row {d['row']} [{d['calculator_id']}] label {d['label']} ours {d['ours']} "
            f"adjudicated {d['adjudicated']} {d['error'] or ''}"
        )
