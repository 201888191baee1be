"""Sentences and ConText-style assertion (negation, uncertainty, experiencer, history) for notes."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

from medagent.notes.lexicon import lexicon

# A sentence ends at . ! ? followed by space and a capital, digit or bracket, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])|\n\s*\n|\n(?=[A-Z•\-*])")
_PRE_SCOPE = 150  # characters a pre-trigger reaches forward (inside its sentence)
_POST_SCOPE = 100  # characters a post-trigger reaches back


def _alternation(phrases: tuple[str, ...]) -> re.Pattern[str]:
    body = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Triggers:
    negation_pre: re.Pattern[str]
    negation_post: re.Pattern[str]
    uncertain_pre: re.Pattern[str]
    family_pre: re.Pattern[str]
    historical_pre: re.Pattern[str]
    historical_post: re.Pattern[str] | None
    terminate: re.Pattern[str]


@cache
def _triggers() -> _Triggers:
    c = lexicon().context
    return _Triggers(
        negation_pre=_alternation(c.negation_pre),
        negation_post=_alternation(c.negation_post),
        uncertain_pre=_alternation(c.uncertain_pre),
        family_pre=_alternation(c.family_pre),
        historical_pre=_alternation(c.historical_pre),
        historical_post=re.compile("|".join(c.historical_post), re.IGNORECASE)
        if c.historical_post
        else None,
        terminate=re.compile(
            "|".join(
                [
                    r"[;:]",
                    _alternation(c.terminate).pattern,
                ]
            ),
            re.IGNORECASE,
        ),
    )


class Sentences:
    """Sentence boundaries of one note, for looking up the sentence around a span."""

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        for m in _SENTENCE_END.finditer(text):
            starts.append(m.end())
        self.starts = starts

    def around(self, start: int) -> tuple[int, int]:
        """(start, end) of the sentence holding character `start`."""
        i = bisect_right(self.starts, start) - 1
        s = self.starts[i]
        e = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)
        return s, e

    def spans(self) -> list[tuple[int, int]]:
        ends = [*self.starts[1:], len(self.text)]
        return list(zip(self.starts, ends, strict=True))


@dataclass(frozen=True, slots=True)
class Assertion:
    """How a mention is asserted."""

    status: str  # affirmed | negated | uncertain
    family: bool = False
    historical: bool = False


def _last_pre(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> re.Match[str] | None:
    last = None
    for m in pattern.finditer(text, lo, hi):
        last = m
    return last


def assertion(sentences: Sentences, start: int, end: int) -> Assertion:
    """ConText for the mention text[start:end]: the nearest trigger before it, unless terminated."""
    t = _triggers()
    text = sentences.text
    s0, s1 = sentences.around(start)
    lo = max(s0, start - _PRE_SCOPE)
    status = "affirmed"
    neg = _last_pre(t.negation_pre, text, lo, start)
    if neg is not None and not t.terminate.search(text, neg.end(), start):
        status = "negated"
    else:
        post = t.negation_post.search(text, end, min(s1, end + _POST_SCOPE))
        if post is not None and not t.terminate.search(text, end, post.start()):
            status = "negated"
    if status == "affirmed":
        unc = _last_pre(t.uncertain_pre, text, lo, start)
        if unc is not None and not t.terminate.search(text, unc.end(), start):
            status = "uncertain"
    family = t.family_pre.search(text, s0, start) is not None
    historical = t.historical_pre.search(text, s0, start) is not None or (
        t.historical_post is not None and t.historical_post.search(text, s0, s1) is not None
    )
    return Assertion(status, family, historical)


@cache
def _timing_cues() -> tuple[re.Pattern[str] | None, ...]:
    c = lexicon().context
    return tuple(
        re.compile("|".join(cues), re.IGNORECASE) if cues else None
        for cues in (c.presentation_cues, c.later_cues, c.past_cues)
    )


TIMING_RANK = {"presentation": 0, "": 1, "later": 1, "past": 2}


def timing(sentences: Sentences, start: int) -> str:
    """When a value was taken, as its sentence says: presentation, later, past, or "" (no cue)."""
    s0, s1 = sentences.around(start)
    for label, cue in zip(("presentation", "later", "past"), _timing_cues(), strict=True):
        if cue is not None and cue.search(sentences.text, s0, s1):
            return label
    return ""
