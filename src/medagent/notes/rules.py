"""The deterministic notes extractor: lexicon patterns + ConText; conflicts resolved per input."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any

from medagent.errors import MedAgentError
from medagent.notes.context import TIMING_RANK, Sentences, assertion, timing
from medagent.notes.lexicon import Concept, Link, lexicon, links
from medagent.notes.model import Candidate, Extraction, Filled, Span
from medagent.scales.engine import evaluate
from medagent.scales.model import Aggregate, InputDef, InputType, Scale
from medagent.units import convert, normalize_unit

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUM_RE = re.compile(rf"(?<![\w.])(?:{NUM})(?![\d])")
# Words that may stand between a measurement's name and its value ("creatinine was raised at 2.1").
_GAP = (
    r"(?:\([A-Za-z][^()]{0,11}\)|[\s:=,(\-–\]]|\b(?:somewhat|depressed|borderline|markedly|notably|"
    r"lower|higher|measures|stands|stood|result|results|range|limits|came|back|it|"
    r"of|was|were|is|are|at|to|level|levels|count|value|values|"
    r"concentration|measured|measuring|reading|serum|plasma|blood|elevated|high|low|increased|"
    r"decreased|reduced|approximately|about|around|only|a|an|the|noted|showed|revealed|remained|"
    r"recorded|reached|rose|fell|initial|initially|on|in|admission|arrival|presentation|be|been|"
    r"found|documented|slightly|markedly|mildly|severely|significantly|raised|normal|abnormal|"
    r"within|up|by|score|index|ratio|had|has|have|with|her|his|their|its|peak|peaked|total|"
    r"mg|which|fasting|random|baseline|~|≈|approx)\b)"
)
_MAX_GAP = 60
_NOT_UNITS = frozenset(
    {"a", "in", "at", "on", "of", "to", "and", "or", "with", "h", "s", "m", "d", "g", "l", "was"}
)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "once": 1, "twice": 2}
_FREQ = [
    (
        re.compile(
            r"(\d+|one|two|three|four|five|six)\s*(?:times?|x)\s*(?:a|per|each)\s*day", re.I
        ),
        None,
    ),
    (re.compile(r"\btwice\s*(?:a|per)?\s*(?:day|daily)|\bbid\b|\bb\.i\.d\.|\bq12h\b", re.I), 2),
    (re.compile(r"\bthrice\s*(?:a|per)?\s*(?:day|daily)|\btid\b|\bt\.i\.d\.|\bq8h\b", re.I), 3),
    (re.compile(r"\bqid\b|\bq\.i\.d\.|\bq6h\b", re.I), 4),
    (re.compile(r"\bq(\d+)h\b", re.I), -1),
    (re.compile(r"\b(?:once|one time)\s*(?:a|per)?\s*(?:day|daily)|\bdaily\b|\bqd\b", re.I), 1),
]
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DATE_RE = re.compile(
    r"(?P<us>(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}))|(?P<iso>(?P<Y>\d{4})-(?P<M>\d{2})-(?P<D>\d{2}))"
    r"|(?P<mon>[A-Za-z]{3,9})\.? (?P<dd>\d{1,2})(?:st|nd|rd|th)?,? (?P<yy>\d{4})"
    r"|(?P<dd2>\d{1,2})(?:st|nd|rd|th)? (?P<mon2>[A-Za-z]{3,9}),? (?P<yy2>\d{4})"
)
_AGE_RE = re.compile(
    r"(?<![\d.])(?P<n>\d{1,3}(?:\.\d+)?)\s*[- ]?\s*(?P<u>years?|yrs?|months?|mos?|weeks?|days?)"
    r"[- ]old|(?<![\d.])(?P<n2>\d{1,3})\s*(?:yo|y/o|y\.o\.|-yo)\b"
    r"|(?<!at the )(?<!at )\bage(?:d| of)?:?\s+(?P<n3>\d{1,3})\b"
    r"|(?<![\d.])(?P<n4>\d{1,3})\s*-?\s*year(?:s)?\s*of\s*age",
    re.IGNORECASE,
)
_UNITS_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_AGE = re.compile(
    rf"\b(?P<w>(?:{'|'.join(_TENS_WORDS)})(?:[- ](?:{'|'.join(_UNITS_WORDS[:9])}))?|"
    rf"{'|'.join(_UNITS_WORDS)})[- ](?P<u>years?|months?|weeks?|days?)[- ]old\b",
    re.IGNORECASE,
)


_SMALL_WORDS = "zero|no|a single|single|" + "|".join(_UNITS_WORDS)


def _word_number(words: str) -> int:
    if "single" in words.lower():
        return 1
    total = 0
    for w in re.split(r"[- ]", words.lower()):
        if w in _TENS_WORDS:
            total += 10 * (_TENS_WORDS.index(w) + 2)
        elif w in _UNITS_WORDS:
            total += _UNITS_WORDS.index(w) + 1
    return total


_AGE_UNITS = {"y": "a", "m": "mo", "w": "wk", "d": "d"}
_FEMALE = re.compile(
    r"\b(?:[Ww]om[ae]n|[Ff]emale|[Ll]ady|[Gg]irl|Mrs|Ms|[Gg]ravida|[Pp]rimigravida|[Mm]ultigravida|"
    r"[Pp]regnant|WOMAN|FEMALE)\b"
)
_MALE = re.compile(r"\b(?:[Mm]an|[Mm]ale|[Gg]entleman|[Bb]oy|Mr|MAN|MALE)\b")
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b", re.I)
_HE = re.compile(r"\b(?:he|his|him|himself)\b", re.I)
_BP_FRACTION = re.compile(
    r"(?P<syn>blood pressures?|\bb\.?p\.?\b|arterial pressure|\bnibp\b|\babp\b)"
    rf"(?P<gap>{_GAP}{{0,12}})(?P<s>\d{{2,3}})\s*/\s*(?P<d>\d{{2,3}})"
    r"|(?P<s2>\d{2,3})\s*/\s*(?P<d2>\d{2,3})\s*(?:mm\s*hg|mmhg)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Reading:
    """A number read next to a concept name, with its unit as written."""

    value: float
    unit: str | None
    span: Span


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _alt(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in sorted(patterns, key=len, reverse=True))


@cache
def _synonyms(concept_id: str) -> re.Pattern[str]:
    c = lexicon().concepts[concept_id]
    return re.compile(rf"(?<![\w-])(?:{_alt(c.synonyms)})(?![\w])", re.IGNORECASE)


@cache
def _unit_re(concept_id: str) -> re.Pattern[str] | None:
    units = lexicon().concepts[concept_id].units
    if not units:
        return None
    body = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
    return re.compile(rf"\s*(?:{body})(?![A-Za-z0-9])", re.IGNORECASE)


@cache
def _spellings() -> dict[str, str]:
    return {k.casefold(): v for k, v in lexicon().unit_spellings.items()}


def to_ucum(unit: str) -> str | None:
    """A unit as written in a note, in UCUM (None when unknown)."""
    spelled = _spellings().get(unit.strip().casefold())
    try:
        return normalize_unit(spelled or unit.strip())
    except MedAgentError:
        return None


def _foreign_unit(text: str, pos: int) -> bool:
    """Whether a unit-like token that the concept does not accept follows position `pos`."""
    m = re.match(r"\s*([^\s,;)]+)", text[pos : pos + 20])
    if m is None:
        return False
    token = m.group(1).rstrip(".")
    if not token or token.casefold() in _NOT_UNITS or (token.isalpha() and len(token) > 6):
        return False
    if token in ("%", "/") or token.startswith(("/", "x10", "×")):
        return True
    return to_ucum(token) is not None


def _readings(concept_id: str, text: str) -> list[_Reading]:
    """Numbers that follow a concept's name; else a number with its unit just before the name
    ("66 mg/dL high-density lipoprotein"); names listed before their values ("urea and
    creatinine were 18.9 mmol/L and 366 µmol/L, respectively", "BUN/creatinine 32/0.87")."""
    c = lexicon().concepts[concept_id]
    unit_re = _unit_re(concept_id)
    out: list[_Reading] = []
    for syn in _synonyms(concept_id).finditer(text):
        reading = _listed(text, syn, unit_re)
        if reading is None:
            num = _next_number(text, syn.end())
            if num is not None:
                reading = _after_number(text, num, unit_re=unit_re, syn_start=syn.start())
        if reading is None:
            reading = _before(text, syn, unit_re, c)
        if reading is not None:
            out.append(reading)
    return out


@cache
def _any_measurement() -> re.Pattern[str]:
    """The name of any measurement: a value belongs to the nearest name before it."""
    names = [
        p for c in lexicon().concepts.values() if c.kind in ("quantity", "bp") for p in c.synonyms
    ]
    return re.compile(rf"(?<![\w-])(?:{_alt(names)})(?![\w])", re.IGNORECASE)


_GAP_BREAK = re.compile(
    r"(?<![A-Za-z₀-₉])\d|[.;!?](?:\s|$)|\n|,\s+and\b"
    r"|\b(?:normal|reference|ref|nl)\b\s*(?:range|value|values|limits?|level)?\s*[:<>≤≥=]"
    r"|\(\s*(?:normal|reference|ref|nl)\b",
    re.IGNORECASE,
)


def _next_number(text: str, pos: int) -> re.Match[str] | None:
    """The first number after a name, if only words stand between them (no other measurement's
    name, no sentence end, at most _MAX_GAP characters)."""
    num = _NUM_RE.search(text, pos, min(len(text), pos + _MAX_GAP + 12))
    if num is None or num.start() - pos > _MAX_GAP:
        return None
    gap = text[pos : num.start()]
    if _GAP_BREAK.search(gap) or _any_measurement().search(gap):
        return None
    return num


_LIST_NAMES = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+", re.IGNORECASE)


def _listed(text: str, syn: re.Match[str], unit_re: re.Pattern[str] | None) -> _Reading | None:
    """This name is the k-th of names joined by 'and' or '/', whose values follow in order."""
    s0 = max(0, text.rfind(".", 0, syn.start()) + 1)
    sentence_end = text.find(". ", syn.end())
    s1 = len(text) if sentence_end < 0 else sentence_end
    window = text[s0:s1]
    local = syn.start() - s0
    # names: runs of words separated by 'and' or '/' right up to this name, then values the same
    slash = re.search(r"/\s*$", window[:local]) or re.match(
        r"\)?\s*(?:\([^()]{1,12}\))?\s*/", window[local + len(syn.group(0)) :]
    )
    if slash:
        m = re.search(
            rf"(?P<a>[\w .()-]{{1,40}}?)/(?P<b>[\w .()-]{{1,40}}?)"
            rf"{_GAP}*?(?P<v1>{NUM})\s*/\s*(?P<v2>{NUM})",
            window,
            re.IGNORECASE,
        )
        if m and m.start("a") <= local < m.end("b"):
            first = local < m.end("a")
            g = "v1" if first else "v2"
            start, end = s0 + m.start(g), s0 + m.end(g)
            return _Reading(_num(m.group(g)), None, Span(start, end, text[start:end]))
        return None
    resp = re.search(r"respectively", window[local:], re.IGNORECASE)
    if resp is None:
        return None
    stop = local + resp.start()
    verb = re.compile(
        r"\b(?:were|was|are|is|of|measured|measuring|at|as)\b|:", re.IGNORECASE
    ).search(window, local + len(syn.group(0)), stop)
    if verb is None:
        return None
    head_start = max(window.rfind(";", 0, local), window.rfind("(", 0, local)) + 1
    # the list of names is the run of short, number-free items just before the verb
    for sep in reversed(list(_LIST_NAMES.finditer(window, head_start, local))):
        item = window[sep.end() : local]
        if re.search(r"(?<![A-Za-z₀-₉])\d", window[head_start : sep.start()]) and len(item) < 60:
            head_start = sep.end()
            break
    names = window[head_start : verb.start()]
    cuts = [0, *(m.end() for m in _LIST_NAMES.finditer(names)), len(names) + 1]
    if len(cuts) < 3 or re.search(r"(?<![A-Za-z₀-₉])\d", names):
        return None  # one name, or values already among the names: not a list of names
    index = next(i for i in range(len(cuts) - 1) if cuts[i] <= local - head_start < cuts[i + 1])
    values = list(_NUM_RE.finditer(window, verb.end(), stop))
    if len(values) != len(cuts) - 1:
        return None  # names and values do not pair one to one: refuse to guess
    v = values[index]
    unit_m = unit_re.match(window, v.end()) if unit_re else None
    unit = unit_m.group(0).strip() if unit_m else None
    start, end = s0 + v.start(), s0 + (unit_m.end() if unit_m else v.end())
    return _Reading(_num(v.group(0)), unit, Span(start, end, text[start:end]))


def _before(
    text: str, syn: re.Match[str], unit_re: re.Pattern[str] | None, c: Concept
) -> _Reading | None:
    if unit_re is None and not c.before:
        return None
    back = text[max(0, syn.start() - 40) : syn.start()]
    pattern = (
        rf"(?<![\w.])(?P<n>{NUM}|{_SMALL_WORDS})(?P<u>{unit_re.pattern if unit_re else ''})"
        r"(?:\s*\([^()]{0,20}\))?\s*(?:of\s+|on\s+|in\s+)?(?:(?!and\b|or\b|with\b)[a-z]+\s+)?$"
    )
    m = re.search(pattern, back, re.IGNORECASE)
    if m is None or (unit_re is not None and not m.group("u").strip() and not c.before):
        return None
    base = syn.start() - len(back)
    unit = m.group("u").strip() or None
    start = base + m.start("n")
    n = m.group("n")
    value = float(_word_number(n)) if n[0].isalpha() else _num(n)
    return _Reading(value, unit, Span(start, syn.end(), text[start : syn.end()]))


def _after_number(
    text: str,
    num: re.Match[str],
    *,
    unit_re: re.Pattern[str] | None,
    syn_start: int,
) -> _Reading | None:
    value = _num(num.group(0))
    end = num.end()
    unit: str | None = None
    ranged = re.compile(rf"\s*(?:-|–|to)\s*(?:{NUM})(?![\d])").match(text, end)
    if ranged:  # "130-135 mmol/L": the lower end, in the unit written after the upper
        end = ranged.end()
    u = unit_re.match(text, end) if unit_re else None
    if u is not None:
        unit = u.group(0).strip()
        end = u.end()
        if to_ucum(unit) == "[ft_i]":  # 5 ft 6 in
            inch = re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:in|inches|\"|'')", text[end:])
            if inch:
                value = value * 12 + float(inch.group(1))
                unit = "in"
                end += inch.end()
    elif _foreign_unit(text, end) or re.match(r"\s*/\s*\d", text[end : end + 4]):
        return None  # "pulse oximetry 94 %", "BP 120/80" read as a heart rate
    return _Reading(value, unit, Span(syn_start, end, text[syn_start:end]))


def _in_range(spec: InputDef, value: float, unit: str | None) -> tuple[Any, bool]:
    """The value for the engine (number, or number with unit) and whether it is plausible."""
    if spec.unit is None or spec.range is None:
        return value, True
    target = spec.unit
    try:
        ucum = to_ucum(unit) if unit else target
        if ucum is None:
            return value, False
        x = convert(value, ucum, target, spec.analyte)
    except MedAgentError:
        return value, False
    lo, hi = spec.range
    ok = lo <= x <= hi
    return ((value, ucum) if ucum != target else value), ok


def _quantity_candidates(
    spec: InputDef, link: Link, text: str, sentences: Sentences
) -> list[Candidate]:
    out: list[Candidate] = []
    lex = lexicon()
    for cid in link.concepts:
        c = lex.concepts[cid]
        if c.kind == "age":
            out.extend(_age(spec, text, cid))
            continue
        readings = _readings(cid, text) if c.synonyms else []
        for phrase, constant in c.constants.items():
            for m in re.finditer(phrase, text, re.IGNORECASE):
                unit = c.bare_units[0] if c.bare_units else None
                readings.append(_Reading(constant, unit, Span(m.start(), m.end(), m.group(0))))
        if c.kind == "bp" and c.part is not None:
            for m in _BP_FRACTION.finditer(text):
                g = "s" if c.part == 0 else "d"
                raw = m.group(g) or m.group(g + "2")
                readings.append(
                    _Reading(float(raw), "mm[Hg]", Span(m.start(), m.end(), m.group(0)))
                )
        if not readings and c.unit_only_near:
            readings = _unit_only(cid, text)
        for r in readings:
            if assertion(sentences, r.span.start, r.span.end).family:
                continue
            units: list[str | None] = [r.unit] if r.unit else [*c.bare_units] or [None]
            for unit in units:
                value, ok = _in_range(spec, r.value, unit)
                if ok:
                    if spec.type is InputType.INTEGER and not isinstance(value, tuple):
                        value = round(value)
                    out.append(Candidate(spec.id, value, r.span, cid, original=r.span.text))
                    break
    return out


def _unit_only(concept_id: str, text: str) -> list[_Reading]:
    """Numbers carrying one of the concept's units where no name is written (last resort)."""
    c = lexicon().concepts[concept_id]
    unit_re = _unit_re(concept_id)
    if unit_re is None or c.unit_only_near is None:
        return []
    near = re.compile(c.unit_only_near, re.IGNORECASE)
    bad = re.compile(rf"\b(?:{_alt(c.unit_only_not_after)})\b", re.IGNORECASE)
    out = []
    for num in _NUM_RE.finditer(text):
        u = unit_re.match(text, num.end())
        if u is None:
            continue
        before = text[max(0, num.start() - 30) : num.start()]
        after = text[u.end() : u.end() + 25]
        if bad.search(before) or bad.search(after):
            continue
        around = text[max(0, num.start() - 50) : num.start()] + " " + text[u.end() : u.end() + 50]
        if not near.search(around):
            continue
        span = Span(num.start(), u.end(), text[num.start() : u.end()])
        out.append(_Reading(_num(num.group(0)), u.group(0).strip(), span))
    return out


def _age(spec: InputDef, text: str, cid: str) -> list[Candidate]:
    out = []
    for m in _WORD_AGE.finditer(text):
        value, ok = _in_range(spec, _word_number(m.group("w")), _AGE_UNITS[m.group("u")[0].lower()])
        if ok:
            out.append(Candidate(spec.id, value, Span(m.start(), m.end(), m.group(0)), cid))
    for m in _AGE_RE.finditer(text):
        n = m.group("n") or m.group("n2") or m.group("n3") or m.group("n4")
        unit = _AGE_UNITS[m.group("u")[0].lower()] if m.group("u") else "a"
        value, ok = _in_range(spec, float(n), unit)
        if ok:
            out.append(Candidate(spec.id, value, Span(m.start(), m.end(), m.group(0)), cid))
    return out


def _sex(spec: InputDef, text: str) -> list[Candidate]:
    codes = {o.code for o in spec.options}
    found = []
    for pattern, code in ((_FEMALE, "female"), (_MALE, "male")):
        m = pattern.search(text)
        if m and code in codes:
            found.append((m.start(), code, m))
    if found:
        found.sort()
        return [
            Candidate(spec.id, code, Span(m.start(), m.end(), m.group(0)), "sex")
            for _, code, m in found
        ]
    she, he = list(_SHE.finditer(text)), list(_HE.finditer(text))
    if she or he:
        m, code = (she[0], "female") if len(she) > len(he) else (he[0], "male")
        return [Candidate(spec.id, code, Span(m.start(), m.end(), m.group(0)), "sex")]
    return []


def _finding_candidates(
    spec: InputDef, link: Link, text: str, sentences: Sentences
) -> list[Candidate]:
    out: list[Candidate] = []
    for cid in link.concepts:
        c = lexicon().concepts[cid]
        for m in _synonyms(cid).finditer(text):
            a = assertion(sentences, m.start(), m.end())
            if (c.experiencer == "family") != a.family or a.status == "uncertain":
                continue
            if c.recent and a.historical and a.status == "affirmed":
                continue  # "appendectomy 5 years ago" is not a recent surgery
            present = a.status == "affirmed"
            out.append(
                Candidate(
                    spec.id,
                    present != link.invert,
                    Span(m.start(), m.end(), m.group(0)),
                    cid,
                    assertion=a.status if not a.family else "family",
                    historical=a.historical,
                )
            )
    return out


def _date_candidates(spec: InputDef, link: Link, text: str) -> list[Candidate]:
    out = []
    for cid in link.concepts:
        for syn in _synonyms(cid).finditer(text):
            window = text[syn.end() : syn.end() + 60]
            m = _DATE_RE.search(window)
            if m is None:
                continue
            try:
                d = _to_date(m)
            except ValueError:
                continue
            end = syn.end() + m.end()
            out.append(
                Candidate(
                    spec.id, d.isoformat(), Span(syn.start(), end, text[syn.start() : end]), cid
                )
            )
    return out


def _to_date(m: re.Match[str]) -> date:
    if m.group("us"):
        return date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    if m.group("iso"):
        return date(int(m.group("Y")), int(m.group("M")), int(m.group("D")))
    mon = (m.group("mon") or m.group("mon2") or "")[:3].lower()
    if mon not in _MONTHS:
        raise ValueError(mon)
    return date(
        int(m.group("yy") or m.group("yy2")), _MONTHS[mon], int(m.group("dd") or m.group("dd2"))
    )


@dataclass(frozen=True, slots=True)
class _Dose:
    name: str
    dose: float
    unit: str
    per_day: float | None
    span: Span


def _doses(concept_id: str, text: str) -> list[_Dose]:
    out = []
    syn = _alt(lexicon().concepts[concept_id].synonyms)
    route = (
        r"(?:\s+(?P<route>iv|po|im|sc|oral(?:ly)?|intravenous(?:ly)?|buccal|patch|transdermal))?"
    )
    before = re.compile(
        rf"(?P<dose>{NUM})\s*(?P<unit>mg|mcg|µg|μg|ug|g)\s+(?:of\s+)?(?P<name>{syn}){route}",
        re.IGNORECASE,
    )
    after = re.compile(
        rf"(?P<name>{syn}){route}\s*(?:\(\w+\)\s*)?(?P<dose>{NUM})\s*(?P<unit>mg|mcg|µg|μg|ug|g)\b",
        re.IGNORECASE,
    )
    for pattern in (before, after):
        for m in pattern.finditer(text):
            tail = text[m.end() : m.end() + 40]
            per_day: float | None = None
            for freq, n in _FREQ:
                f = (
                    freq.match(tail.lstrip(" ,"))
                    if freq.pattern.startswith("(")
                    else freq.search(tail[:25])
                )
                if f is None:
                    continue
                if n is None:
                    word = f.group(1).lower()
                    per_day = float(_WORDS.get(word, 0) or int(word))
                elif n == -1:
                    per_day = 24 / int(f.group(1))
                else:
                    per_day = float(n)
                break
            name = m.group("name").lower()
            if m.group("route"):
                r = m.group("route").lower()
                r = "po" if r.startswith("oral") else "iv" if r.startswith("intraven") else r
                name = f"{name}_{r}"
            out.append(
                _Dose(
                    name,
                    _num(m.group("dose")),
                    m.group("unit"),
                    per_day,
                    Span(m.start(), m.end(), m.group(0)),
                )
            )
    out.sort(key=lambda d: d.span.start)
    return out


def _medication_candidates(spec: InputDef, link: Link, text: str) -> list[Candidate]:
    out: list[Candidate] = []
    for cid in link.concepts:
        for d in _doses(cid, text):
            value: Any
            if link.part == "name":
                codes = [o.code for o in spec.options]
                value = d.name if d.name in codes else None
                if value is None:
                    base = [c for c in codes if c.split("_")[0] == d.name.split("_")[0]]
                    value = base[0] if len(base) == 1 else None
                if value is None:
                    continue
            elif link.part == "frequency":
                if d.per_day is None:
                    continue
                value = round(d.per_day) if spec.type is InputType.INTEGER else d.per_day
            else:
                value, ok = _in_range(spec, d.dose, to_ucum(d.unit))
                if not ok:
                    continue
            out.append(Candidate(spec.id, value, d.span, cid, original=d.span.text))
    return out


def _choice_candidates(
    spec: InputDef, link: Link, text: str, sentences: Sentences
) -> list[Candidate]:
    out = []
    for cid in link.concepts:
        c = lexicon().concepts[cid]
        if c.kind == "sex":
            return _sex(spec, text)
        for code, phrases in c.options.items():
            if spec.option(code) is None:
                continue
            for m in re.finditer(_alt(phrases), text, re.IGNORECASE):
                a = assertion(sentences, m.start(), m.end())
                if a.status != "affirmed" or a.family:
                    continue
                out.append(Candidate(spec.id, code, Span(m.start(), m.end(), m.group(0)), cid))
    out.sort(key=lambda c: c.span.start)
    return out


def candidates(
    scale: Scale, text: str, *, extra_links: Mapping[str, Link] | None = None
) -> dict[str, list[Candidate]]:
    """Every candidate value for every input of the scale that the note mentions, in note order.

    `extra_links` replaces how the named inputs are read (an evaluation harness declaring a
    benchmark's own reading of an item); the shipped lexicon never needs it.
    """
    sentences = Sentences(text)
    out: dict[str, list[Candidate]] = {}
    linked = _links(scale)
    if extra_links:
        linked = {**linked, **extra_links}
    for spec in scale.inputs:
        link = linked.get(spec.id)
        if link is None:
            continue
        kinds = {lexicon().concepts[c].kind for c in link.concepts}
        found: list[Candidate]
        if "medication" in kinds:
            found = _medication_candidates(spec, link, text)
        elif spec.type is InputType.BOOLEAN:
            found = _finding_candidates(spec, link, text, sentences)
        elif spec.type is InputType.CHOICE:
            found = _choice_candidates(spec, link, text, sentences)
        elif spec.type is InputType.DATE:
            found = _date_candidates(spec, link, text)
        else:
            found = _quantity_candidates(spec, link, text, sentences)
        found.sort(key=lambda c: c.span.start)
        if found:
            out[spec.id] = [
                replace(c, timing=timing(sentences, c.span.start)) for c in _dedupe(found)
            ]
    return out


_LINKS: dict[tuple[str, str], dict[str, Link]] = {}


def _links(scale: Scale) -> dict[str, Link]:
    key = (scale.id, scale.version)
    if key not in _LINKS:
        _LINKS[key] = links(scale)
    return _LINKS[key]


def _dedupe(found: list[Candidate]) -> list[Candidate]:
    seen: set[tuple[int, str]] = set()
    out = []
    for c in found:
        key = (c.span.start, repr(c.value))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _magnitude(spec: InputDef, value: Any) -> float:
    if isinstance(value, tuple):
        try:
            return convert(float(value[0]), value[1], spec.unit or value[1], spec.analyte)
        except MedAgentError:
            return float(value[0])
    return float(value)


def _points(scale: Scale, spec: InputDef, value: Any) -> float:
    result = evaluate(scale, {spec.id: value})
    return sum(
        i.points or 0.0
        for i in result.items
        if i.id == spec.id
        or any(it.id == i.id and it.source == spec.id for it in scale.scoring.items)
    )


def resolve(scale: Scale, spec: InputDef, found: list[Candidate]) -> Filled:
    """Choose one value by the input's rule; keep the others as alternatives."""
    if spec.type is InputType.BOOLEAN:
        yes = [c for c in found if c.value is True]
        chosen = yes[0] if yes else found[0]
        rule = "any affirmed mention" if yes else "negated wherever mentioned"
    elif spec.aggregate is Aggregate.MAX and spec.type in (InputType.QUANTITY, InputType.INTEGER):
        chosen, rule = max(found, key=lambda c: _magnitude(spec, c.value)), "highest (max)"
    elif spec.aggregate is Aggregate.MIN and spec.type in (InputType.QUANTITY, InputType.INTEGER):
        chosen, rule = min(found, key=lambda c: _magnitude(spec, c.value)), "lowest (min)"
    elif spec.aggregate is Aggregate.WORST and len(found) > 1:
        scored = [(_points(scale, spec, c.value), -i, c) for i, c in enumerate(found)]
        chosen, rule = max(scored, key=lambda t: (t[0], t[1]))[2], "worst (most points)"
    else:
        ranked = sorted(found, key=lambda c: (TIMING_RANK.get(c.timing, 1), c.span.start))
        chosen, rule = ranked[0], "first on presentation"
    return Filled(spec.id, chosen, rule, tuple(c for c in found if c is not chosen))


def extract_rules(
    scale: Scale, text: str, *, extra_links: Mapping[str, Link] | None = None
) -> Extraction:
    """Read a scale's inputs out of a note with the deterministic rules (offline, no model)."""
    out = Extraction(scale_id=scale.id)
    found = candidates(scale, text, extra_links=extra_links)
    for spec in scale.inputs:
        if spec.id in found:
            out.filled[spec.id] = resolve(scale, spec, found[spec.id])
        else:
            out.missing.append(spec.id)
    return out
