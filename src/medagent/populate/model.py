"""What population returns: filled inputs with provenance, unfilled inputs with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.scales.engine import Result
    from medagent.scales.model import Scale


class Reason(StrEnum):
    """Why an input stayed unfilled."""

    NO_DATA_IN_WINDOW = "no data in window"
    NO_RECORD_OF_IT = "no record of it"
    AMBIGUOUS = "ambiguous"
    NEEDS_JUDGEMENT = "needs clinical judgement"
    NOT_BOUND = "not bound to the record"
    UNUSABLE = "unusable record values"


ABSENCE_NOT_EVIDENCE = "no record of it; absence is not evidence of absence"
NOTE_SPAN = "note span"  # provenance source of a value read from a clinical note


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one filled value came from and the rule that chose it."""

    source: str  # "record", "patient" (demographics), or "user"
    rule: str  # e.g. "worst of 5 values in PT24H by points", "latest within P7D"
    resource_type: str | None = None
    resource_id: str | None = None
    effective: datetime | None = None
    original_value: object = None
    original_unit: str | None = None
    conversion: str | None = None
    entered_by: str | None = None
    entered_at: datetime | None = None
    candidates: int = 1  # how many record values the rule chose among
    # For a value read from a note ("note span"): where in the note, and the words themselves.
    span_start: int | None = None
    span_end: int | None = None
    quote: str | None = None

    @property
    def reference(self) -> str | None:
        """``Type/id`` of the resource, as a FHIR reference."""
        if self.resource_type and self.resource_id:
            return f"{self.resource_type}/{self.resource_id}"
        return None

    def describe(self) -> str:
        """One line for people: the source, the time and the conversion."""
        if self.source == "user":
            when = self.entered_at.isoformat(timespec="minutes") if self.entered_at else "?"
            return f"entered by user {self.entered_by} at {when}"
        if self.source == NOTE_SPAN:
            return f"{self.reference} [{self.span_start}:{self.span_end}] “{self.quote}”"
        parts = [self.reference or self.source]
        if self.effective is not None:
            parts.append(self.effective.isoformat(timespec="minutes"))
        if self.conversion:
            parts.append(self.conversion)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rule": self.rule,
            "reference": self.reference,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "effective": self.effective.isoformat() if self.effective else None,
            "original_value": _jsonable(self.original_value),
            "original_unit": self.original_unit,
            "conversion": self.conversion,
            "entered_by": self.entered_by,
            "entered_at": self.entered_at.isoformat() if self.entered_at else None,
            "candidates": self.candidates,
            "span_start": self.span_start,
            "span_end": self.span_end,
            "quote": self.quote,
        }


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class FilledInput:
    """An input given a value, in the unit the scale declares, with its provenance."""

    id: str
    label: str
    value: object
    unit: str | None
    provenance: Provenance

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "value": _jsonable(self.value),
            "unit": self.unit,
            "provenance": self.provenance.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class UnfilledInput:
    """An input the record could not answer: why, and who can answer it."""

    id: str
    label: str
    reason: Reason
    detail: str
    answerable_by: tuple[str, ...]
    record_bound: bool  # the scale binds it to the record (codes or demographics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "reason": self.reason.value,
            "detail": self.detail,
            "answerable_by": list(self.answerable_by),
            "record_bound": self.record_bound,
        }


@dataclass(frozen=True, slots=True)
class Override:
    """A value a clinician entered for one input, which wins over the record."""

    input_id: str
    value: str
    user: str
    entered_at: datetime
    scale_id: str | None = None
    patient_id: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A scale's result on populated inputs, with the provenance of each input."""

    result: Result
    provenance: Mapping[str, Provenance]
    unfilled: tuple[UnfilledInput, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result.to_dict(),
            "provenance": {k: v.to_dict() for k, v in self.provenance.items()},
            "unfilled": [u.to_dict() for u in self.unfilled],
        }


@dataclass(frozen=True, slots=True)
class Population:
    """The inputs of one scale for one patient at one time, as far as the record answers them."""

    scale: Scale
    patient_id: str
    at: datetime
    filled: Mapping[str, FilledInput]
    unfilled: Mapping[str, UnfilledInput]
    notes: tuple[str, ...] = field(default=())
    # Values a clinical note states for inputs the structured record left unfilled. They rank
    # below structured data and are never used until a clinician confirms one (an override).
    suggestions: Mapping[str, FilledInput] = field(default_factory=dict)

    @property
    def inputs(self) -> dict[str, object]:
        """The filled values, ready for :func:`medagent.scales.evaluate`."""
        return {k: f.value for k, f in self.filled.items()}

    def evaluate(self) -> Evaluation:
        """Score the scale on the filled inputs (an incomplete result lists what is missing)."""
        from medagent.scales import evaluate

        result = evaluate(self.scale, self.inputs)
        return Evaluation(
            result=result,
            provenance={k: f.provenance for k, f in self.filled.items()},
            unfilled=tuple(self.unfilled.values()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale.id,
            "scale_version": self.scale.version,
            "patient": self.patient_id,
            "at": self.at.isoformat(),
            "filled": [f.to_dict() for f in self.filled.values()],
            "unfilled": [u.to_dict() for u in self.unfilled.values()],
            "notes": list(self.notes),
            "suggestions": [f.to_dict() for f in self.suggestions.values()],
        }
