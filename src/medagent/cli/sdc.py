"""Commands for FHIR SDC: export scales as Questionnaires (one, or the whole library to files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from medagent.cli._common import fail, print_json
from medagent.errors import MedAgentError

sdc_app = typer.Typer(help="FHIR SDC: scales as Questionnaires.", no_args_is_help=True)


@sdc_app.callback()
def sdc_callback() -> None:
    """FHIR SDC: scales as Questionnaires with calculatedExpression scoring."""


@sdc_app.command("questionnaire")
def questionnaire_command(
    scale_id: Annotated[str | None, typer.Argument(help="The scale to export.")] = None,
    all_scales: Annotated[
        bool, typer.Option("--all", help="Export every scale of the library (needs --out).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory to write <scale id>.json files to.")
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Canonical base URL to publish under.")
    ] = None,
    check: Annotated[
        bool, typer.Option("--validate", help="Validate each Questionnaire (FHIR R4B model).")
    ] = False,
) -> None:
    """Print a scale's FHIR Questionnaire as JSON, or write every scale's with --all --out DIR."""
    from medagent.scales import all_scales as library
    from medagent.scales import get_scale
    from medagent.sdc import questionnaire, validate
    from medagent.sdc.codes import CANONICAL_BASE

    if all_scales == (scale_id is not None):
        fail("give a scale id, or --all with --out DIR")
    if all_scales and out is None:
        fail("--all writes one file per scale: give --out DIR")
    try:
        scales = library() if all_scales else [get_scale(scale_id or "")]
        resources = [questionnaire(s, base=base or CANONICAL_BASE) for s in scales]
        if check:
            for resource in resources:
                validate(resource)
    except MedAgentError as exc:
        fail(str(exc))
    if out is None:
        print_json(resources[0])
        return
    out.mkdir(parents=True, exist_ok=True)
    for scale, resource in zip(scales, resources, strict=True):
        text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
        (out / f"{scale.id}.json").write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {len(resources)} Questionnaire(s) to {out}\n")
