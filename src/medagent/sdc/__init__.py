"""FHIR SDC: scales as Questionnaires with calculatedExpression scoring, results as Observations."""

from medagent.sdc.errors import FhirValidationError, SdcError
from medagent.sdc.extract import (
    Extraction,
    answer_value,
    extract,
    provenance,
    questionnaire_response,
)
from medagent.sdc.fhirpath import Calculation, answer_path, total_expression
from medagent.sdc.questionnaire import TOTAL_LINK_ID, all_questionnaires, questionnaire
from medagent.sdc.validate import problems, validate

__all__ = [
    "TOTAL_LINK_ID",
    "Calculation",
    "Extraction",
    "FhirValidationError",
    "SdcError",
    "all_questionnaires",
    "answer_path",
    "answer_value",
    "extract",
    "problems",
    "provenance",
    "questionnaire",
    "questionnaire_response",
    "total_expression",
    "validate",
]
