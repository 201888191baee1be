"""Reading free text: terms with negation (English and Chinese), age, sex, pregnancy, setting."""

from __future__ import annotations

import pytest

from medagent.recommend.text import (
    TermIndex,
    read_age,
    read_pregnancy,
    read_setting,
    read_sex,
)

TERMS = TermIndex(
    ["chest pain", "fever", "swollen calf", "haematemesis", "palpitations", "胸痛", "发热", "心悸"]
)


@pytest.mark.parametrize(
    ("text", "term", "negated"),
    [
        ("Presents with chest pain for 2 hours.", "chest pain", False),  # plain
        ("No chest pain.", "chest pain", True),  # "no" before the term
        ("Denies fever.", "fever", True),  # "denies"
        ("Denies fever, chills, or chest pain.", "chest pain", True),  # a negated list
        ("Had chest pain. No fever.", "chest pain", False),  # negation in another sentence
        ("No fever but chest pain since noon.", "chest pain", False),  # "but" ends the reach
        ("Fever was ruled out.", "fever", True),  # negation after the term
        ("Swollen, painful left calf.", "swollen calf", False),  # words between a term's words
        ("Hematemesis this morning.", "haematemesis", False),  # American spelling
        ("Palpitation on exertion.", "palpitations", False),  # singular of a plural term
        ("胸痛3小时。", "胸痛", False),  # Chinese, plain
        ("无胸痛。", "胸痛", True),  # 无
        ("否认发热。", "发热", True),  # 否认
        ("无明显诱因出现胸痛。", "胸痛", False),  # 无明显诱因 is not a negation
        ("无发热，伴心悸。", "心悸", False),  # the comma ends 无's reach
        ("否认发热、心悸。", "心悸", True),  # a negated 、 list
    ],
)
def test_negation(text: str, term: str, negated: bool) -> None:
    hits = [h for h in TERMS.find(text) if h.term == term]
    assert hits, f"{term!r} not found in {text!r}"
    assert hits[0].negated is negated


def test_family_history_is_not_the_patients() -> None:
    (hit,) = TERMS.find("Her mother had chest pain.")
    assert hit.family and not hit.negated


@pytest.mark.parametrize(
    ("text", "age", "sex"),
    [
        ("A 72-year-old woman with AF.", 72, "female"),
        ("An 18-month-old boy.", 1.5, "male"),
        ("45 yo M presents", 45, "male"),  # "45 yo M"
        ("BP 120/80, M. Smith reviewed", None, None),  # an initial is not a sex
        ("女性，76岁，心悸2周。", 76, "female"),
        ("男，40岁。", 40, "male"),
        ("He is 60 years of age.", 60, "male"),  # pronoun
    ],
)
def test_age_and_sex(text: str, age: float | None, sex: str | None) -> None:
    assert read_age(text) == (None if age is None else pytest.approx(age))
    assert read_sex(text) == sex


@pytest.mark.parametrize(
    ("text", "pregnant"),
    [
        ("28-year-old woman, pregnant, first antenatal visit.", True),
        ("Her last menstrual period was 2024-01-10.", True),
        ("Pregnancy test negative.", False),
        ("She is not pregnant.", False),
        ("女性，29岁，停经7周，早孕。", True),
        ("72-year-old woman with AF.", None),
    ],
)
def test_pregnancy(text: str, pregnant: bool | None) -> None:
    assert read_pregnancy(text) is pregnant


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("presented to the emergency department", "ed"),
        ("admitted to the ICU", "icu"),
        ("scheduled for elective hip replacement", "preop"),
        ("seen in clinic", "clinic"),
        ("急诊就诊", "ed"),
        ("a description with no place", None),
    ],
)
def test_setting(text: str, setting: str | None) -> None:
    assert read_setting(text) == setting
