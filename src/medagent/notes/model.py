"""What the notes extractor produces: candidate values with the exact span they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medagent.errors import MedAgentError


class NoteError(MedAgentError, ValueError):
    """A note, a lexicon entry or an extractor answer cannot be used."""


@dataclass(frozen=True, slots=True)
class Span:
    """Characters [start, end) of the note, with the text they hold."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One value for one scale input, read from one place in the note."""

    input_id: str
    value: Any  # bool, str (option code or ISO date), number, or (number, UCUM unit)
    span: Span
    concept: str
    source: str = "rules"  # "rules" or "llm"
    assertion: str = "affirmed"  # affirmed | negated | uncertain | family | hypothetical
    historical: bool = False
    original: str = ""  # the value as written (number and unit), before any reading
    timing: str = ""  # presentation | later | past | "" (what its sentence says)

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {
            "input": self.input_id,
            "value": value,
            "span": self.span.to_dict(),
            "concept": self.concept,
            "source": self.source,
            "assertion": self.assertion,
            "historical": self.historical,
            "timing": self.timing,
        }


@dataclass(frozen=True, slots=True)
class Filled:
    """The value chosen for one input, why, and the alternatives that were set aside."""

    input_id: str
    chosen: Candidate
    rule: str  # how the choice was made (first on presentation, worst, any affirmed …)
    alternatives: tuple[Candidate, ...] = ()

    @property
    def value(self) -> Any:
        return self.chosen.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_id,
            "value": self.chosen.to_dict()["value"],
            "span": self.chosen.span.to_dict(),
            "source": self.chosen.source,
            "rule": self.rule,
            "alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass(frozen=True, slots=True)
class Flag:
    """A disagreement between extractors (or a rejected answer) shown to the clinician."""

    input_id: str
    message: str
    candidates: tuple[Candidate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_id,
            "message": self.message,
            "candidates": [c.to_dict() for c in self.candidates],
        }


@dataclass(slots=True)
class Extraction:
    """Everything read from one note for one scale."""

    scale_id: str
    filled: dict[str, Filled] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    def inputs(self) -> dict[str, Any]:
        """The chosen values, as `evaluate` takes them."""
        return {k: f.value for k, f in self.filled.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale_id,
            "filled": {k: f.to_dict() for k, f in self.filled.items()},
            "missing": list(self.missing),
            "flags": [f.to_dict() for f in self.flags],
        }
