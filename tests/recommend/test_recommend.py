"""Recommendations from free text (English and Chinese), exclusions, families and guidance."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from medagent.recommend import (
    MAX_LIMIT,
    PatientContext,
    PreviousResult,
    RecommendError,
    from_text,
    recommend,
    recommend_text,
)
from medagent.recommend.engine import parse_duration
from medagent.scales import evaluate, get_scale
from medagent.scales.model import AgeLimits, Indications, Scale, Terms


def _members(text: str, setting: str | None = None) -> list[str]:
    return recommend(from_text(text, setting=setting), limit=MAX_LIMIT).ranked_members()


# Against the shipped library: what a clinician would expect first, and what must not appear.
@pytest.mark.parametrize(
    ("text", "setting", "expected", "absent"),
    [
        # en-af: palpitations and AF call for stroke-risk scoring
        (
            "74-year-old woman with palpitations; ECG shows atrial fibrillation.",
            "clinic",
            "cha2ds2_vasc",
            ["centor_mcisaac"],
        ),
        # zh-af: the same in Chinese
        (
            "女性，76岁，反复心悸2周，心电图示心房颤动。",
            "clinic",
            "cha2ds2_vasc",
            ["centor_mcisaac"],
        ),
        # en-negated: every AF word negated, nothing about AF is proposed
        (
            "45-year-old man with low mood. No palpitations, denies atrial fibrillation.",
            "clinic",
            None,
            ["cha2ds2_vasc", "has_bled"],
        ),
        # zh-negated: 无/否认 negate the complaint and the finding
        ("男性，40岁，情绪低落。无心悸，否认房颤。", "clinic", None, ["cha2ds2_vasc", "has_bled"]),
        # en-sore-throat
        (
            "25-year-old woman with sore throat, fever 38.5 C and tonsillar exudate; no cough.",
            "clinic",
            "centor_mcisaac",
            ["cha2ds2_vasc"],
        ),
        # zh-cap: pneumonia severity
        ("男性，79岁，咳嗽咳痰3天，发热，胸片示右下肺炎。", "ed", "curb65", ["centor_mcisaac"]),
        # en-qtc: the values alone (a QT interval) point to the QTc family
        ("Heart rate of 131 bpm and a QT interval of 330 msec.", None, "qtc_bazett", []),
        # en-no-chest-pain: negated chest pain does not bring chest-pain scores
        (
            "45-year-old man with fatigue and depressed mood. No chest pain, denies fever.",
            "clinic",
            None,
            ["heart_score"],
        ),
        # zh-no-chest-pain
        ("男性，40岁，紧张焦虑3个月。无胸痛，否认发热。", "clinic", None, ["heart_score"]),
    ],
)
def test_library_cases(
    text: str, setting: str | None, expected: str | None, absent: list[str]
) -> None:
    members = _members(text, setting)
    if expected is not None:
        assert expected in members[:6], members
    for scale_id in absent:
        assert scale_id not in members, members


def test_family_is_one_entry_with_its_variants() -> None:
    rec = recommend_text("Heart rate of 76 bpm and a QT interval of 330 msec.")
    qtc = [e for e in rec.entries if "qtc_bazett" in e.members]
    assert len(qtc) == 1
    assert {"qtc_fridericia", "qtc_hodges", "qtc_framingham", "qtc_rautaharju"} <= set(
        qtc[0].members
    )
    assert qtc[0].family is not None


def test_routine_values_alone_do_not_suggest_a_data_alone_false_scale() -> None:
    # A blood pressure in a text is routine: MAP (data_alone: false) needs an indication.
    plain = _members("58-year-old man seen for knee pain. Blood pressure 128/82 mmHg.", "clinic")
    assert "mean_arterial_pressure" not in plain
    shock = _members("58-year-old man in septic shock. Blood pressure 78/40 mmHg.", "icu")
    assert "mean_arterial_pressure" in shock[:6]


def test_pe_rule_out_and_probability_scores_are_one_entry() -> None:
    rec = recommend_text(
        "34-year-old woman in the emergency department with sudden shortness of breath and "
        "pleuritic chest pain; heart rate 96, SpO2 97 %.",
        setting="ed",
    )
    pe = [e for e in rec.entries if "wells_pe" in e.members]
    assert len(pe) == 1
    assert {"perc_rule", "revised_geneva"} <= set(pe[0].members)


def test_computed_entry_carries_the_guidance() -> None:
    rec = recommend_text("Heart rate of 131 bpm and a QT interval of 330 msec.")
    entry = next(e for e in rec.entries if "qtc_bazett" in e.members)
    assert entry.best.result is not None and entry.best.result.complete
    data = entry.to_dict()["best"]["result"]
    assert data["band"]
    for advice in data["guidance"]:
        assert "recommend" in advice["text"] or "suggest" in advice["text"]
        assert advice["citation"]


def test_reasons_and_needed_inputs_are_in_words() -> None:
    rec = recommend_text(
        "74-year-old woman with palpitations; atrial fibrillation.", setting="clinic"
    )
    entry = next(e for e in rec.entries if "cha2ds2_vasc" in e.members)
    kinds = {r.kind for r in entry.best.reasons}
    assert {"complaint", "finding", "data", "setting"} <= kinds
    assert all(n.answerable_by for n in entry.best.needed)
    assert "hypertension" in {n.input_id for n in entry.best.needed}


def test_never_more_than_ten() -> None:
    with pytest.raises(RecommendError):
        recommend(from_text("chest pain"), limit=11)
    long = " ".join(
        [
            "80-year-old man in the emergency department with chest pain, palpitations, fever,",
            "cough, confusion, black stools, haematemesis, leg swelling, sudden shortness of",
            "breath, headache, abdominal pain, jaundice, ascites, atrial fibrillation, pneumonia,",
            "sepsis, cirrhosis, heart failure, stroke and chronic kidney disease.",
        ]
    )
    assert len(recommend(from_text(long), limit=10).entries) <= 10


def test_bad_setting_and_empty_text() -> None:
    with pytest.raises(RecommendError):
        from_text("chest pain", setting="moon")
    with pytest.raises(RecommendError):
        from_text("   ")


# ---------------------------------------------------------------- exclusions on a test library


def _with(scale_id: str, **changes: object) -> Scale:
    base = get_scale(scale_id)
    ind = (base.indications or Indications()).model_copy(update=changes)
    return base.model_copy(update={"indications": ind})


def _library() -> list[Scale]:
    return [
        _with(
            "cha2ds2_vasc",
            findings=Terms(en=("atrial fibrillation",), zh=("房颤",)),
            age=AgeLimits(min=18),
            settings=("clinic", "ward"),
            refresh="P1Y",
            family=None,
        ),
        _with("bishop_score", findings=Terms(en=("labour",)), pregnancy="required", sex="female"),
        _with("phq9", findings=Terms(en=("low mood",)), age=AgeLimits(min=12, max=120)),
    ]


def _ctx(text: str, **kw: object) -> PatientContext:
    from dataclasses import replace

    return replace(from_text(text, scales=_library(), extract=False), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ctx_kw", "text", "scale_id", "kind"),
    [
        ({"age": 10.0}, "atrial fibrillation", "cha2ds2_vasc", "age"),  # child
        ({"age": 8.0}, "low mood", "phq9", "age"),  # below the scale's minimum age
        ({"sex": "male", "pregnant": False}, "labour", "bishop_score", "sex"),  # for women only
        ({"sex": "female", "pregnant": False}, "labour", "bishop_score", "pregnancy"),
        ({"setting": "ed"}, "atrial fibrillation", "cha2ds2_vasc", "setting"),  # not an ED scale
    ],
)
def test_exclusions(ctx_kw: dict[str, object], text: str, scale_id: str, kind: str) -> None:
    rec = recommend(_ctx(text, **ctx_kw), scales=_library())
    assert scale_id not in rec.ranked_members()
    (exclusion,) = [x for x in rec.excluded if x.scale_id == scale_id]
    assert exclusion.kind == kind and exclusion.reason


def test_inferred_setting_never_excludes() -> None:
    rec = recommend(
        _ctx("atrial fibrillation", setting="ed", setting_inferred=True), scales=_library()
    )
    assert "cha2ds2_vasc" in rec.ranked_members()


def _previous(days: int, **inputs: object) -> PreviousResult:
    scale = get_scale("cha2ds2_vasc")
    values = {
        "age": 72,
        "sex": "female",
        "chf": False,
        "hypertension": True,
        "diabetes": False,
        "stroke": False,
        "tia": False,
        "thromboembolism": False,
        "vascular_disease": False,
    }
    values.update(inputs)
    return PreviousResult(
        "cha2ds2_vasc",
        datetime(2026, 1, 1) - timedelta(days=days),
        inputs=values,
        result=evaluate(scale, values),
    )


def test_recent_unchanged_result_is_excluded() -> None:
    ctx = _ctx("72-year-old woman, atrial fibrillation", as_of=datetime(2026, 1, 1))
    from dataclasses import replace

    ctx = replace(ctx, previous=(_previous(30),))
    rec = recommend(ctx, scales=_library())
    (x,) = [x for x in rec.excluded if x.scale_id == "cha2ds2_vasc"]
    assert x.kind == "recent" and "P1Y" in x.reason


def test_stale_result_is_recommended_with_its_guidance() -> None:
    from dataclasses import replace

    ctx = replace(
        _ctx("72-year-old woman, atrial fibrillation", as_of=datetime(2026, 1, 1)),
        previous=(_previous(400),),
    )
    rec = recommend(ctx, scales=_library())
    (entry,) = [e for e in rec.entries if e.id == "cha2ds2_vasc"]
    assert any(r.kind == "previous" for r in entry.best.reasons)
    guidance = entry.best.guidance()
    assert guidance and "recommends" in guidance[0]["text"] and guidance[0]["link"]


def test_changed_inputs_make_a_recent_result_due() -> None:
    from dataclasses import replace

    ctx = replace(
        _ctx("80-year-old woman, atrial fibrillation", as_of=datetime(2026, 1, 1)),
        previous=(_previous(30),),  # computed at 72; the text now says 80
    )
    assert "cha2ds2_vasc" in recommend(ctx, scales=_library()).ranked_members()


@pytest.mark.parametrize(
    ("text", "days"),
    [("P1Y", 365), ("P30D", 30), ("PT24H", 1), ("P2W", 14), ("P1M", 30)],
)
def test_parse_duration(text: str, days: float) -> None:
    assert parse_duration(text) == timedelta(days=days)


def test_bad_duration() -> None:
    with pytest.raises(RecommendError):
        parse_duration("one year")
