"""The SDC ``$populate`` operation: a scale's Questionnaire answered from a patient's record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from medagent.sdc.codes import CANONICAL_BASE
from medagent.sdc.extract import participant, questionnaire_response

if TYPE_CHECKING:
    from medagent.populate.model import Population

Json = dict[str, Any]

ANSWER_SOURCE = "StructureDefinition/answer-source"


def populate_operation(
    population: Population,
    *,
    recorded: datetime | None = None,
    base: str = CANONICAL_BASE,
) -> Json:
    """The ``$populate`` output: Parameters with the ``response`` and the ``issues``.

    The QuestionnaireResponse is ``in-progress``: every answer the record gave carries an
    extension naming its source resource and the rule that chose it, and nothing else is
    answered. A Provenance (returned as a contained parameter) lists every source resource and
    the users whose overrides were used. ``issues`` is an OperationOutcome naming each unanswered
    item, why the record could not answer it, and who can.
    """
    recorded = recorded or datetime.now(UTC)
    evaluation = population.evaluate()
    subject = f"Patient/{population.patient_id}"
    response = questionnaire_response(
        evaluation.result,
        subject=subject,
        authored=recorded,
        response_id=str(uuid.uuid4()),
        base=base,
    )
    response["status"] = "in-progress"  # populated, not yet reviewed by a person
    source_url = f"{base}/{ANSWER_SOURCE}"
    for item in response["item"]:
        origin = evaluation.provenance.get(item["linkId"])
        if origin is None:
            continue
        extension: list[Json] = [{"url": "rule", "valueString": origin.rule}]
        if origin.reference:
            extension.append({"url": "resource", "valueReference": {"reference": origin.reference}})
        if origin.effective is not None:
            extension.append({"url": "effective", "valueString": origin.effective.isoformat()})
        if origin.conversion:
            extension.append({"url": "conversion", "valueString": origin.conversion})
        if origin.entered_by:
            extension.append({"url": "enteredBy", "valueString": origin.entered_by})
        item["extension"] = [{"url": source_url, "extension": extension}]
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "response", "resource": response},
            {"name": "provenance", "resource": _provenance(population, response, recorded)},
            {"name": "issues", "resource": _issues(population)},
        ],
    }


def _provenance(population: Population, response: Json, recorded: datetime) -> Json:
    from medagent import __version__

    origins = [f.provenance for f in population.filled.values()]
    agents: list[Json] = [
        {
            "type": participant("assembler", "Assembler"),
            "who": {"display": f"medagent {__version__}"},
        }
    ]
    for user in sorted({o.entered_by for o in origins if o.entered_by}):
        agents.append({"type": participant("enterer", "Enterer"), "who": {"display": user}})
    sources = sorted({o.reference for o in origins if o.reference})
    resource: Json = {
        "resourceType": "Provenance",
        "id": str(uuid.uuid4()),
        "target": [{"reference": f"QuestionnaireResponse/{response['id']}"}],
        "recorded": recorded.isoformat(),
        "agent": agents,
    }
    if sources:
        resource["entity"] = [{"role": "source", "what": {"reference": r}} for r in sources]
    return resource


def _issues(population: Population) -> Json:
    issues: list[Json] = []
    for gap in population.unfilled.values():
        who = ", ".join(gap.answerable_by) or "nobody named"
        issues.append(
            {
                "severity": "information",
                "code": "not-found",
                "diagnostics": f"{gap.id}: {gap.reason.value} ({gap.detail}); can answer: {who}",
                "expression": [f"QuestionnaireResponse.item.where(linkId='{gap.id}')"],
            }
        )
    if not issues:
        issues.append(
            {"severity": "information", "code": "informational", "diagnostics": "all answered"}
        )
    return {"resourceType": "OperationOutcome", "issue": issues}
