"""Auto-population: a patient's record → a scale's inputs, each with its provenance."""

from medagent.populate.defaults import Defaults, default_defaults, parse_defaults, parse_duration
from medagent.populate.engine import populate, populate_all, record_bound
from medagent.populate.errors import PopulateError
from medagent.populate.model import (
    Evaluation,
    FilledInput,
    Override,
    Population,
    Provenance,
    Reason,
    UnfilledInput,
)
from medagent.populate.notes import with_note_suggestions
from medagent.populate.overrides import save_override, stored_overrides

__all__ = [
    "Defaults",
    "Evaluation",
    "FilledInput",
    "Override",
    "PopulateError",
    "Population",
    "Provenance",
    "Reason",
    "UnfilledInput",
    "default_defaults",
    "parse_defaults",
    "parse_duration",
    "populate",
    "populate_all",
    "record_bound",
    "save_override",
    "stored_overrides",
    "with_note_suggestions",
]
