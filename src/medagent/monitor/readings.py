"""Readings: one monitored value with its patient, time and provenance, from FHIR or HL7 v2."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from medagent.errors import UnitError
from medagent.monitor.config import MonitorConfig, Signal
from medagent.monitor.errors import IngestError
from medagent.units import converter, normalize_unit

LOINC_SYSTEM = "http://loinc.org"
_USABLE_STATUS = {"final", "amended", "corrected", "preliminary", "registered"}


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of a monitored signal, converted to the signal's unit."""

    message_id: str
    patient_id: str
    signal: str
    loinc: str
    value: float | str
    unit: str | None
    effective: datetime  # naive UTC
    source: str
    original: str | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one message held: readings to accept, codes ignored, and where the patient is."""

    readings: tuple[Reading, ...]
    ignored: tuple[str, ...] = ()
    ward: str | None = None
    bed: str | None = None


def naive_utc(when: datetime) -> datetime:
    """A datetime as naive UTC (naive input is taken as UTC)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


@cache
def _converter(source: str, target: str, analyte: str | None) -> Callable[[float], float]:
    return converter(source, target, analyte)


def convert_value(signal: Signal, value: float, *, unit: str | None) -> tuple[float, str]:
    """``value`` in ``unit`` converted to the signal's unit through the one unit registry."""
    assert signal.unit is not None
    if unit is None or not unit.strip():
        raise IngestError(f"{signal.id}: value {value} has no unit (expected {signal.unit})")
    try:
        code = normalize_unit(unit)
        return _converter(code, signal.unit, signal.analyte)(value), code
    except UnitError as exc:
        raise IngestError(
            f"{signal.id}: unit {unit!r} cannot be converted to {signal.unit}: {exc}"
        ) from None


def coded_value(signal: Signal, text: str) -> str:
    """The option a coded answer stands for (``A`` → ``alert``), or an error naming the answer."""
    assert signal.answers is not None
    key = text.strip()
    answer = signal.answers.get(key) or signal.answers.get(key.lower())
    if answer is None:
        raise IngestError(f"{signal.id}: unknown answer {text!r}")
    return answer


def make_reading(
    config: MonitorConfig,
    *,
    message_id: str,
    patient_id: str,
    loinc: str,
    value: object,
    unit: str | None,
    effective: datetime,
    source: str,
) -> Reading | None:
    """A reading for a monitored LOINC code (None when the code is not monitored)."""
    signal = config.by_loinc.get(loinc)
    if signal is None:
        return None
    if signal.kind == "coded":
        return Reading(
            message_id, patient_id, signal.id, loinc, coded_value(signal, str(value)), None,
            naive_utc(effective), source, str(value),
        )  # fmt: skip
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise IngestError(f"{signal.id}: value {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise IngestError(f"{signal.id}: value {value!r} is not a number") from None
    if not math.isfinite(number):
        raise IngestError(f"{signal.id}: value {value!r} is not a finite number")
    converted, code = convert_value(signal, number, unit=unit)
    return Reading(
        message_id, patient_id, signal.id, loinc, converted, signal.unit, naive_utc(effective),
        source, f"{value} {code}",
    )  # fmt: skip


# --------------------------------------------------------------------------- FHIR


def _parse_time(text: object, path: str) -> datetime:
    if not isinstance(text, str):
        raise IngestError(f"{path}: missing effective time")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IngestError(f"{path}: invalid time {text!r}") from None


def _loinc_codes(concept: object) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [
        str(c["code"])
        for c in concept.get("coding") or ()
        if isinstance(c, Mapping) and c.get("system") == LOINC_SYSTEM and c.get("code")
    ]


def _fhir_value(part: Mapping[str, Any], path: str) -> tuple[object, str | None]:
    if "valueQuantity" in part:
        q = part["valueQuantity"]
        if not isinstance(q, Mapping) or "value" not in q:
            raise IngestError(f"{path}.valueQuantity: no value")
        return q["value"], q.get("code") or q.get("unit")
    if "valueCodeableConcept" in part:
        cc = part["valueCodeableConcept"]
        for coding in cc.get("coding") or ():
            if coding.get("code"):
                return coding["code"], None
        if cc.get("text"):
            return cc["text"], None
    if "valueString" in part:
        return part["valueString"], None
    if "valueInteger" in part:
        return part["valueInteger"], None
    raise IngestError(f"{path}: no value")


def parse_fhir_observation(
    config: MonitorConfig, resource: Mapping[str, Any], *, source: str = "fhir", path: str = ""
) -> Parsed:
    """The readings of one FHIR Observation (and its components), or an :class:`IngestError`."""
    here = path or "Observation"
    if resource.get("resourceType") != "Observation":
        raise IngestError(f"{here}: not an Observation ({resource.get('resourceType')!r})")
    obs_id = resource.get("id")
    if not isinstance(obs_id, str) or not obs_id:
        raise IngestError(f"{here}.id: missing (needed to accept each observation once)")
    status = resource.get("status")
    if status not in _USABLE_STATUS:
        return Parsed((), ignored=(f"{obs_id}: status {status}",))
    subject = resource.get("subject") or {}
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(ref, str) or not ref.startswith("Patient/"):
        raise IngestError(f"{here}.subject: a Patient reference is required")
    patient_id = ref.split("/", 1)[1]
    when = resource.get("effectiveDateTime") or resource.get("effectiveInstant")
    if when is None and isinstance(resource.get("effectivePeriod"), Mapping):
        when = resource["effectivePeriod"].get("start")
    effective = _parse_time(when, f"{here}.effective[x]")
    parts: list[tuple[Mapping[str, Any], str, str]] = []
    codes = _loinc_codes(resource.get("code"))
    if not codes:
        raise IngestError(f"{here}.code: no LOINC coding")
    panel = any(c in config.panels for c in codes)
    if not panel:
        parts.append((resource, codes[0], here))
    for i, comp in enumerate(resource.get("component") or ()):
        comp_codes = _loinc_codes(comp.get("code"))
        if comp_codes:
            parts.append((comp, comp_codes[0], f"{here}.component[{i}]"))
    readings: list[Reading] = []
    ignored: list[str] = []
    by_loinc = config.by_loinc
    for part, loinc, part_path in parts:
        code = next((c for c in _loinc_codes(part.get("code")) if c in by_loinc), loinc)
        if code not in by_loinc:
            ignored.append(code)
            continue
        value, unit = _fhir_value(part, part_path)
        mid = obs_id if part is resource else f"{obs_id}#{code}"
        try:
            reading = make_reading(
                config,
                message_id=f"Observation/{mid}",
                patient_id=patient_id,
                loinc=code,
                value=value,
                unit=unit,
                effective=effective,
                source=source,
            )
        except IngestError as exc:
            raise IngestError(f"{part_path}: {exc.reason}") from None
        if reading is not None:
            readings.append(reading)
    return Parsed(tuple(readings), tuple(ignored))


def iter_fhir(payload: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Observations in a single resource or a Bundle, with their paths."""
    kind = payload.get("resourceType")
    if kind == "Bundle":
        for i, entry in enumerate(payload.get("entry") or ()):
            res = entry.get("resource") if isinstance(entry, Mapping) else None
            if not isinstance(res, Mapping):
                raise IngestError(f"Bundle.entry[{i}]: no resource")
            yield res, f"Bundle.entry[{i}].resource"
    else:
        yield payload, str(kind or "resource")


def parse_fhir(config: MonitorConfig, payload: object, *, source: str = "fhir") -> Parsed:
    """All readings of an Observation or a Bundle of Observations; any bad entry refuses all."""
    if not isinstance(payload, Mapping):
        raise IngestError("payload is not a JSON object")
    readings: list[Reading] = []
    ignored: list[str] = []
    problems: list[str] = []
    for resource, path in iter_fhir(payload):
        try:
            parsed = parse_fhir_observation(config, resource, source=source, path=path)
        except IngestError as exc:
            problems.append(exc.reason)
            continue
        readings += parsed.readings
        ignored += parsed.ignored
    if problems:
        raise IngestError("; ".join(problems))
    return Parsed(tuple(readings), tuple(ignored))
