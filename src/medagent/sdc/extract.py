"""Turn a finished assessment into FHIR: QuestionnaireResponse, Observation and Provenance."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from medagent.scales.engine import Result
from medagent.scales.model import InputDef, InputType, Scale
from medagent.sdc.codes import (
    CANONICAL_BASE,
    LOINC,
    OBSERVATION_CATEGORY,
    PROVENANCE_PARTICIPANT_TYPE,
    SDC_QUESTIONNAIRE_RESPONSE,
    UCUM,
    band_system,
    option_coding,
    questionnaire_url,
    scale_code_system,
)
from medagent.sdc.errors import SdcError
from medagent.sdc.questionnaire import TOTAL_LINK_ID

Json = dict[str, Any]


class Extraction(NamedTuple):
    """An Observation of a score, and the Provenance saying who recorded it, when, from what."""

    observation: Json
    provenance: Json


def questionnaire_response(
    result: Result,
    *,
    subject: str | None = None,
    author: str | None = None,
    authored: datetime | None = None,
    response_id: str | None = None,
    base: str = CANONICAL_BASE,
) -> Json:
    """The answers of a result as a QuestionnaireResponse to the scale's Questionnaire.

    Every given input is answered (in the unit the scale declares, after the engine's conversion);
    a missing input has no answer at all. The hidden total is answered when the result is complete.
    """
    scale = result.scale
    response: Json = {
        "resourceType": "QuestionnaireResponse",
        "id": response_id or str(uuid.uuid4()),
        "meta": {"profile": [SDC_QUESTIONNAIRE_RESPONSE]},
        "questionnaire": f"{questionnaire_url(scale, base)}|{scale.version}",
        "status": "completed" if result.complete else "in-progress",
    }
    if subject:
        response["subject"] = {"reference": subject}
    if authored is not None:
        response["authored"] = _instant(authored, "authored")
    if author:
        response["author"] = {"reference": author}
    items: list[Json] = []
    for spec in scale.inputs:
        value = result.inputs.get(spec.id)
        if value is None:
            continue
        items.append(
            {
                "linkId": spec.id,
                "text": spec.label,
                "answer": [answer_value(scale, spec, value, base=base)],
            }
        )
    if scale.scoring.method == "sum" and result.complete and isinstance(result.value, float):
        items.append(
            {
                "linkId": TOTAL_LINK_ID,
                "text": scale.output.label,
                "answer": [_total_answer(scale, result.value)],
            }
        )
    response["item"] = items
    return response


def answer_value(
    scale: Scale, spec: InputDef, value: object, *, base: str = CANONICAL_BASE
) -> Json:
    """One engine value (already checked and converted) as a QuestionnaireResponse answer."""
    kind = spec.type
    if kind is InputType.BOOLEAN:
        return {"valueBoolean": bool(value)}
    if kind is InputType.CHOICE:
        option = spec.option(str(value))
        if option is None:
            raise SdcError(f"{scale.id}.{spec.id}: {value!r} is not an option")
        return {"valueCoding": option_coding(option, scale=scale, spec=spec, base=base)}
    if kind is InputType.DATE:
        if not isinstance(value, date):
            raise SdcError(f"{scale.id}.{spec.id}: {value!r} is not a date")
        return {"valueDate": value.isoformat()}
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SdcError(f"{scale.id}.{spec.id}: {value!r} is not a number")
    if kind is InputType.INTEGER:
        return {"valueInteger": int(value)}
    return {"valueDecimal": float(value)}


def _total_answer(scale: Scale, value: float) -> Json:
    if scale.output.type == "integer" and float(value).is_integer():
        return {"valueInteger": int(value)}
    return {"valueDecimal": value}


def extract(
    result: Result,
    *,
    subject: str,
    effective: datetime,
    author: str | None = None,
    recorded: datetime | None = None,
    questionnaire_response: str | None = None,
    observation_id: str | None = None,
    base: str = CANONICAL_BASE,
) -> Extraction:
    """A complete result as an Observation (LOINC where the scale has a code) plus Provenance.

    ``subject`` and ``author`` are references (``Patient/1``, ``Practitioner/7``); ``effective`` is
    when the assessment applies, ``recorded`` when it was recorded (now by default);
    ``questionnaire_response`` references the response the score was computed from.
    """
    scale = result.scale
    if not result.complete or result.value is None:
        missing = ", ".join(m.id for m in result.missing) or "unknown"
        raise SdcError(f"{scale.id}: an incomplete result cannot be extracted (missing {missing})")
    recorded = recorded or datetime.now(UTC)
    obs_id = observation_id or str(uuid.uuid4())
    observation: Json = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ],
        "code": _score_code(scale, base),
        "subject": {"reference": subject},
        "effectiveDateTime": _instant(effective, "effective"),
        "issued": _instant(recorded, "recorded"),
    }
    if author:
        observation["performer"] = [{"reference": author}]
    observation.update(_value(scale, result.value))
    if result.band is not None:
        band = result.band
        observation["interpretation"] = [
            {
                "coding": [
                    {"system": band_system(scale, base), "code": band.id, "display": band.label}
                ],
                "text": band.label,
            }
        ]
    reference = scale.primary_reference
    observation["note"] = [
        {
            "text": (
                f"Computed by medagent from scale {scale.id} version {scale.version}. "
                f"Source: {reference.citation}" + (f" {reference.link}" if reference.link else "")
            )
        }
    ]
    observation["method"] = {
        "coding": [
            {
                "system": scale_code_system(base),
                "version": scale.version,
                "code": scale.id,
                "display": scale.title,
            }
        ],
        "text": f"medagent scale {scale.id} v{scale.version}",
    }
    if questionnaire_response:
        observation["derivedFrom"] = [{"reference": questionnaire_response}]
    return Extraction(
        observation,
        provenance(
            target=f"Observation/{obs_id}",
            recorded=recorded,
            author=author,
            source=questionnaire_response,
        ),
    )


def provenance(
    *,
    target: str,
    recorded: datetime,
    author: str | None = None,
    source: str | None = None,
) -> Json:
    """A Provenance: medagent assembled ``target`` (authored by ``author``) from ``source``."""
    from medagent import __version__

    agents: list[Json] = []
    if author:
        agents.append({"type": participant("author", "Author"), "who": {"reference": author}})
    agents.append(
        {
            "type": participant("assembler", "Assembler"),
            "who": {"display": f"medagent {__version__}"},
        }
    )
    resource: Json = {
        "resourceType": "Provenance",
        "id": str(uuid.uuid4()),
        "target": [{"reference": target}],
        "recorded": _instant(recorded, "recorded"),
        "agent": agents,
    }
    if source:
        resource["entity"] = [{"role": "source", "what": {"reference": source}}]
    return resource


def participant(code: str, display: str) -> Json:
    """A Provenance participant type (author, assembler, enterer …)."""
    return {"coding": [{"system": PROVENANCE_PARTICIPANT_TYPE, "code": code, "display": display}]}


def _score_code(scale: Scale, base: str) -> Json:
    local = {"system": scale_code_system(base), "code": scale.id, "display": scale.title}
    coding = [local]
    if scale.loinc:
        coding.insert(0, {"system": LOINC, "code": scale.loinc, "display": scale.title})
    return {"coding": coding, "text": scale.title}


def _value(scale: Scale, value: float | date) -> Json:
    """The value as reported: at the scale's display precision, with its UCUM unit."""
    if isinstance(value, date):
        return {"valueDateTime": value.isoformat()}
    out = scale.output
    if out.type == "integer":
        return {"valueInteger": round(value)}
    shown = float(f"{value:.{out.precision}f}")
    unit = out.unit or ("{score}" if scale.scoring.method == "sum" else "1")
    return {"valueQuantity": {"value": shown, "unit": unit, "system": UCUM, "code": unit}}


def _instant(moment: datetime, name: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SdcError(f"{name}: a FHIR instant needs a time zone ({moment.isoformat()} has none)")
    return moment.isoformat()
