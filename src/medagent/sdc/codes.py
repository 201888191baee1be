"""URLs of the FHIR, SDC and terminology systems the SDC export uses, and medagent's own ones."""

from __future__ import annotations

from medagent.scales.model import InputDef, Option, Scale

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# medagent has no registered FHIR canonical base yet: every canonical URL below is built on this
# placeholder, and every export function takes ``base=`` so that a site can publish under its own.
CANONICAL_BASE = "http://medagent.example.org/fhir"

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition"
SDC_QUESTIONNAIRE = f"{SDC}/sdc-questionnaire"
SDC_QUESTIONNAIRE_BEHAVE = f"{SDC}/sdc-questionnaire-behave"
SDC_QUESTIONNAIRE_RESPONSE = f"{SDC}/sdc-questionnaireresponse"
CALCULATED_EXPRESSION = f"{SDC}/sdc-questionnaire-calculatedExpression"
OBSERVATION_EXTRACT = f"{SDC}/sdc-questionnaire-observationExtract"
OBSERVATION_LINK_PERIOD = f"{SDC}/sdc-questionnaire-observationLinkPeriod"

EXT = "http://hl7.org/fhir/StructureDefinition"
ORDINAL_VALUE = f"{EXT}/ordinalValue"  # R4 name of the option weight
ITEM_WEIGHT = f"{EXT}/itemWeight"  # its successor (R5, SDC 3.0 / extensions pack)
QUESTIONNAIRE_UNIT = f"{EXT}/questionnaire-unit"
QUESTIONNAIRE_HIDDEN = f"{EXT}/questionnaire-hidden"
QUESTIONNAIRE_ITEM_CONTROL = f"{EXT}/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
MIN_VALUE = f"{EXT}/minValue"
MAX_VALUE = f"{EXT}/maxValue"
RELATED_ARTIFACT = f"{EXT}/cqf-relatedArtifact"

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROVENANCE_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def scale_code_system(base: str = CANONICAL_BASE) -> str:
    """The medagent code system whose codes are scale ids (for scales LOINC does not code)."""
    return f"{base}/CodeSystem/scales"


def score_not_calculated_url(base: str = CANONICAL_BASE) -> str:
    """Extension saying why a points scale's Questionnaire carries no calculatedExpression."""
    return f"{base}/StructureDefinition/score-not-calculated"


def option_system(scale: Scale, spec: InputDef, *, base: str = CANONICAL_BASE) -> str:
    """The medagent code system of one choice input's local answer codes."""
    return f"{base}/CodeSystem/{scale.id}-{spec.id}"


def band_system(scale: Scale, base: str = CANONICAL_BASE) -> str:
    """The medagent code system of a scale's interpretation bands."""
    return f"{base}/CodeSystem/{scale.id}-bands"


def option_coding(
    option: Option, *, scale: Scale, spec: InputDef, base: str = CANONICAL_BASE
) -> dict[str, str]:
    """The Coding an answer option is exchanged as: LOINC's answer code where it has one."""
    if option.loinc:
        return {"system": LOINC, "code": option.loinc, "display": option.label}
    return {
        "system": option_system(scale, spec, base=base),
        "code": option.code,
        "display": option.label,
    }


def questionnaire_url(scale: Scale, base: str = CANONICAL_BASE) -> str:
    """The canonical URL of a scale's Questionnaire (the scale id is its last segment)."""
    return f"{base}/Questionnaire/{scale.id}"


def fhir_id(scale_id: str) -> str:
    """A FHIR logical id for a scale (ids allow ``[A-Za-z0-9.-]``, not underscores)."""
    return scale_id.replace("_", "-")
