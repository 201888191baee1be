"""Fill a scale's inputs from a patient's record, driven by the bindings the scale file declares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from medagent.errors import InputError, UnitError
from medagent.populate.defaults import Defaults, Kind, default_defaults, parse_duration
from medagent.populate.errors import PopulateError
from medagent.populate.model import (
    ABSENCE_NOT_EVIDENCE,
    FilledInput,
    Override,
    Population,
    Provenance,
    Reason,
    UnfilledInput,
)
from medagent.scales.model import Aggregate, Answerer, InputDef, InputType, Scale

if TYPE_CHECKING:
    from medagent.record.models import (
        ConditionRecord,
        MedicationRecord,
        ObservationValue,
        PatientSummary,
        ProcedureRecord,
    )
    from medagent.record.store import RecordStore

ATC = "http://www.whocc.no/atc"
_TRUE = {"true", "yes", "y", "present", "positive", "la33-6"}
_FALSE = {"false", "no", "n", "absent", "negative", "la32-8"}


def _naive_utc(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def record_absence_answerable(spec: InputDef) -> bool:
    """Whether the scale declares that the record can answer this input's absence.

    Read from the input's ``record_absence`` declaration when the scale format has one; an input
    without it never becomes false just because the record is silent.
    """
    return bool(getattr(spec, "record_absence", False))


@dataclass(frozen=True, slots=True)
class _Candidate:
    value: object  # in the scale's unit (float), a bool, or an option code
    obs: ObservationValue
    original_unit: str | None
    conversion: str | None


@dataclass(slots=True)
class _Record:
    """Everything the record says that this scale's bindings ask for, fetched in a few queries."""

    patient: PatientSummary
    observations: list[ObservationValue]
    active_conditions: list[ConditionRecord]
    all_conditions: list[ConditionRecord]
    procedures: list[ProcedureRecord]
    medications: list[MedicationRecord]


def _demographic(spec: InputDef, defaults: Defaults) -> str | None:
    for name in ("age", "sex"):
        rule = getattr(defaults.demographics, name)
        if spec.id in rule.input_ids or set(spec.codes.loinc) & set(rule.loinc):
            return name
        if spec.loinc is not None and spec.loinc in rule.loinc:
            return name
    return None


def _condition_bound(spec: InputDef) -> bool:
    return bool(spec.codes.icd10 or spec.codes.snomed)


def _medication_bound(spec: InputDef) -> bool:
    return bool(spec.codes.rxnorm or spec.codes.atc)


def record_bound(spec: InputDef, defaults: Defaults | None = None) -> bool:
    """Whether the scale binds an input to the record (demographics or codes) and lets it answer."""
    if Answerer.RECORD not in spec.answerable_by:
        return False
    d = defaults or default_defaults()
    return bool(
        _demographic(spec, d)
        or spec.codes.loinc
        or _condition_bound(spec)
        or _medication_bound(spec)
    )


class _Populator:
    def __init__(
        self, scale: Scale, patient_id: str, *, store: RecordStore, at: datetime, d: Defaults
    ) -> None:
        self.scale = scale
        self.patient_id = patient_id
        self.store = store
        self.at = at
        self.d = d
        self.windows: dict[str, tuple[timedelta, str]] = {}
        for spec in scale.inputs:
            if spec.codes.loinc and _demographic(spec, d) is None:
                self.windows[spec.id] = self._window(spec)

    # ---- windows ------------------------------------------------------------------------

    def _window(self, spec: InputDef) -> tuple[timedelta, str]:
        if spec.lookback:
            return parse_duration(spec.lookback), f"{spec.lookback} (declared by the scale)"
        kind: Kind = self.d.kind_for(spec.codes.loinc)
        return kind.window, f"{kind.lookback} (default for {kind.label})"

    def _procedure_window(self, spec: InputDef) -> tuple[timedelta, str]:
        if spec.lookback:
            return parse_duration(spec.lookback), f"{spec.lookback} (declared by the scale)"
        default = self.d.procedure_lookback
        return parse_duration(default), f"{default} (default for procedures)"

    # ---- fetching -----------------------------------------------------------------------

    def fetch(self, others: Sequence[_Populator] = ()) -> _Record:
        """Read what this scale's bindings (and those of ``others``) ask for, in a few queries."""
        store, pid, at = self.store, self.patient_id, self.at
        patient = store.patient(pid)
        everyone = [self, *others]
        specs = [
            (p, s) for p in everyone for s in p.scale.inputs if Answerer.RECORD in s.answerable_by
        ]
        loinc = sorted({c for p, s in specs if s.id in p.windows for c in s.codes.loinc})
        observations: list[ObservationValue] = []
        if loinc:
            longest = max(p.windows[s.id][0] for p, s in specs if s.id in p.windows)
            observations = store.observations(
                pid,
                codes=loinc,
                since=at - longest,
                until=at,
                statuses=self.d.observation_statuses,
            )
        icd = sorted({c for _, s in specs for c in s.codes.icd10})
        sct = sorted({c for _, s in specs for c in s.codes.snomed})
        active: dict[str, ConditionRecord] = {}
        every: dict[str, ConditionRecord] = {}
        procedures: list[ProcedureRecord] = []
        for system, codes in (("icd10", icd), ("snomed", sct)):
            if codes:  # a condition coded in both systems is found twice: keep it once
                for c in store.conditions(pid, prefixes=codes, system=system, active_at=at):
                    active.setdefault(c.resource_id, c)
                for c in store.conditions(pid, prefixes=codes, system=system):
                    every.setdefault(c.resource_id, c)
        if sct:
            window = max(p._procedure_window(s)[0] for p, s in specs if s.codes.snomed)
            procedures = store.procedures(
                pid, prefixes=sct, system="snomed", since=at - window, until=at
            )
        medications: list[MedicationRecord] = []
        rxnorm = sorted({c for _, s in specs for c in s.codes.rxnorm})
        if rxnorm:
            medications += store.medications(pid, codes=rxnorm, system="rxnorm", until=at)
        if any(s.codes.atc for _, s in specs):
            seen = {m.resource_id for m in medications}
            medications += [
                m
                for m in store.medications(pid, until=at)
                if m.resource_id not in seen and any(c.system == ATC for c in m.codes)
            ]
        by_onset = sorted(active.values(), key=_onset_key)
        return _Record(
            patient,
            observations,
            by_onset,
            sorted(every.values(), key=_onset_key),
            procedures,
            medications,
        )

    # ---- one input ----------------------------------------------------------------------

    def fill(self, spec: InputDef, rec: _Record) -> FilledInput | UnfilledInput:
        if Answerer.RECORD not in spec.answerable_by:
            return self._unfilled(
                spec, Reason.NEEDS_JUDGEMENT, "the scale leaves it to the clinician or patient"
            )
        demographic = _demographic(spec, self.d)
        if demographic == "age":
            return self._age(spec, rec.patient)
        if demographic == "sex":
            return self._sex(spec, rec.patient)
        outcome: FilledInput | UnfilledInput | None = None
        if spec.codes.loinc:
            outcome = self._from_observations(spec, rec.observations)
            if isinstance(outcome, FilledInput):
                return outcome
        if _condition_bound(spec) or _medication_bound(spec):
            return self._from_codes(spec, rec)
        if outcome is not None:
            return outcome
        return self._unfilled(spec, Reason.NOT_BOUND, "the scale declares no record codes for it")

    def _unfilled(self, spec: InputDef, reason: Reason, detail: str) -> UnfilledInput:
        who = tuple(a.value for a in spec.answerable_by if a is not Answerer.RECORD)
        return UnfilledInput(
            spec.id,
            spec.label,
            reason,
            detail,
            who or (Answerer.CLINICIAN.value,),
            record_bound(spec, self.d),
        )

    def _filled(self, spec: InputDef, value: object, provenance: Provenance) -> FilledInput:
        return FilledInput(spec.id, spec.label, value, spec.unit, provenance)

    # ---- demographics -------------------------------------------------------------------

    def _age(self, spec: InputDef, patient: PatientSummary) -> FilledInput | UnfilledInput:
        years = patient.age_at(self.at)
        if years is None:
            return self._unfilled(spec, Reason.NO_DATA_IN_WINDOW, "the Patient has no birthDate")
        value: float = float(years)
        conversion = None
        if spec.unit not in (None, "a"):
            from medagent.units import convert

            value = convert(years, "a", spec.unit)
            conversion = f"{years} a = {_fmt(value)} {spec.unit}"
        if spec.type is InputType.INTEGER:
            value = float(round(value))
        return self._filled(
            spec,
            value,
            Provenance(
                source="patient",
                rule=f"age in whole years at {self.at.isoformat(timespec='minutes')} "
                "from Patient.birthDate",
                resource_type="Patient",
                resource_id=patient.id,
                original_value=patient.birth_date.isoformat() if patient.birth_date else None,
                conversion=conversion,
            ),
        )

    def _sex(self, spec: InputDef, patient: PatientSummary) -> FilledInput | UnfilledInput:
        gender = (patient.gender or "").strip()
        if not gender:
            return self._unfilled(spec, Reason.NO_DATA_IN_WINDOW, "the Patient has no gender")
        code = _match_option(spec, gender)
        if code is None:
            return self._unfilled(
                spec,
                Reason.AMBIGUOUS,
                f"Patient.gender is {gender!r}, which does not answer {spec.label.lower()}",
            )
        return self._filled(
            spec,
            code,
            Provenance(
                source="patient",
                rule="Patient.gender (administrative gender)",
                resource_type="Patient",
                resource_id=patient.id,
                original_value=gender,
            ),
        )

    # ---- observations -------------------------------------------------------------------

    def _from_observations(
        self, spec: InputDef, observations: Sequence[ObservationValue]
    ) -> FilledInput | UnfilledInput:
        window, window_label = self.windows[spec.id]
        since = self.at - window
        codes = set(spec.codes.loinc)
        in_window = [
            o
            for o in observations
            if o.code.code in codes and o.effective is not None and since <= o.effective <= self.at
        ]
        if not in_window:
            return self._unfilled(
                spec,
                Reason.NO_DATA_IN_WINDOW,
                f"no final observation with LOINC {', '.join(spec.codes.loinc)} "
                f"within {window_label}",
            )
        candidates: list[_Candidate] = []
        problems: list[str] = []
        for obs in in_window:
            candidate = self._candidate(spec, obs)
            if isinstance(candidate, str):
                problems.append(f"Observation/{obs.resource_id}: {candidate}")
            else:
                candidates.append(candidate)
        if not candidates:
            return self._unfilled(spec, Reason.UNUSABLE, "; ".join(problems[:3]))
        chosen, how = self._aggregate(spec, candidates)
        n = len(candidates)
        if n == 1:
            rule = f"only value within {window_label}"
        elif spec.aggregate is Aggregate.WORST:
            rule = f"{how} of {n} values in {window_label}"
        else:
            rule = f"{how} of {n} values within {window_label}"
        if problems:
            rule += f"; {len(problems)} unusable value(s) skipped"
        obs = chosen.obs
        return self._filled(
            spec,
            chosen.value,
            Provenance(
                source="record",
                rule=rule,
                resource_type="Observation",
                resource_id=obs.resource_id,
                effective=obs.effective,
                original_value=obs.value,
                original_unit=chosen.original_unit,
                conversion=chosen.conversion,
                candidates=n,
            ),
        )

    def _candidate(self, spec: InputDef, obs: ObservationValue) -> _Candidate | str:
        raw = obs.value
        if raw is None:
            return "no value"
        if spec.type is InputType.BOOLEAN:
            if isinstance(raw, bool):
                return _Candidate(raw, obs, None, None)
            text = str(raw).strip().casefold()
            if text in _TRUE or text in _FALSE:
                return _Candidate(text in _TRUE, obs, None, None)
            return f"{raw!r} is not yes or no"
        if spec.type is InputType.CHOICE:
            code = _match_option(spec, str(raw)) if not isinstance(raw, bool) else None
            if code is None:
                code = self._match_coded_answer(spec, obs)
            if code is None:
                return f"{raw!r} is none of the options"
            return _Candidate(code, obs, None, None)
        if spec.type is InputType.DATE:
            return "dates are not read from observations"
        if isinstance(raw, (bool, str)):
            return f"{raw!r} is not a number"
        number = float(raw)
        unit = obs.unit_code or obs.unit
        conversion = None
        if spec.unit is not None:
            if not unit:
                return f"{_fmt(number)} has no unit (expected {spec.unit})"
            from medagent.units import convert, normalize_unit

            try:
                source = normalize_unit(unit)
                if source != normalize_unit(spec.unit):
                    converted = float(f"{convert(number, source, spec.unit, spec.analyte):.12g}")
                    via = f" ({spec.analyte})" if spec.analyte else ""
                    if not (converted == number and _dimensionless(source, spec.unit)):
                        conversion = f"{_fmt(number)} {unit} = {_fmt(converted)} {spec.unit}{via}"
                    number = converted
            except UnitError as error:
                return str(error)
        elif unit not in (None, "", "1", "{score}", "{Score}", "{#}"):
            return f"unit {unit!r} where the scale expects none"
        if spec.type is InputType.INTEGER and not number.is_integer():
            return f"{_fmt(number)} is not a whole number"
        if spec.range is not None and not spec.range[0] <= number <= spec.range[1]:
            return f"{_fmt(number)} is outside {_fmt(spec.range[0])}–{_fmt(spec.range[1])}"
        return _Candidate(number, obs, unit, conversion)

    def _match_coded_answer(self, spec: InputDef, obs: ObservationValue) -> str | None:
        """Match an answer's codes (LOINC LA codes, option codes) when its text did not match."""
        try:
            body = self.store.get("Observation", obs.resource_id)
        except KeyError:
            return None
        parts = [body, *list(body.get("component") or ())]
        for part in parts:
            concept = part.get("valueCodeableConcept") or {}
            for coding in concept.get("coding") or ():
                code = str(coding.get("code") or "")
                for option in spec.options:
                    if code and code in (option.loinc, option.code):
                        return option.code
        return None

    def _aggregate(self, spec: InputDef, items: list[_Candidate]) -> tuple[_Candidate, str]:
        how = spec.aggregate
        if how is Aggregate.LATEST or len(items) == 1:
            return items[-1], "latest"
        if how is Aggregate.FIRST:
            return items[0], "first"
        if how in (Aggregate.MAX, Aggregate.MIN):
            numeric = [c for c in items if isinstance(c.value, float)]
            if numeric:
                sign = 1.0 if how is Aggregate.MAX else -1.0
                # ties go to the latest value (items are oldest first; max keeps the first best)
                best = max(reversed(numeric), key=lambda c: sign * float(str(c.value)))
                return best, how.value
            return items[-1], "latest"
        points = [(self._points(spec, c.value), i) for i, c in enumerate(items)]
        scored = [(p, i) for p, i in points if p is not None]
        if not scored:
            return items[-1], "latest (no points rule to rank by)"
        best_points, index = max(scored)
        return items[index], f"worst by points ({_fmt(best_points)})"

    def _points(self, spec: InputDef, value: object) -> float | None:
        """Most points any of the scale's rules gives this value of the input (for `worst`)."""
        best: float | None = None
        if spec.type is InputType.CHOICE and isinstance(value, str):
            option = spec.option(value)
            candidates = [option.points] if option and option.points is not None else []
            for item in self.scale.scoring.items:
                if item.source == spec.id and value in item.option_points:
                    candidates.append(item.option_points[value])
            return max(candidates) if candidates else None
        if not isinstance(value, float):
            return None
        brackets = list(spec.brackets)
        for item in self.scale.scoring.items:
            if item.source == spec.id:
                brackets += item.brackets
        for bracket in brackets:
            if bracket.contains(value):
                best = bracket.points if best is None else max(best, bracket.points)
        return best

    # ---- conditions, procedures, medications --------------------------------------------

    def _from_codes(self, spec: InputDef, rec: _Record) -> FilledInput | UnfilledInput:
        active = [c for c in rec.active_conditions if _condition_matches(spec, c.codes)]
        window, window_label = self._procedure_window(spec)
        procedures = [
            p
            for p in rec.procedures
            if (p.status or "completed") in self.d.procedure_statuses
            and (p.start is None or p.start >= self.at - window)
            and any(c.code in spec.codes.snomed for c in p.codes)
        ]
        medications = [m for m in rec.medications if self._medication_matches(spec, m)]
        if spec.type is not InputType.BOOLEAN:
            found = active or procedures or medications
            if found:
                first = found[0]
                what = f"{type(first).__name__.replace('Record', '')}/{first.resource_id}"
                return self._unfilled(
                    spec,
                    Reason.AMBIGUOUS,
                    f"the record shows {first.text or what} ({what}) but not the "
                    f"{'grade' if spec.type is InputType.CHOICE else 'value'} this input needs",
                )
            return self._unfilled(spec, Reason.NO_RECORD_OF_IT, ABSENCE_NOT_EVIDENCE)
        if active:
            cond = active[-1]
            code = next(c for c in cond.codes if _code_in(spec, c.system, c.code))
            return self._filled(
                spec,
                True,
                Provenance(
                    source="record",
                    rule=f"condition active at {self.at.isoformat(timespec='minutes')} "
                    f"coded {code.code}" + (f" (of {len(active)})" if len(active) > 1 else ""),
                    resource_type="Condition",
                    resource_id=cond.resource_id,
                    effective=cond.onset,
                    original_value=cond.text or code.display or code.code,
                    candidates=len(active),
                ),
            )
        if spec.lookback:
            since = self.at - parse_duration(spec.lookback)
            recent = [
                c
                for c in rec.all_conditions
                if c.verification_status not in ("entered-in-error", "refuted")
                and c.onset is not None
                and since <= c.onset <= self.at
                and _condition_matches(spec, c.codes)
            ]
            if recent:
                cond = recent[-1]
                return self._filled(
                    spec,
                    True,
                    Provenance(
                        source="record",
                        rule=f"condition with onset within {spec.lookback} (declared by the "
                        f"scale), {cond.clinical_status or 'status unknown'} now",
                        resource_type="Condition",
                        resource_id=cond.resource_id,
                        effective=cond.onset,
                        original_value=cond.text,
                        candidates=len(recent),
                    ),
                )
        if procedures:
            proc = procedures[-1]
            return self._filled(
                spec,
                True,
                Provenance(
                    source="record",
                    rule=f"procedure within {window_label}",
                    resource_type="Procedure",
                    resource_id=proc.resource_id,
                    effective=proc.start,
                    original_value=proc.text,
                    candidates=len(procedures),
                ),
            )
        if medications:
            med = medications[-1]
            also = f" or within {spec.lookback}" if spec.lookback else ""
            return self._filled(
                spec,
                True,
                Provenance(
                    source="record",
                    rule=f"medication active at {self.at.isoformat(timespec='minutes')}{also}",
                    resource_type=med.resource_type,
                    resource_id=med.resource_id,
                    effective=med.start,
                    original_value=med.text,
                    candidates=len(medications),
                ),
            )
        refuted = [
            c
            for c in rec.all_conditions
            if c.verification_status == "refuted"
            and (c.onset is None or c.onset <= self.at)
            and _condition_matches(spec, c.codes)
        ]
        if refuted:
            cond = refuted[-1]
            return self._filled(
                spec,
                False,
                Provenance(
                    source="record",
                    rule="condition recorded as refuted (verificationStatus)",
                    resource_type="Condition",
                    resource_id=cond.resource_id,
                    effective=cond.onset,
                    original_value=cond.text,
                ),
            )
        if record_absence_answerable(spec):
            return self._filled(
                spec,
                False,
                Provenance(
                    source="record",
                    rule="no active condition, procedure or medication with its codes; the "
                    "scale declares the record complete for it",
                    candidates=0,
                ),
            )
        ignored = [
            c
            for c in rec.all_conditions
            if _condition_matches(spec, c.codes) and c.verification_status != "entered-in-error"
        ]
        detail = ABSENCE_NOT_EVIDENCE
        if ignored:
            last = ignored[-1]
            detail += (
                f" (Condition/{last.resource_id} {last.text or ''} is "
                f"{last.clinical_status or 'not active'} at that time)".replace("  ", " ")
            )
        return self._unfilled(spec, Reason.NO_RECORD_OF_IT, detail)

    def _medication_matches(self, spec: InputDef, med: MedicationRecord) -> bool:
        if not _medication_bound(spec):
            return False
        coded = any(
            (c.code in spec.codes.rxnorm and "rxnorm" in c.system)
            or (c.system == ATC and any(c.code.startswith(p) for p in spec.codes.atc))
            for c in med.codes
        )
        if not coded:
            return False
        status = med.status or "active"
        if med.start is not None and med.start > self.at:
            return False
        if status in self.d.medication_active_statuses:
            return True
        if status in self.d.medication_ended_statuses and med.end is not None:
            if med.end > self.at:
                return True
            if spec.lookback:
                return med.end >= self.at - parse_duration(spec.lookback)
        return False


def _onset_key(condition: ConditionRecord) -> tuple[datetime, str]:
    return (condition.onset or datetime.min, condition.resource_id)


def _dimensionless(*units: str) -> bool:
    """Units that are pure numbers: ``1`` or an annotation such as ``{INR}``."""
    return all(re.sub(r"\{[^}]*\}", "", u) in ("", "1") for u in units)


def _code_in(spec: InputDef, system: str, code: str) -> bool:
    if "snomed" in system:
        return code in spec.codes.snomed
    if "icd-10" in system:
        return any(code.startswith(p) for p in spec.codes.icd10)
    return False


def _condition_matches(spec: InputDef, codes: Iterable[object]) -> bool:
    return any(
        _code_in(spec, str(getattr(c, "system", "")), str(getattr(c, "code", ""))) for c in codes
    )


def _match_option(spec: InputDef, text: str) -> str | None:
    folded = text.strip().casefold()
    for option in spec.options:
        names = (option.code, option.label, *option.aliases, option.loinc or "")
        if any(folded == n.casefold() for n in names if n):
            return option.code
    return None


def _apply_override(scale: Scale, override: Override) -> FilledInput:
    from medagent.scales.engine import normalize_inputs

    spec = scale.input(override.input_id)
    try:
        values, conversions = normalize_inputs(scale, {override.input_id: override.value})
    except InputError as error:
        raise PopulateError(str(error)) from error
    conversion = None
    if conversions:
        c = conversions[0]
        conversion = f"{_fmt(c.original)} {c.original_unit} = {_fmt(c.value)} {c.unit}"
    when = override.entered_at.isoformat(timespec="minutes")
    return FilledInput(
        spec.id,
        spec.label,
        values[override.input_id],
        spec.unit,
        Provenance(
            source="user",
            rule=f"entered by user {override.user} at {when}",
            original_value=override.value,
            conversion=conversion,
            entered_by=override.user,
            entered_at=override.entered_at,
        ),
    )


def _check_filled(
    scale: Scale,
    filled: dict[str, FilledInput],
    unfilled: dict[str, UnfilledInput],
    worker: _Populator,
) -> None:
    """Move values the engine would refuse (an age outside the scale's range) to unfilled."""
    from medagent.scales.engine import normalize_inputs

    try:
        normalize_inputs(scale, {k: f.value for k, f in filled.items()})
    except InputError as error:
        for problem in error.problems:
            if problem.path in filled:
                was = filled.pop(problem.path)
                unfilled[problem.path] = worker._unfilled(
                    scale.input(problem.path),
                    Reason.UNUSABLE,
                    f"{was.provenance.describe()}: {problem.message}",
                )


def populate(
    scale: Scale | str,
    patient_id: str,
    *,
    store: RecordStore,
    at: datetime | None = None,
    overrides: Iterable[Override] = (),
    lookback_defaults: Defaults | None = None,
    stored_overrides: bool = True,
) -> Population:
    """Fill every input of ``scale`` the record can answer for a patient at time ``at``.

    The scale file's bindings drive everything: demographics, observations by LOINC within a
    lookback window and by an aggregate, conditions by ICD-10/SNOMED active at the time,
    procedures and medications by their codes. Each filled value carries its provenance; each
    unfilled input says why and who can answer it. Overrides (stored in the database, then the
    ones given here) win over the record. Nothing is assumed.
    """
    return populate_all(
        [scale],
        patient_id,
        store=store,
        at=at,
        overrides=overrides,
        lookback_defaults=lookback_defaults,
        stored_overrides=stored_overrides,
    )[0]


def populate_all(
    scales: Iterable[Scale | str],
    patient_id: str,
    *,
    store: RecordStore,
    at: datetime | None = None,
    overrides: Iterable[Override] = (),
    lookback_defaults: Defaults | None = None,
    stored_overrides: bool = True,
) -> list[Population]:
    """:func:`populate` for several scales of one patient, reading the record once for all.

    ``overrides`` given here apply to every scale that has the input (an override's
    ``scale_id``, when set, limits it to that scale).
    """
    from medagent.scales import get_scale

    definitions = [get_scale(s) if isinstance(s, str) else s for s in scales]
    when = _naive_utc(at) if at is not None else datetime.now(UTC).replace(tzinfo=None)
    d = lookback_defaults or default_defaults()
    given = list(overrides)
    for override in given:
        targets = [s for s in definitions if override.scale_id in (None, s.id)]
        if not any(override.input_id in s.input_ids for s in targets):
            names = ", ".join(s.id for s in targets) or override.scale_id or "?"
            raise PopulateError(f"{override.input_id!r} is not an input of {names}")
    if not definitions:
        return []
    workers = [_Populator(s, patient_id, store=store, at=when, d=d) for s in definitions]
    rec = workers[0].fetch(workers[1:])
    saved: list[Override] = []
    if stored_overrides:
        from medagent.populate.overrides import stored_overrides as load

        scale_id = definitions[0].id if len(definitions) == 1 else None
        saved = load(store, scale_id=scale_id, patient_id=patient_id, at=when)
    out: list[Population] = []
    for worker in workers:
        sid = worker.scale.id
        mine = [o for o in saved if o.scale_id == sid]
        mine += [
            o for o in given if o.scale_id in (None, sid) and o.input_id in worker.scale.input_ids
        ]
        out.append(_population(worker, rec, mine))
    return out


def _population(worker: _Populator, rec: _Record, chosen: list[Override]) -> Population:
    definition, when = worker.scale, worker.at
    filled: dict[str, FilledInput] = {}
    unfilled: dict[str, UnfilledInput] = {}
    for spec in definition.inputs:
        outcome = worker.fill(spec, rec)
        if isinstance(outcome, FilledInput):
            filled[spec.id] = outcome
        else:
            unfilled[spec.id] = outcome
    _check_filled(definition, filled, unfilled, worker)
    notes: list[str] = []
    for override in chosen:  # oldest first, so the newest override of an input wins
        replaced = filled.get(override.input_id)
        filled[override.input_id] = _apply_override(definition, override)
        unfilled.pop(override.input_id, None)
        if replaced is not None and replaced.provenance.source != "user":
            notes.append(
                f"{override.input_id}: the record gave {replaced.value!r} "
                f"({replaced.provenance.describe()}); overridden by user {override.user}"
            )
    ordered = {i: filled[i] for i in definition.input_ids if i in filled}
    return Population(definition, worker.patient_id, when, ordered, unfilled, tuple(notes))
