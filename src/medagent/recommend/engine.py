"""Which scales fit a patient now, and why: ranking from the scales' indications (data only)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from medagent.errors import MedAgentError
from medagent.recommend.context import (
    AGE_LOINC,
    Code,
    PatientContext,
    PreviousResult,
    RecommendError,
    check_setting,
)
from medagent.recommend.text import TermHit, term_index
from medagent.scales.engine import Result, evaluate
from medagent.scales.model import Answerer, InputDef, InputType, Scale, Trigger
from medagent.units import convert

MAX_LIMIT = 10
DEFAULT_LIMIT = 5

# How much each kind of evidence counts. In the record, indications (what the scale is for)
# outweigh the data at hand; in a written description the values the writer chose to record
# weigh as much as a diagnosis. A second matching term adds a little, a tenth nothing more.
# The weights were set on MedCalc-Bench dev notes and checked on the vignettes (docs/recommend.md).
W_CONDITION = 3.0
W_MEDICATION = 2.0
W_COMPLAINT = 3.0
W_FINDING = 2.5
W_TRIGGER = 1.5
W_EXTRA_TERM = 0.5
W_FILL = 4.0  # record: routine panels fill many scales without pointing to any
W_FILL_TEXT = 10.0  # text: what a writer chose to record points to the question asked
W_SETTING = 0.5
W_DEPARTMENT = 0.5
W_COMPLETE = 3.0  # text gives every input; times how specific those inputs are (below)
RARITY_SHARE = 0.0  # how much the specificity of the known inputs scales the fill
W_SEVERITY = {"moderate": 0.5, "high": 1.0, "critical": 1.5}  # an abnormal computed result
MIN_DESCRIBED_SHARE = 0.5  # text answering half a scale's inputs (two at least) suggests it
FILL_PRIOR = 2  # fill = filled / (inputs + FILL_PRIOR): two given inputs of two is not certainty
RELATIVE_CUTOFF = 0.35  # entries scoring below this share of the best one are left out


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a scale is recommended, in words."""

    kind: str  # condition | medication | complaint | finding | trigger | setting | department
    # | data | previous
    text: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "weight": round(self.weight, 2)}


@dataclass(frozen=True, slots=True)
class Needed:
    """An input still needed to complete the scale, and who can answer it."""

    input_id: str
    label: str
    answerable_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_id,
            "label": self.label,
            "answerable_by": list(self.answerable_by),
        }


@dataclass(frozen=True, slots=True)
class ScaleMatch:
    """How one scale fits the patient: score, reasons, inputs filled and still needed."""

    scale: Scale
    score: float
    reasons: tuple[Reason, ...]
    filled: tuple[str, ...]
    needed: tuple[Needed, ...]
    record_answerable: int
    result: Result | None = None
    previous: PreviousResult | None = None

    @property
    def indicated(self) -> bool:
        return any(r.kind in _INDICATION_KINDS for r in self.reasons)

    def guidance(self) -> list[dict[str, Any]]:
        """The guideline's recommendation at the result's band (computed or given), if any."""
        result = self.result or (self.previous.result if self.previous else None)
        if result is None or result.band is None:
            return []
        refs = {r.key: r for r in self.scale.references}
        out = []
        for advice in result.band.guidance:
            ref = refs.get(advice.reference)
            out.append(
                {
                    "text": advice.text,
                    "strength": advice.strength,
                    "citation": ref.citation if ref else advice.reference,
                    "link": ref.link if ref else None,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        result = self.result or (self.previous.result if self.previous else None)
        out: dict[str, Any] = {
            "scale": self.scale.id,
            "title": self.scale.short_title or self.scale.title,
            "version": self.scale.version,
            "score": round(self.score, 3),
            "reasons": [r.to_dict() for r in self.reasons],
            "filled": list(self.filled),
            "inputs": len(self.scale.inputs),
            "record_answerable": self.record_answerable,
            "needed": [n.to_dict() for n in self.needed],
            "reference": self.scale.primary_reference.link,
        }
        if result is not None:
            out["result"] = {
                "value": result.display,
                "complete": result.complete,
                "band": result.band.label if result.band else None,
                "guidance": self.guidance(),
                "computed": self.result is not None,
                "computed_at": self.previous.computed_at.isoformat()
                if self.result is None and self.previous
                else None,
            }
        return out


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the recommendation: a scale, or a family of scales answering one question."""

    id: str
    family: str | None
    best: ScaleMatch
    variants: tuple[ScaleMatch, ...] = ()

    @property
    def score(self) -> float:
        return self.best.score

    @property
    def members(self) -> tuple[str, ...]:
        """The scale ids of the entry, the best first."""
        return (self.best.scale.id, *(v.scale.id for v in self.variants))

    @property
    def title(self) -> str:
        name = self.best.scale.short_title or self.best.scale.title
        if self.variants:
            return f"{name} (+{len(self.variants)} variant{'s' if len(self.variants) > 1 else ''})"
        return name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "title": self.title,
            "members": list(self.members),
            "score": round(self.score, 3),
            "best": self.best.to_dict(),
            "variants": [
                {
                    "scale": v.scale.id,
                    "title": v.scale.short_title or v.scale.title,
                    "filled": list(v.filled),
                    "needed": [n.input_id for n in v.needed],
                }
                for v in self.variants
            ],
        }


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A scale the evidence pointed to that does not apply, with the reason."""

    scale_id: str
    title: str
    kind: str  # age | sex | pregnancy | setting | recent
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale_id,
            "title": self.title,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The ranked entries for a patient, and the scales left out with the reason."""

    context: PatientContext
    entries: tuple[Entry, ...]
    excluded: tuple[Exclusion, ...] = ()
    considered: int = 0

    def ranked_members(self) -> list[str]:
        """Every scale id in the order shown (an entry's members one after the other)."""
        return [m for e in self.entries for m in e.members]

    def to_dict(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "patient": ctx.patient_id,
            "as_of": ctx.as_of.isoformat(),
            "source": ctx.source,
            "age": ctx.age,
            "sex": ctx.sex,
            "pregnant": ctx.pregnant,
            "setting": ctx.setting,
            "setting_inferred": ctx.setting_inferred,
            "department": ctx.department,
            "entries": [dict(rank=i + 1, **e.to_dict()) for i, e in enumerate(self.entries)],
            "excluded": [x.to_dict() for x in self.excluded],
            "considered": self.considered,
        }


_INDICATION_KINDS = frozenset({"condition", "medication", "complaint", "finding", "trigger"})
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (years as 365 days, months as 30) as a timedelta."""
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "PT"):
        raise RecommendError(f"{text!r} is not an ISO 8601 duration")
    n = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
    return timedelta(
        days=365 * n["y"] + 30 * n["mo"] + 7 * n["w"] + n["d"],
        hours=n["h"],
        minutes=n["mi"],
        seconds=n["s"],
    )


# ---------------------------------------------------------------- terms of the whole library


@dataclass(frozen=True, slots=True)
class _TermUse:
    scale_id: str
    kind: str  # complaint | finding
    lang: str


_TABLES: dict[tuple[tuple[str, int], ...], tuple[dict[str, list[_TermUse]], tuple[str, ...]]] = {}


def _term_table(scales: tuple[Scale, ...]) -> tuple[dict[str, list[_TermUse]], tuple[str, ...]]:
    key = tuple((s.id, id(s.indications)) for s in scales)
    cached = _TABLES.get(key)
    if cached is not None:
        return cached
    if len(_TABLES) > 16:
        _TABLES.clear()
    table: dict[str, list[_TermUse]] = {}
    for scale in scales:
        ind = scale.indications
        if ind is None:
            continue
        for kind, terms in (("complaint", ind.complaints), ("finding", ind.findings)):
            for lang, words in (("en", terms.en), ("zh", terms.zh)):
                for word in words:
                    table.setdefault(word.strip(), []).append(_TermUse(scale.id, kind, lang))
    _TABLES[key] = (table, tuple(sorted(table)))
    return _TABLES[key]


def _term_hits(scales: tuple[Scale, ...], text: str) -> dict[str, list[tuple[str, TermHit]]]:
    """Affirmed, patient's own term hits per scale id: (kind, hit)."""
    if not text:
        return {}
    table, terms = _term_table(scales)
    if not terms:
        return {}
    out: dict[str, list[tuple[str, TermHit]]] = {}
    for hit in term_index(terms).find(text):
        if hit.negated or hit.family:
            continue
        for use in table.get(hit.term, ()):
            out.setdefault(use.scale_id, []).append((use.kind, hit))
    return out


# ---------------------------------------------------------------- matching one scale


def _norm_icd(code: str) -> str:
    return code.replace(".", "").upper()


def _code_matches(spec_codes: Any, code: Code) -> bool:
    if code.system == "icd10":
        value = _norm_icd(code.code)
        return any(value.startswith(_norm_icd(p)) for p in spec_codes.icd10)
    if code.system == "snomed":
        return code.code in spec_codes.snomed
    if code.system == "rxnorm":
        return code.code in spec_codes.rxnorm
    if code.system == "atc":
        return any(code.code.upper().startswith(p.upper()) for p in spec_codes.atc)
    return False


def _describe(code: Code) -> str:
    label = {"icd10": "ICD-10", "snomed": "SNOMED", "rxnorm": "RxNorm", "atc": "ATC"}[code.system]
    return f"{code.display or code.code} ({label} {code.code})"


def _trigger_value(trigger: Trigger, ctx: PatientContext) -> tuple[float, str] | None:
    found = [o for o in ctx.observations if o.loinc in trigger.loinc]
    if not found:
        return None
    obs = max(found, key=lambda o: (o.time is not None, o.time))
    if isinstance(obs.value, bool) or not isinstance(obs.value, (int, float)):
        return None
    value = float(obs.value)
    if obs.unit and obs.unit != trigger.unit:
        try:
            value = convert(value, obs.unit, trigger.unit, trigger.analyte)
        except (MedAgentError, ValueError, KeyError):
            return None
    return value, f"{obs.value:g} {obs.unit or trigger.unit}"


def _is_age(spec: InputDef) -> bool:
    return spec.id == "age" or AGE_LOINC in spec.codes.loinc


def _is_sex(spec: InputDef) -> bool:
    codes = {o.code for o in spec.options}
    return spec.type is InputType.CHOICE and {"female", "male"} <= codes


def _filled(scale: Scale, ctx: PatientContext) -> tuple[list[str], int]:
    """The inputs the context already answers, and how many the record could answer at all."""
    from_text = ctx.text_values.get(scale.id, {})
    loincs = {o.loinc for o in ctx.observations}
    filled: list[str] = []
    answerable = 0
    for spec in scale.inputs:
        if Answerer.RECORD in spec.answerable_by:
            answerable += 1
        ok = spec.id in from_text
        if not ok and _is_age(spec):
            ok = ctx.age is not None
        elif not ok and _is_sex(spec):
            ok = ctx.sex is not None
        if not ok and spec.codes.loinc:
            ok = any(c in loincs for c in spec.codes.loinc)
        if not ok and (spec.codes.icd10 or spec.codes.snomed):
            ok = any(_code_matches(spec.codes, c) for c in ctx.conditions)
        if not ok and (spec.codes.rxnorm or spec.codes.atc):
            ok = any(_code_matches(spec.codes, c) for c in ctx.medications)
        if ok:
            filled.append(spec.id)
    return filled, answerable


def _exclusion(scale: Scale, ctx: PatientContext) -> tuple[str, str] | None:
    ind = scale.indications
    if ind is None:
        return None
    if ctx.age is not None:
        if ind.age.min is not None and ctx.age < ind.age.min:
            return "age", f"for ages {ind.age.min:g} and over; the patient is {ctx.age:g}"
        if ind.age.max is not None and ctx.age > ind.age.max:
            return "age", f"for ages up to {ind.age.max:g}; the patient is {ctx.age:g}"
    if ind.sex is not None and ctx.sex is not None and ctx.sex != ind.sex:
        return "sex", f"for {ind.sex} patients only"
    if ind.pregnancy == "required" and ctx.pregnant is False:
        return "pregnancy", "for pregnancy; the patient is not pregnant"
    if ind.pregnancy == "excluded" and ctx.pregnant is True:
        return "pregnancy", "not for use in pregnancy"
    if (
        ctx.setting is not None
        and not ctx.setting_inferred
        and ind.settings
        and ctx.setting not in ind.settings
    ):
        return "setting", f"used in {', '.join(ind.settings)}, not in {ctx.setting}"
    return None


def _current_values(scale: Scale, ctx: PatientContext) -> dict[str, Any]:
    values: dict[str, Any] = dict(ctx.text_values.get(scale.id, {}))
    for spec in scale.inputs:
        if spec.id in values:
            continue
        if _is_age(spec) and ctx.age is not None:
            values[spec.id] = ctx.age
        elif _is_sex(spec) and ctx.sex is not None:
            values[spec.id] = ctx.sex
        else:
            for loinc in spec.codes.loinc:
                obs = ctx.latest(loinc)
                if obs is not None:
                    values[spec.id] = obs.value
                    break
    return values


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        a = a[0]
    if isinstance(b, tuple):
        b = b[0]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
    return bool(a == b)


def _previous(scale: Scale, ctx: PatientContext) -> tuple[PreviousResult | None, str | None]:
    """The latest earlier result of the scale, and why it still stands (None: it does not)."""
    mine = [p for p in ctx.previous if p.scale_id == scale.id]
    if not mine:
        return None, None
    last = max(mine, key=lambda p: p.computed_at)
    refresh = scale.indications.refresh if scale.indications else None
    age = ctx.as_of - last.computed_at.replace(tzinfo=None)
    if refresh is not None and age > parse_duration(refresh):
        return last, None
    current = _current_values(scale, ctx)
    changed = [k for k, v in last.inputs.items() if k in current and not _same(current[k], v)]
    if changed:
        return last, None
    when = last.computed_at.date().isoformat()
    within = f" (within its refresh of {refresh})" if refresh else ""
    return last, f"already computed on {when}{within} and its inputs are unchanged"


def _concept(spec: InputDef) -> str:
    codes = spec.codes
    for group in (codes.loinc, codes.icd10, codes.snomed, codes.rxnorm, codes.atc):
        if group:
            return group[0]
    return spec.analyte or spec.id


_SPECIFICITY: dict[tuple[tuple[str, int], ...], dict[tuple[str, str], float]] = {}


def _specificity(library: Sequence[Scale]) -> dict[tuple[str, str], float]:
    """How specific each input is to its scale: 1 / sqrt(families that ask for the same thing).

    A blood pressure is asked by many scales and says little about which one is meant; a QT
    interval or a last menstrual period points to one question.
    """
    key = tuple((s.id, id(s)) for s in library)
    cached = _SPECIFICITY.get(key)
    if cached is not None:
        return cached
    if len(_SPECIFICITY) > 8:
        _SPECIFICITY.clear()
    users: dict[str, set[str]] = {}
    for scale in library:
        group = (scale.indications.family if scale.indications else None) or scale.id
        for spec in scale.inputs:
            users.setdefault(_concept(spec), set()).add(group)
    table = {
        (scale.id, spec.id): 1.0 / math.sqrt(len(users[_concept(spec)]))
        for scale in library
        for spec in scale.inputs
    }
    _SPECIFICITY[key] = table
    return table


def match_scale(
    scale: Scale,
    ctx: PatientContext,
    hits: Sequence[tuple[str, TermHit]] = (),
    library: Sequence[Scale] = (),
) -> ScaleMatch | None:
    """How a scale fits the context; None when nothing points to it."""
    ind = scale.indications
    reasons: list[Reason] = []
    if ind is not None:
        cond = [c for c in ctx.conditions if _code_matches(ind.conditions, c)]
        if cond:
            shown = "; ".join(_describe(c) for c in _unique(cond)[:3])
            reasons.append(Reason("condition", f"diagnosis {shown}", W_CONDITION))
        meds = [m for m in ctx.medications if _code_matches(ind.medications, m)]
        if meds:
            shown = "; ".join(_describe(m) for m in _unique(meds)[:3])
            reasons.append(Reason("medication", f"medication {shown}", W_MEDICATION))
        if ctx.source == "record" and not cond and ind.findings.en:
            # Diagnoses coded in another system still name the finding the scale is for.
            names = {c.display for c in ctx.conditions if c.display}
            index = term_index(tuple(ind.findings.en))
            for name in sorted(names):
                found = [h for h in index.find(name) if not h.negated]
                if found:
                    reasons.append(
                        Reason(
                            "condition",
                            f"diagnosis {name} (\u201c{found[0].term}\u201d)",
                            W_CONDITION,
                        )
                    )
                    break
        for kind, weight in (("complaint", W_COMPLAINT), ("finding", W_FINDING)):
            terms = _unique([h.quote.lower() for k, h in hits if k == kind])
            if terms:
                extra = min(len(terms) - 1, 2) * W_EXTRA_TERM
                quoted = ", ".join(f"\u201c{t}\u201d" for t in terms[:4])
                label = "complaint" if kind == "complaint" else "history/finding"
                reasons.append(Reason(kind, f"{label} {quoted} in the text", weight + extra))
        n_trig = 0
        for trigger in ind.triggers:
            got = _trigger_value(trigger, ctx)
            if got is not None and trigger.contains(got[0]):
                n_trig += 1
                if n_trig <= 2:
                    reasons.append(Reason("trigger", f"{trigger.label}: {got[1]}", W_TRIGGER))
    filled, answerable = _filled(scale, ctx)
    indicated = bool(reasons)
    specific = [s for s in scale.inputs if not (_is_age(s) or _is_sex(s))]
    known = [s for s in specific if s.id in filled]
    required = [s for s in scale.inputs if s.required]
    complete = bool(required) and all(s.id in filled for s in required)
    # In a written description, the values and criteria the writer chose to record point to
    # the question being asked; a record's routine panels do not, so only text counts here.
    described = (
        ctx.source == "text"
        and (ind is None or ind.data_alone)
        and (
            (complete and len(filled) >= 2 and bool(known))
            or (len(known) >= 2 and len(known) >= MIN_DESCRIBED_SHARE * len(specific))
        )
    )
    if not indicated and not described:
        return None
    n = len(scale.inputs)
    weights = _specificity(library or (scale,))
    rarity = sum(weights.get((scale.id, s.id), 1.0) for s in known) / len(known) if known else 0.0
    coverage = len(known) / (len(specific) + FILL_PRIOR)
    weight = W_FILL_TEXT if ctx.source == "text" else W_FILL
    fill = weight * coverage * (1 - RARITY_SHARE + RARITY_SHARE * rarity)
    reasons.append(
        Reason(
            "data",
            f"{len(filled)} of {n} inputs already known ({answerable} answerable from the record)",
            fill,
        )
    )
    result: Result | None = None
    if complete and ctx.source == "text" and known:
        reasons.append(Reason("data", "the text gives every input it needs", W_COMPLETE * rarity))
        result = _evaluate_from_text(scale, ctx)
        if result is not None and result.band is not None:
            weight = W_SEVERITY.get(result.band.severity or "none", 0.0)
            if weight:
                text = f"from the text: {result.display} — {result.band.label}"
                reasons.append(Reason("result", text, weight))
    if ind is not None and ctx.setting is not None and ctx.setting in ind.settings:
        hint = " (named in the text)" if ctx.setting_inferred else ""
        reasons.append(Reason("setting", f"used in the {ctx.setting} setting{hint}", W_SETTING))
    if ind is not None and ctx.department and ctx.department in ind.departments:
        reasons.append(Reason("department", f"used in {ctx.department}", W_DEPARTMENT))
    needed = tuple(
        Needed(s.id, s.label, tuple(str(a) for a in s.answerable_by))
        for s in scale.inputs
        if s.id not in filled and s.required
    )
    return ScaleMatch(
        scale=scale,
        score=sum(r.weight for r in reasons),
        reasons=tuple(reasons),
        filled=tuple(filled),
        needed=needed,
        record_answerable=answerable,
        result=result,
    )


def _evaluate_from_text(scale: Scale, ctx: PatientContext) -> Result | None:
    """The scale computed on the values the text gives, when that is complete.

    The notes extractor chooses among several mentions by each input's rule (first on
    presentation, worst, max …); age and sex come from the context when it does not give them.
    """
    values = _current_values(scale, ctx)
    try:
        from medagent.notes.rules import extract_rules

        values.update(extract_rules(scale, ctx.text).inputs())
    except (ImportError, MedAgentError, ValueError, TypeError, KeyError):
        pass
    try:
        result = evaluate(scale, values)
    except (MedAgentError, ValueError, TypeError, KeyError):
        return None
    return result if result.complete else None


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in items:
        key = (item.system, item.code) if isinstance(item, Code) else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _compute(match: ScaleMatch, ctx: PatientContext) -> ScaleMatch:
    """Score the scale when the text gives every input, so the entry can carry the guidance."""
    if ctx.source != "text" or match.needed or match.result is not None:
        return match
    result = _evaluate_from_text(match.scale, ctx)
    if result is None:
        return match
    return ScaleMatch(
        match.scale,
        match.score,
        match.reasons,
        match.filled,
        match.needed,
        match.record_answerable,
        result=result,
        previous=match.previous,
    )


# ---------------------------------------------------------------- the recommendation


def recommend(
    context: PatientContext,
    *,
    setting: str | None = None,
    limit: int = DEFAULT_LIMIT,
    scales: Iterable[Scale] | None = None,
    compute: bool = True,
) -> Recommendation:
    """A short ranked list of scales (one entry per family) for the patient, with reasons.

    Scales that the evidence points to but that do not apply are returned in `excluded` with
    the reason (age, sex, pregnancy, setting, already computed and unchanged). At most `limit`
    entries (never more than 10); entries far weaker than the best one are left out.
    """
    from dataclasses import replace

    from medagent.scales import all_scales

    if not 1 <= limit <= MAX_LIMIT:
        raise RecommendError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if setting is not None:
        context = replace(context, setting=check_setting(setting), setting_inferred=False)
    library = tuple(scales) if scales is not None else tuple(all_scales())
    hits = _term_hits(library, context.text)
    matches: list[ScaleMatch] = []
    excluded: list[Exclusion] = []
    for scale in library:
        match = match_scale(scale, context, hits.get(scale.id, ()), library)
        if match is None:
            continue
        title = scale.short_title or scale.title
        why_not = _exclusion(scale, context)
        if why_not is not None:
            excluded.append(Exclusion(scale.id, title, why_not[0], why_not[1]))
            continue
        previous, standing = _previous(scale, context)
        if standing is not None:
            excluded.append(Exclusion(scale.id, title, "recent", standing))
            continue
        if previous is not None:
            when = previous.computed_at.date().isoformat()
            reasons = (*match.reasons, Reason("previous", f"last computed {when}; due again", 0.0))
            match = ScaleMatch(
                match.scale,
                match.score,
                reasons,
                match.filled,
                match.needed,
                match.record_answerable,
                previous=previous,
            )
        matches.append(match)
    excluded_ids = {x.scale_id for x in excluded}
    entries = _group(matches, library, context, excluded_ids)
    entries.sort(key=lambda e: (-e.score, e.id))
    if entries:
        floor = RELATIVE_CUTOFF * entries[0].score
        entries = [e for e in entries if e.score >= floor][:limit]
    if compute:
        entries = [Entry(e.id, e.family, _compute(e.best, context), e.variants) for e in entries]
    return Recommendation(context, tuple(entries), tuple(excluded), considered=len(library))


def _group(
    matches: list[ScaleMatch],
    library: Sequence[Scale],
    ctx: PatientContext,
    excluded: set[str],
) -> list[Entry]:
    by_family: dict[str, list[ScaleMatch]] = {}
    entries: list[Entry] = []
    for match in matches:
        family = match.scale.indications.family if match.scale.indications else None
        if family is None:
            entries.append(Entry(match.scale.id, None, match))
        else:
            by_family.setdefault(family, []).append(match)
    for family, members in by_family.items():
        members.sort(key=lambda m: (-m.score, m.scale.id))
        present = {m.scale.id for m in members}
        # The family's other scales are listed too: they answer the same question.
        for scale in library:
            ind = scale.indications
            if (
                ind is None
                or ind.family != family
                or scale.id in present
                or scale.id in excluded
                or _exclusion(scale, ctx) is not None
            ):
                continue
            filled, answerable = _filled(scale, ctx)
            needed = tuple(
                Needed(s.id, s.label, tuple(str(a) for a in s.answerable_by))
                for s in scale.inputs
                if s.id not in filled and s.required
            )
            members.append(ScaleMatch(scale, 0.0, (), tuple(filled), needed, answerable))
        entries.append(Entry(family, family, members[0], tuple(members[1:])))
    return entries


def recommend_text(
    text: str,
    *,
    setting: str | None = None,
    limit: int = DEFAULT_LIMIT,
    scales: Iterable[Scale] | None = None,
) -> Recommendation:
    """Recommend from a free-text description (English or Simplified Chinese)."""
    from medagent.recommend.context import from_text

    library = list(scales) if scales is not None else None
    ctx = from_text(text, setting=setting, scales=library)
    return recommend(ctx, limit=limit, scales=library)


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Entry",
    "Exclusion",
    "Needed",
    "Reason",
    "Recommendation",
    "ScaleMatch",
    "match_scale",
    "parse_duration",
    "recommend",
    "recommend_text",
]
