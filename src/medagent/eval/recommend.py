"""Evaluating the recommender: MedCalc-Bench notes (rank of the row's calculator) and vignettes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medagent.errors import MedAgentError, Problem, ScaleDefinitionError
from medagent.eval.medcalc import Row, calculator_maps, read_rows
from medagent.recommend import MAX_LIMIT, Recommendation, from_text, recommend
from medagent.scales import all_scales
from medagent.scales.model import Scale

TOP_K = (1, 3, 5)


class EvalError(MedAgentError, ValueError):
    """The evaluation cannot run on what it was given."""


def _ranks(rec: Recommendation, scale_id: str) -> tuple[int | None, int | None]:
    """Rank (1-based) of the entry containing the scale, and of the scale among all members."""
    entry_rank = next((i + 1 for i, e in enumerate(rec.entries) if scale_id in e.members), None)
    members = rec.ranked_members()
    member_rank = members.index(scale_id) + 1 if scale_id in members else None
    return entry_rank, member_rank


@dataclass(slots=True)
class RankTally:
    """Top-k recall counts for one group of rows."""

    rows: int = 0
    entry_hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(TOP_K, 0))
    member_hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(TOP_K, 0))

    def add(self, entry_rank: int | None, member_rank: int | None) -> None:
        self.rows += 1
        for k in TOP_K:
            self.entry_hits[k] += int(entry_rank is not None and entry_rank <= k)
            self.member_hits[k] += int(member_rank is not None and member_rank <= k)

    def to_dict(self) -> dict[str, Any]:
        n = max(self.rows, 1)
        return {
            "rows": self.rows,
            **{f"top{k}": round(self.entry_hits[k] / n, 4) for k in TOP_K},
            **{f"member_top{k}": round(self.member_hits[k] / n, 4) for k in TOP_K},
        }


@dataclass(slots=True)
class MedCalcReport:
    """Where each row's calculator ranked among the recommendations for its note."""

    overall: RankTally = field(default_factory=RankTally)
    by_calculator: dict[tuple[int, str, str], RankTally] = field(default_factory=dict)
    counts: list[int] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        counts = sorted(self.counts)
        return {
            "overall": self.overall.to_dict(),
            "entries_per_note": {
                "median": counts[len(counts) // 2] if counts else 0,
                "max": counts[-1] if counts else 0,
            },
            "seconds_per_note": round(self.seconds / max(self.overall.rows, 1), 4),
            "by_calculator": [
                {"calculator_id": cid, "name": name, "scale": scale, **t.to_dict()}
                for (cid, name, scale), t in sorted(self.by_calculator.items())
            ],
        }


def run_medcalc(
    rows: Iterable[Row], *, limit: int = MAX_LIMIT, scales: Sequence[Scale] | None = None
) -> MedCalcReport:
    """Recommend from each row's `Patient Note` alone; rank the row's calculator's scale."""
    maps = calculator_maps()
    library = list(scales) if scales is not None else all_scales()
    report = MedCalcReport()
    for row in rows:
        mapping = maps.get(row.calculator_id)
        if mapping is None:
            continue
        start = time.perf_counter()
        ctx = from_text(row.note, scales=library)
        rec = recommend(ctx, limit=limit, scales=library, compute=False)
        report.seconds += time.perf_counter() - start
        entry_rank, member_rank = _ranks(rec, mapping.scale)
        report.overall.add(entry_rank, member_rank)
        key = (row.calculator_id, row.calculator_name, mapping.scale)
        report.by_calculator.setdefault(key, RankTally()).add(entry_rank, member_rank)
        report.counts.append(len(rec.entries))
        if entry_rank is None or entry_rank > 3:
            report.misses.append(
                {
                    "row": row.number,
                    "calculator": row.calculator_name,
                    "scale": mapping.scale,
                    "rank": entry_rank,
                    "got": [e.id for e in rec.entries[:5]],
                }
            )
    return report


def run_medcalc_csv(path: Path, *, limit: int = MAX_LIMIT) -> MedCalcReport:
    """`run_medcalc` on a MedCalc-Bench CSV file."""
    if not path.exists():
        raise EvalError(f"no such file: {path}")
    return run_medcalc(read_rows(path), limit=limit)


# ---------------------------------------------------------------- vignettes


class Vignette(BaseModel):
    """A short patient description with the scales that must and must not be recommended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    lang: str = Field(pattern=r"^(en|zh)$")
    setting: str | None = None
    source: str
    text: str
    must: tuple[str, ...]
    must_not: tuple[str, ...] = ()


def load_vignettes(text: str | None = None) -> list[Vignette]:
    """The vignette suite shipped with medagent (or one given as YAML text)."""
    if text is None:
        text = resources.files("medagent.eval").joinpath("vignettes.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    problems: list[Problem] = []
    out: list[Vignette] = []
    known = {s.id for s in all_scales()}
    for i, item in enumerate(data.get("vignettes") or []):
        try:
            v = Vignette.model_validate(item)
        except ValidationError as exc:
            problems += [
                Problem(f"vignettes[{i}].{'.'.join(map(str, e['loc']))}", e["msg"])
                for e in exc.errors()
            ]
            continue
        for sid in (*v.must, *v.must_not):
            if sid not in known:
                problems.append(Problem(f"vignettes[{i}]", f"unknown scale {sid!r}"))
        out.append(v)
    ids = [v.id for v in out]
    problems += [
        Problem("vignettes", f"duplicate id {d!r}") for d in {x for x in ids if ids.count(x) > 1}
    ]
    if problems:
        raise ScaleDefinitionError("vignettes.yaml", problems)
    return out


@dataclass(slots=True)
class VignetteReport:
    """Recall (must-recommend found) and precision (of the judged ones recommended, correct)."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def _figures(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        must = sum(len(r["must"]) for r in rows)
        found = sum(len(r["found"]) for r in rows)
        wrong = sum(len(r["wrong"]) for r in rows)
        return {
            "vignettes": len(rows),
            "recall": round(found / must, 4) if must else None,
            "precision": round(found / (found + wrong), 4) if found + wrong else None,
            "must_found": found,
            "must": must,
            "must_not_recommended": wrong,
            "all_correct": sum(1 for r in rows if r["ok"]),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self._figures(self.results),
            "en": self._figures([r for r in self.results if r["lang"] == "en"]),
            "zh": self._figures([r for r in self.results if r["lang"] == "zh"]),
            "failures": [r for r in self.results if not r["ok"]],
        }


def run_vignettes(vignettes: Iterable[Vignette] | None = None) -> VignetteReport:
    """Recommend for each vignette (its text and setting) with the default list length."""
    report = VignetteReport()
    for v in vignettes if vignettes is not None else load_vignettes():
        rec = recommend(from_text(v.text, setting=v.setting))
        shown = set(rec.ranked_members())
        found = [s for s in v.must if s in shown]
        wrong = [s for s in v.must_not if s in shown]
        report.results.append(
            {
                "id": v.id,
                "lang": v.lang,
                "must": list(v.must),
                "found": found,
                "missing": [s for s in v.must if s not in shown],
                "wrong": wrong,
                "got": [e.id for e in rec.entries],
                "ok": len(found) == len(v.must) and not wrong,
            }
        )
    return report
