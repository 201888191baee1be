"""Which scales fit this patient now, and why: from the record at a time, or from free text."""

from medagent.recommend.assess import Assessed, Assessment, assess
from medagent.recommend.context import (
    Code,
    Obs,
    PatientContext,
    PreviousResult,
    RecommendError,
    from_record,
    from_text,
)
from medagent.recommend.engine import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Entry,
    Exclusion,
    Needed,
    Reason,
    Recommendation,
    ScaleMatch,
    recommend,
    recommend_text,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Assessed",
    "Assessment",
    "Code",
    "Entry",
    "Exclusion",
    "Needed",
    "Obs",
    "PatientContext",
    "PreviousResult",
    "Reason",
    "RecommendError",
    "Recommendation",
    "ScaleMatch",
    "assess",
    "from_record",
    "from_text",
    "recommend",
    "recommend_text",
]
