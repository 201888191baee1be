"""The medagent command line: thin Typer commands over the library, one module per area."""

from __future__ import annotations

import typer

from medagent.cli import (
    export,
    monitor,
    notes,
    populate,
    recommend,
    record,
    scales,
    sdc,
    secure,
    service,
    store,
)

app = typer.Typer(
    help="medagent: clinical scales with provenance, explanations and guidance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(scales.scales_app, name="scales")
app.add_typer(scales.eval_app, name="eval")
app.command("score")(scales.score)
app.add_typer(secure.keys_app, name="keys")
app.command("seal")(secure.seal_command)
app.command("open")(secure.open_command)
app.command("export")(export.export_command)
app.add_typer(secure.audit_app, name="audit")
app.add_typer(secure.link_app, name="gateway")
app.command("import")(record.import_command)
app.command("patients")(record.patients_command)
app.command("extract")(notes.extract_command)
app.add_typer(sdc.sdc_app, name="sdc")
app.command("questionnaire")(sdc.questionnaire_command)
app.command("recommend")(recommend.recommend_command)
app.command("assess")(recommend.assess_command)
scales.eval_app.command("recommend")(recommend.eval_recommend_command)
scales.eval_app.command("vignettes")(recommend.eval_vignettes_command)
app.command("populate")(populate.populate_command)
app.command("override")(populate.override_command)
app.command("serve")(service.serve)
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(store.store_app, name="store")
app.command("replay")(monitor.replay_command)


def main() -> None:  # pragma: no cover - console entry point
    """Run the CLI; a MedAgentError that escapes a command (a missing encryption key found while
    reading, say) is printed as one `error:` line, never as a traceback."""
    from medagent.errors import MedAgentError

    try:
        app()
    except MedAgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
