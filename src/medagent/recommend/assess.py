"""Recommend, populate and score in one go: the scales that fit a patient, filled and computed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medagent.recommend.context import from_record
from medagent.recommend.engine import DEFAULT_LIMIT, Entry, Recommendation, recommend

if TYPE_CHECKING:
    from medagent.populate import Evaluation, Population
    from medagent.record import RecordStore


@dataclass(frozen=True, slots=True)
class Assessed:
    """One recommended scale, populated from the record and scored."""

    entry: Entry
    population: Population
    evaluation: Evaluation

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.entry.to_dict(),
            "population": self.population.to_dict(),
            "evaluation": self.evaluation.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """What ``medagent assess`` shows: the recommendation and each entry's result."""

    recommendation: Recommendation
    assessed: tuple[Assessed, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommendation": self.recommendation.to_dict(),
            "assessed": [a.to_dict() for a in self.assessed],
        }


def assess(
    store: RecordStore,
    patient_id: str,
    *,
    at: datetime | None = None,
    setting: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Assessment:
    """Recommend scales for a patient at a time, then populate and score the best of each entry.

    Nothing is assumed: an entry whose inputs the record cannot all answer comes back
    incomplete, with what is missing, who can answer it, and the range still possible.
    """
    from medagent.populate import populate_all

    context = from_record(store, patient_id, at=at, setting=setting)
    rec = recommend(context, setting=setting, limit=limit, compute=False)
    scales = [entry.best.scale for entry in rec.entries]
    populations = populate_all(scales, patient_id, store=store, at=at) if scales else []
    assessed = tuple(
        Assessed(entry, population, population.evaluate())
        for entry, population in zip(rec.entries, populations, strict=True)
    )
    return Assessment(rec, assessed)
