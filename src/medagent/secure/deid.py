"""De-identification of free text before any outbound LLM call, with a local re-identification map.

Two layers, both deterministic:

1. **Known identifiers** of the patient (from the FHIR Patient resource: names, identifier values,
   telecoms, address lines, city, postal code) are replaced wherever they occur, case-insensitive,
   by surrogate tokens such as ``[NAME-1]``; the same value always gets the same token.
2. **Patterns** catch identifiers the record does not list: SSN-, phone-, e-mail-, URL- and
   MRN-shaped strings, long digit runs, street addresses, titled names ("Dr. Smith"), dates
   (shifted, see below) and ages over 89 (replaced by "90 or older", as HIPAA Safe Harbor asks).

Dates are shifted, not removed, so that intervals stay clinically meaningful: every date of one
patient moves back by the same number of days (1..365), derived with HMAC-SHA-256 from a local
secret and the patient id, and keeps its original format. The :class:`ReidMap` maps every token
and shifted date back to the original; it never leaves the site.

Free-text names that are neither in the record nor after a title cannot be found without a
named-entity model; that limit is measured by the Synthea test and stated in docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

AGE_CAP = 89
MAX_SHIFT_DAYS = 365

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_RE = "|".join(_MONTHS + [m[:3] for m in _MONTHS])
_STREET_SUFFIX = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    "Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Ferry|Fry|Loop|"
    "Crossing|Xing|Ridge|Heights|Hts|Gardens|Path|Walk|Row|Run|Pike|Alley|Plaza|Mall|Bypass"
)

# "6 Minute Walk", "2 Days Prior Dr…": a number and a unit of time or count, not a street
_NOT_STREET = "Minutes?|Hours?|Days?|Weeks?|Months?|Years?|Times?|Points?|Items?|Leads?|Steps?"
# A long bare number that is a measurement, not an identifier: a unit follows it, or a count
# name precedes it ("platelets 250000/uL", "Platelet count: 150000", "viral load 1500000").
_MEASURE_AFTER = re.compile(
    r"\s?(?:/|x\b|×|\*|per\b|cells|copies|IU\b|U\b|units?\b|[mµunpf]?[gLl]\b|[mµun]mol|mcL|"
    r"mm\^?3|K\b|k/|mEq|cps|log)",
)
_MEASURE_BEFORE = re.compile(
    r"(?:platelets?|plt|count|wbc|leu[ck]ocytes?|viral load|rna|dna|ferritin|d-dimer|bnp|"
    r"cd4|cells|copies|level|titer|titre)\W{0,3}(?:(?:of|was|is|at|=|:)\W{0,2})?$",
    re.IGNORECASE,
)

_BARE_ID = re.compile(r"\b[A-Z]?\d{6,}\b(?!\.\d)")

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("URL", re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("PHONE", re.compile(r"(?<![\w-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}\b")),
    (
        "ID",
        re.compile(
            r"(?<![\w/])(?:MRN|MR#|Medical Record(?: Number)?|SSN|(?-i:DL)|Driver'?s? License|"
            r"Account|Acct|Patient ID|(?-i:ID))\s*(?:#|no\.?|number)?\s*[:#]?\s*"
            r"((?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,})\b",
            re.IGNORECASE,
        ),
    ),
    (
        "ADDRESS",
        re.compile(
            rf"\b\d{{1,6}}(?! (?:{_NOT_STREET})\b)(?: [A-Z][a-z]+){{1,4}} (?:{_STREET_SUFFIX})\b"
            r"(?:,? (?:Apt|Unit|Suite|#)\.? ?\w+)?"
        ),
    ),
    ("ID", _BARE_ID),
    (
        "NAME",
        re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? (?:[A-Z]\.? )?[A-Z][a-z]+(?:-[A-Z][a-z]+)?"),
    ),
)

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iso", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?=T|\b)")),
    ("us", re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")),
    # "3/15/19": only a valid month and day, never inside a longer chain of slashes
    ("us2", re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{2})(?![\d/])")),
    ("mdy", re.compile(rf"\b({_MONTH_RE})\.? (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b")),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? ({_MONTH_RE})\.?,? (\d{{4}})\b")),
)

_AGE_PATTERNS = (
    re.compile(r"\b(\d{2,3})(?P<sep>[ -])(?P<unit>years?|yrs?|yo)(?P<tail>[ -]old)?\b", re.I),
    re.compile(r"\b(?P<lead>aged?:?\s+)(\d{2,3})\b", re.IGNORECASE),
    re.compile(r"\b(\d{2,3})\s?(?P<unit>y/o|y\.o\.)", re.IGNORECASE),
)


@dataclass(frozen=True, slots=True)
class PatientIdentifiers:
    """What the record says identifies one patient; every value is removed from outgoing text."""

    patient_id: str
    names: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    telecoms: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()

    @classmethod
    def from_fhir_patient(cls, patient: Mapping[str, Any]) -> PatientIdentifiers:
        """Collect identifiers from a FHIR R4 Patient resource (as parsed JSON)."""
        names: list[str] = []
        for name in patient.get("name", []):
            parts = [*name.get("given", []), name.get("family", "")]
            names.extend(p for p in parts if p)
            full = " ".join(p for p in parts if p)
            if full:
                names.append(full)
            if name.get("text"):
                names.append(name["text"])
        addresses: list[str] = []
        for address in patient.get("address", []):
            addresses.extend(address.get("line", []))
            addresses.extend(a for a in (address.get("city"), address.get("postalCode")) if a)
        dates = [d[:10] for d in (patient.get("birthDate"), patient.get("deceasedDateTime")) if d]
        return cls(
            patient_id=str(patient.get("id", "")),
            names=tuple(dict.fromkeys(names)),
            identifiers=tuple(
                str(i["value"]) for i in patient.get("identifier", []) if i.get("value")
            ),
            telecoms=tuple(str(t["value"]) for t in patient.get("telecom", []) if t.get("value")),
            addresses=tuple(dict.fromkeys(addresses)),
            dates=tuple(dates),
        )


@dataclass
class ReidMap:
    """Token → original value and shifted date → original date, for one patient; kept locally."""

    patient_id: str
    shift_days: int
    tokens: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)

    def token_for(self, kind: str, original: str) -> str:
        """The surrogate for ``original``, the same one every time it appears."""
        key = original.casefold()
        for token, value in self.tokens.items():
            if token.startswith(f"[{kind}-") and value.casefold() == key:
                return token
        count = sum(1 for t in self.tokens if t.startswith(f"[{kind}-"))
        token = f"[{kind}-{count + 1}]"
        self.tokens[token] = original
        return token

    def to_json(self) -> str:
        """Serialise (store it encrypted, e.g. with medagent.secure.at_rest)."""
        return json.dumps(
            {
                "patient_id": self.patient_id,
                "shift_days": self.shift_days,
                "tokens": self.tokens,
                "dates": self.dates,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ReidMap:
        """Reverse :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            patient_id=data["patient_id"],
            shift_days=int(data["shift_days"]),
            tokens=dict(data["tokens"]),
            dates=dict(data["dates"]),
        )


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where each character of a de-identified text came from in the original text.

    A character of the text kept as it was maps to itself; every character of a surrogate maps
    to the whole original value it replaced. So a quote found in the de-identified text maps
    back to the exact span of the original note (a quote that cuts a surrogate in two grows to
    the whole original value).
    """

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    original_length: int

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span [start, end) of the original text that [start, end) here came from."""
        if not 0 <= start <= end <= len(self.starts):
            raise ValueError(f"span [{start}, {end}) is outside a text of {len(self.starts)}")
        if start == end:
            at = self.starts[start] if start < len(self.starts) else self.original_length
            return at, at
        return self.starts[start], self.ends[end - 1]


@dataclass(frozen=True, slots=True)
class Deidentified:
    """The text that may leave, the map that must not, and the way back to original offsets."""

    text: str
    reid: ReidMap
    alignment: Alignment

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that [start, end) of :attr:`text` came from."""
        return self.alignment.original_span(start, end)


# An edit: replace [start, end) of the current text by a string; None leaves the match alone.
_Edit = tuple[int, int, str] | None


class _Tracked:
    """Text being rewritten, with the original span of every character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = list(range(len(text)))
        self.ends = list(range(1, len(text) + 1))
        self.length = len(text)

    def sub(self, pattern: re.Pattern[str], edit: Callable[[re.Match[str]], _Edit]) -> None:
        """Like ``pattern.sub``, but each match says which part of it becomes what."""
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        last = 0
        for m in pattern.finditer(self.text):
            change = edit(m)
            if change is None:
                continue
            start, end, new = change
            if new == self.text[start:end]:
                continue
            parts.append(self.text[last:start])
            starts += self.starts[last:start]
            ends += self.ends[last:start]
            if end > start:
                first, final = self.starts[start], self.ends[end - 1]
            else:
                first = final = self.starts[start] if start < len(self.starts) else self.length
            parts.append(new)
            starts += [first] * len(new)
            ends += [final] * len(new)
            last = end
        if not parts:
            return
        parts.append(self.text[last:])
        self.text = "".join(parts)
        self.starts = starts + self.starts[last:]
        self.ends = ends + self.ends[last:]

    def alignment(self) -> Alignment:
        return Alignment(tuple(self.starts), tuple(self.ends), self.length)


ENV_SECRET = "MEDAGENT_DEID_SECRET"


@lru_cache(maxsize=1)
def _process_secret() -> bytes:
    return secrets.token_bytes(32)


def site_deidentifier(environ: Mapping[str, str] | None = None) -> Deidentifier:
    """The site's de-identifier: secret from ``MEDAGENT_DEID_SECRET`` (at least 16 bytes).

    Without the setting a random secret is drawn once per process: date shifts are then stable
    within the process (enough to map an answer back) but differ between runs, which also keeps
    an outside model from linking one patient's requests across runs.
    """
    env = os.environ if environ is None else environ
    value = env.get(ENV_SECRET)
    if value:
        try:
            return Deidentifier(value.encode())
        except ValueError:
            raise ValueError(f"{ENV_SECRET} must be at least 16 bytes") from None
    return Deidentifier(_process_secret())


class Deidentifier:
    """De-identifies text per patient with a site secret (for consistent date shifts)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the de-identification secret must be at least 16 bytes")
        self._secret = secret

    def shift_for(self, patient_id: str) -> int:
        """Days every date of this patient is moved back (1..365), stable for the same secret."""
        digest = hmac.new(self._secret, patient_id.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % MAX_SHIFT_DAYS + 1

    def new_map(self, patient: PatientIdentifiers) -> ReidMap:
        """An empty map for this patient (reuse it across notes to keep tokens consistent)."""
        return ReidMap(patient_id=patient.patient_id, shift_days=self.shift_for(patient.patient_id))

    def deidentify(
        self, text: str, patient: PatientIdentifiers, reid: ReidMap | None = None
    ) -> Deidentified:
        """Remove identifiers from ``text``; extend ``reid`` (or a new map) with what was taken."""
        mapping = reid if reid is not None else self.new_map(patient)
        tracked = _Tracked(text)
        _replace_dates(tracked, mapping)
        _replace_known(tracked, patient, mapping)
        _replace_patterns(tracked, mapping)
        _cap_ages(tracked)
        return Deidentified(text=tracked.text, reid=mapping, alignment=tracked.alignment())


def reidentify(text: str, reid: ReidMap) -> str:
    """Put the originals back into text (e.g. an LLM answer) that uses this map's surrogates."""
    for token, original in sorted(reid.tokens.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(token, original)
    for shifted, original in sorted(reid.dates.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"(?<![\d/-]){re.escape(shifted)}(?![\d/-])", original, text)
    return text


def _known_values(patient: PatientIdentifiers) -> list[tuple[str, str]]:
    values: list[tuple[str, str]] = []
    values += [("NAME", v) for v in patient.names]
    values += [("ID", v) for v in patient.identifiers]
    values += [("CONTACT", v) for v in patient.telecoms]
    values += [("ADDRESS", v) for v in patient.addresses]
    # longest first, so "Alica Bruen" is replaced before "Alica"
    return sorted(
        ((k, v.strip()) for k, v in values if len(v.strip()) >= 2), key=lambda kv: -len(kv[1])
    )


@lru_cache(maxsize=256)
def _known_pattern(values: tuple[tuple[str, str], ...]) -> re.Pattern[str] | None:
    """One alternation of every known value (longest first), whole words, any case."""
    alternatives: list[str] = []
    for kind, value in values:
        alternatives.append(re.escape(value))
        if kind == "CONTACT" and re.fullmatch(r"[\d ()+.-]+", value):
            # the same phone number written with other separators or a country code
            digits = re.sub(r"\D", "", value)
            alternatives.append(r"(?:\+?1[ .-]?)?\(?" + r"[ ().+-]*".join(digits))
    if not alternatives:
        return None
    return re.compile(rf"(?<![\w(+])(?:{'|'.join(alternatives)})(?![\w])", re.IGNORECASE)


def _replace_known(text: _Tracked, patient: PatientIdentifiers, reid: ReidMap) -> None:
    values = tuple(_known_values(patient))
    pattern = _known_pattern(values)
    if pattern is None:
        return
    kinds = {value.casefold(): kind for kind, value in reversed(values)}

    def known(m: re.Match[str]) -> _Edit:
        found = m.group(0)
        return m.start(), m.end(), reid.token_for(kinds.get(found.casefold(), "CONTACT"), found)

    text.sub(pattern, known)


def _is_measurement(m: re.Match[str]) -> bool:
    """A long bare number with a unit after it or a count name before it is a lab value."""
    line_start = m.string.rfind("\n", 0, m.start()) + 1
    before = m.string[max(line_start, m.start() - 40) : m.start()]
    return bool(
        m.group(0).isdigit()
        and (_MEASURE_AFTER.match(m.string, m.end()) or _MEASURE_BEFORE.search(before))
    )


def _replace_patterns(text: _Tracked, reid: ReidMap) -> None:
    for kind, pattern in _PATTERNS:

        def sub(m: re.Match[str], kind: str = kind, bare_id: bool = pattern is _BARE_ID) -> _Edit:
            if m.lastindex:  # keep the label ("MRN: "), replace only the value
                return m.start(1), m.end(1), reid.token_for(kind, m.group(1))
            if bare_id and _is_measurement(m):
                return None
            return m.start(), m.end(), reid.token_for(kind, m.group(0))

        text.sub(pattern, sub)


def _shift(day: date, reid: ReidMap) -> date:
    return day - timedelta(days=reid.shift_days)


def _replace_dates(text: _Tracked, reid: ReidMap) -> None:
    def iso(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return reid.token_for("DATE", m.group(0))
        return _record(reid, m.group(0), _shift(day, reid).isoformat())

    def us(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        except ValueError:
            return reid.token_for("DATE", m.group(0))
        new = _shift(day, reid)
        return _record(reid, m.group(0), f"{new.month:02d}/{new.day:02d}/{new.year}")

    def us2(m: re.Match[str]) -> str:
        year = 2000 + int(m.group(3))
        if year > date.today().year:
            year -= 100
        try:
            day = date(year, int(m.group(1)), int(m.group(2)))
        except ValueError:
            return m.group(0)  # "12/40/10" is not a date: leave it as written
        new = _shift(day, reid)
        return _record(reid, m.group(0), f"{new.month:02d}/{new.day:02d}/{new.year % 100:02d}")

    def month_index(name: str) -> int:
        return [m[:3].lower() for m in _MONTHS].index(name[:3].lower()) + 1

    def mdy(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(3)), month_index(m.group(1)), int(m.group(2)))
        except ValueError:
            return reid.token_for("DATE", m.group(0))
        new = _shift(day, reid)
        return _record(reid, m.group(0), f"{_MONTHS[new.month - 1]} {new.day}, {new.year}")

    def dmy(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(3)), month_index(m.group(2)), int(m.group(1)))
        except ValueError:
            return reid.token_for("DATE", m.group(0))
        new = _shift(day, reid)
        return _record(reid, m.group(0), f"{new.day} {_MONTHS[new.month - 1]} {new.year}")

    handlers = {"iso": iso, "us": us, "us2": us2, "mdy": mdy, "dmy": dmy}
    for name, pattern in _DATE_PATTERNS:

        def whole(
            m: re.Match[str], handler: Callable[[re.Match[str]], str] = handlers[name]
        ) -> _Edit:
            return m.start(), m.end(), handler(m)

        text.sub(pattern, whole)


def _record(reid: ReidMap, original: str, shifted: str) -> str:
    reid.dates[shifted] = original
    return shifted


def _cap_ages(text: _Tracked) -> None:
    """Replace only the number of an age over 89 by "90+", keeping the words around it."""
    for index, pattern in enumerate(_AGE_PATTERNS):
        group = 2 if index == 1 else 1

        def cap(m: re.Match[str], group: int = group) -> _Edit:
            if int(m.group(group)) <= AGE_CAP:
                return None
            return m.start(group), m.end(group), "90+"

        text.sub(pattern, cap)


def leaked(text: str, values: Iterable[str]) -> list[str]:
    """Which of ``values`` still occur in ``text`` (case-insensitive, whole words): for tests."""
    low = text.lower()
    found: list[str] = []
    for value in dict.fromkeys(values):
        key = value.lower()
        start = 0
        while key and (i := low.find(key, start)) != -1:
            end = i + len(key)
            before = low[i - 1] if i else " "
            after = low[end] if end < len(low) else " "
            if not _is_word_char(before) and not _is_word_char(after):
                found.append(value)
                break
            start = i + 1
    return found


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass
class LeakReport:
    """How many known identifiers were in the notes before and after de-identification."""

    patients: int = 0
    notes: int = 0
    identifiers_before: int = 0
    identifiers_after: int = 0
    by_kind_before: dict[str, int] = field(default_factory=dict)
    by_kind_after: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON output."""
        return {
            "patients": self.patients,
            "notes": self.notes,
            "identifiers_before": self.identifiers_before,
            "identifiers_after": self.identifiers_after,
            "by_kind_before": self.by_kind_before,
            "by_kind_after": self.by_kind_after,
            "examples": self.examples[:10],
        }


def known_identifier_values(
    patient: PatientIdentifiers, extra_dates: Iterable[str] = ()
) -> dict[str, str]:
    """Every identifying string the record knows for the patient, mapped to its kind."""
    values: dict[str, str] = {}
    for kind, items in (
        ("name", patient.names),
        ("identifier", patient.identifiers),
        ("telecom", patient.telecoms),
        ("address", patient.addresses),
        ("date", (*patient.dates, *extra_dates)),
    ):
        for item in items:
            if item and len(item) >= 2:
                values.setdefault(item, kind)
    return values


def measure_leaks(
    deidentifier: Deidentifier,
    notes_by_patient: Iterable[tuple[PatientIdentifiers, list[tuple[str, str]]]],
    report: LeakReport | None = None,
) -> LeakReport:
    """De-identify each (date, note text) of each patient; count known identifiers that remain.

    An identifier counts once per note where it occurs; the date of each note is a known date.
    """
    result = report if report is not None else LeakReport()
    for patient, notes in notes_by_patient:
        result.patients += 1
        reid = deidentifier.new_map(patient)
        for note_date, text in notes:
            result.notes += 1
            known = known_identifier_values(patient, (note_date,))
            before = leaked(text, known)
            if not before:
                continue
            out = deidentifier.deidentify(text, patient, reid).text
            after = leaked(out, before)
            for value in before:
                kind = known[value]
                result.by_kind_before[kind] = result.by_kind_before.get(kind, 0) + 1
            for value in after:
                kind = known[value]
                result.by_kind_after[kind] = result.by_kind_after.get(kind, 0) + 1
                if len(result.examples) < 50:
                    result.examples.append(f"{patient.patient_id}: {kind} {value!r}")
            result.identifiers_before += len(before)
            result.identifiers_after += len(after)
    return result
