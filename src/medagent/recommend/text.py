"""Reading free text (English or Simplified Chinese): terms with negation, age, sex, pregnancy."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

# Cues that negate a term that follows them within the same clause (ConText-style, simplified).
_EN_NEG_PRE = re.compile(
    r"\b(?:no|not|denies|denied|deny|denying|without|negative\s+for|free\s+of|absence\s+of|"
    r"ruled\s+out|rules\s+out|never|nor|unremarkable\s+for|no\s+evidence\s+of|no\s+signs?\s+of|"
    r"no\s+history\s+of|no\s+known|no\s+complaints?\s+of|did\s+not\s+have|does\s+not\s+have|"
    r"has\s+not\s+had|had\s+no|has\s+no|have\s+no|neither)\b",
    re.IGNORECASE,
)
# "no longer", "not only", "no change in" do not negate what follows.
_EN_PSEUDO = re.compile(
    r"\b(?:no\s+longer|not\s+only|no\s+change\s+in|not\s+necessarily|without\s+difficulty)\b",
    re.IGNORECASE,
)
# A negation written after the term: "fever was denied", "PE was ruled out".
_EN_NEG_POST = re.compile(
    r"^\W{0,3}(?:(?:was|were|is|are|has\s+been|have\s+been)\s+)?"
    r"(?:ruled\s+out|absent|denied|excluded|not\s+present|negative)\b",
    re.IGNORECASE,
)
# What ends a negation's reach in English: sentence and clause boundaries.
_EN_STOP = re.compile(
    r"[.;:!?\n]|\b(?:but|however|although|though|except|apart\s+from|aside\s+from|which|who|"
    r"presents?|presented|reports?|reported|complains?|complained|complaining|with|and\s+has|"
    r"and\s+had|now|then|after|since)\b",
    re.IGNORECASE,
)
_ZH_NEG_PRE = re.compile(r"无|没有|否认|未见|未诉|未闻|未及|未发现|未出现|不伴|未述")
_ZH_PSEUDO = re.compile(r"无明显诱因|无诱因|无明显原因|无明显诱发因素")
_ZH_STOP = re.compile(r"[，,。；;！？!?\n]|但|伴有|伴")
# A family member's history does not count as the patient's.
_FAMILY = re.compile(
    r"\bfamily\s+history\b|\b(?:mother|father|sister|brother|sibling|parent)s?\b|"
    r"家族史|母亲|父亲|其母|其父|兄弟|姐妹|家族",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？\n]?")


def has_cjk(text: str) -> bool:
    """Whether the text contains Chinese characters."""
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@dataclass(frozen=True, slots=True)
class TermHit:
    """A term found in the text, with where it was and whether it is negated."""

    term: str
    start: int
    end: int
    quote: str
    negated: bool
    family: bool


def _sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    start = max(text.rfind(ch, 0, pos) for ch in ".!?。！？\n") + 1
    ends = [i for i in (text.find(ch, pos) for ch in ".!?。！？\n") if i >= 0]
    return start, (min(ends) if ends else len(text))


def _negated_en(text: str, start: int, end: int, sentence_start: int) -> bool:
    before = text[sentence_start:start]
    stops = list(_EN_STOP.finditer(before))
    clause = before[stops[-1].end() :] if stops else before
    cleaned = _EN_PSEUDO.sub(" ", clause)
    cues = list(_EN_NEG_PRE.finditer(cleaned))
    if cues:
        # A negation reaches at most about eight words ("denies fever, chills, night sweats or").
        words = len(cleaned[cues[-1].end() :].split())
        if words <= 8:
            return True
    return bool(_EN_NEG_POST.match(text[end : end + 40]))


def _negated_zh(text: str, start: int, sentence_start: int) -> bool:
    before = text[sentence_start:start]
    stops = list(_ZH_STOP.finditer(before))
    clause = before[stops[-1].end() :] if stops else before
    clause = _ZH_PSEUDO.sub("", clause)
    return bool(_ZH_NEG_PRE.search(clause))


class TermIndex:
    """Find many terms in a text: English by word with light stemming and up to two words
    between the words of a term ("swollen, painful left calf" finds "swollen calf"); Chinese by
    substring. Each hit says whether it is negated or about a family member."""

    def __init__(self, terms: Iterable[str]) -> None:
        unique = sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t))
        self._patterns: list[tuple[str, str, re.Pattern[str], bool]] = []
        self._patterns = [_compiled(term) for term in unique]

    def find(self, text: str) -> list[TermHit]:
        """Every occurrence of a term, each marked negated or family history where it is."""
        hits: list[TermHit] = []
        lowered = _plain(text.lower())
        for term, key, pattern, chinese in self._patterns:
            if key not in (text if chinese else lowered):
                continue
            for m in pattern.finditer(text):
                s_start, s_end = _sentence_bounds(text, m.start())
                negated = (
                    _negated_zh(text, m.start(), s_start)
                    if chinese
                    else _negated_en(text, m.start(), m.end(), s_start)
                )
                family = bool(_FAMILY.search(text[s_start:s_end]))
                hits.append(TermHit(term, m.start(), m.end(), m.group(0), negated, family))
        hits.sort(key=lambda h: (h.start, -h.end))
        return hits


def _plain(text: str) -> str:
    return re.sub(r"[\s-]+", " ", text).replace("ae", "e").replace("oe", "e")


_SUFFIX = re.compile(r"(?:ies|ing|ed|es|s|y|e)$")
_BETWEEN = r"(?:[\s,/-]+[\w']+){0,2}?[\s,/-]+"


def _en_word(word: str) -> str:
    # British spellings in a term also find the American ones ("haematemesis", "oedema").
    if len(word) >= 5 and word.isalpha():
        stem = _SUFFIX.sub("", word.lower())
        if len(stem) >= 4:
            return re.escape(stem).replace("ae", "a?e").replace("oe", "o?e") + r"[a-z]{0,4}"
    return re.escape(word).replace("ae", "a?e").replace("oe", "o?e")


def _en_pattern(term: str) -> str:
    words = [_en_word(w) for w in re.split(r"[\s-]+", term.strip())]
    tail = r"(?:e?s)?" if term[-1:].isalpha() else ""
    return r"(?<![\w-])" + _BETWEEN.join(words) + tail + r"(?![\w-])"


@cache
def _compiled(term: str) -> tuple[str, str, re.Pattern[str], bool]:
    """A term's pattern, the cheap key that must be in the text first, and its language."""
    if has_cjk(term):
        return term, term, re.compile(re.escape(term)), True
    key = _plain(term.lower()).split(" ")[0][:4]
    return term, key, re.compile(_en_pattern(term), re.IGNORECASE), False


@lru_cache(maxsize=1024)
def term_index(terms: tuple[str, ...]) -> TermIndex:
    """A cached index over a set of terms."""
    return TermIndex(terms)


# ---------------------------------------------------------------- age, sex, pregnancy

_AGE_EN = re.compile(
    r"(?<![\d.])(?P<n>\d{1,3}(?:\.\d+)?)\s*[- ]?\s*(?P<u>years?|yrs?|months?|mos?|weeks?|days?)"
    r"[- ]old|(?<![\d.])(?P<n2>\d{1,3})\s*(?:yo|y/o|y\.o\.)\b|\baged?\s*:?\s*(?P<n3>\d{1,3})\b"
    r"|(?<![\d.])(?P<n4>\d{1,3})\s*-?\s*years?\s+of\s+age",
    re.IGNORECASE,
)
_AGE_ZH = re.compile(r"(?<![\d.])(?P<n>\d{1,3})\s*(?P<u>岁|个月|月龄|周龄|天)")


def read_age(text: str) -> float | None:
    """The patient's age in years from text ("72-year-old", "18-month-old", "76岁")."""
    m = _AGE_EN.search(text)
    if m:
        if m.group("n"):
            n = float(m.group("n"))
            unit = m.group("u").lower()
            if unit.startswith(("month", "mo")):
                return n / 12
            if unit.startswith("week"):
                return n / 52
            if unit.startswith("day"):
                return n / 365
            return n
        return float(m.group("n2") or m.group("n3") or m.group("n4"))
    z = _AGE_ZH.search(text)
    if z:
        n = float(z.group("n"))
        return {"岁": n, "个月": n / 12, "月龄": n / 12, "周龄": n / 52, "天": n / 365}[
            z.group("u")
        ]
    return None


_SEX_EN = re.compile(
    r"\b(?P<f>woman|female|lady|girl|mrs|ms|gravida|mother of)\b|"
    r"\b(?P<m>man|male|gentleman|boy|mr)\b",
    re.IGNORECASE,
)
_PRONOUN_F = re.compile(r"\b(?:she|her|hers)\b", re.IGNORECASE)
_PRONOUN_M = re.compile(r"\b(?:he|his|him)\b", re.IGNORECASE)
_SEX_ZH = re.compile(
    r"(?P<f>女性|女士|女孩|女童|女婴|女患|患者女|女，|女,|女\s)|(?P<m>男性|男士|男孩|男童|男婴|男患|患者男|男，|男,|男\s)"
)


_SEX_ABBREV = re.compile(r"\b\d{1,3}\s*(?:yo|y/o|y\.o\.|-?year-old|years? old)?\s*(?P<s>[MF])\b")


def read_sex(text: str) -> str | None:
    """``female`` or ``male`` from the first sex word (English or Chinese), else pronouns."""
    found: list[tuple[int, str]] = []
    a = _SEX_ABBREV.search(text)
    if a:
        found.append((a.start(), "female" if a.group("s") == "F" else "male"))
    m = _SEX_EN.search(text)
    if m:
        found.append((m.start(), "female" if m.group("f") else "male"))
    z = _SEX_ZH.search(text)
    if z:
        found.append((z.start(), "female" if z.group("f") else "male"))
    if found:
        return min(found)[1]
    f, male = len(_PRONOUN_F.findall(text)), len(_PRONOUN_M.findall(text))
    if f != male:
        return "female" if f > male else "male"
    return None


_PREGNANT = (
    "pregnant",
    "pregnancy",
    "gestation",
    "gestational age",
    "antenatal",
    "prenatal",
    "last menstrual period",
    "LMP",
    "妊娠",
    "怀孕",
    "早孕",
    "孕",
    "停经",
    "末次月经",
    "产检",
)
_NOT_PREGNANT = re.compile(
    r"\b(?:not\s+pregnant|pregnancy\s+test\s+(?:was\s+)?negative|negative\s+pregnancy\s+test|"
    r"post-?menopausal|menopause)\b|未孕|否认妊娠|绝经",
    re.IGNORECASE,
)


def read_pregnancy(text: str) -> bool | None:
    """True when the text documents a pregnancy, False when it rules one out, else None."""
    if _NOT_PREGNANT.search(text):
        return False
    for hit in term_index(_PREGNANT).find(text):
        if not hit.negated and not hit.family:
            return True
    return None


_SETTINGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("icu", re.compile(r"\b(?:ICU|intensive care|critical care)\b|重症监护|监护室|ICU")),
    ("ed", re.compile(r"\b(?:emergency (?:department|room)|ED|ER|A&E)\b|急诊", re.IGNORECASE)),
    (
        "preop",
        re.compile(
            r"\b(?:pre-?operative|scheduled for (?:an? )?(?:elective )?\w*\s*(?:surgery|"
            r"replacement|resection|repair|operation))\b|术前|拟行",
            re.IGNORECASE,
        ),
    ),
    ("ward", re.compile(r"\b(?:admitted|inpatient|ward)\b|入院|住院|病房", re.IGNORECASE)),
    (
        "clinic",
        re.compile(
            r"\b(?:clinic|office|outpatient|primary care|check-?up|follow-?up)\b|门诊|随访|体检",
            re.IGNORECASE,
        ),
    ),
)


def read_setting(text: str) -> str | None:
    """The care setting a description names (ICU, emergency, pre-operative, ward, clinic)."""
    for setting, pattern in _SETTINGS:
        if pattern.search(text):
            return setting
    return None


def sentences(text: str) -> list[str]:
    """The sentences of a text (English or Chinese punctuation)."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
