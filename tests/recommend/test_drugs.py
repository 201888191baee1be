from __future__ import annotations

import pytest

from medagent.recommend import recommend_text
from medagent.recommend.context import RecommendError
from medagent.recommend.drugs import drug_names, parse_drugs, read_medications


def test_names_in_english_and_chinese_become_atc_codes() -> None:
    codes = read_medications("On warfarin and atorvastatin 40 mg; 加用依诺肝素。")
    assert [(c.code, c.display) for c in codes] == [
        ("B01AA03", "warfarin"),
        ("C10AA05", "atorvastatin"),
        ("B01AB05", "依诺肝素"),
    ]
    assert all(c.system == "atc" and c.source == "text" for c in codes)


def test_negated_and_family_mentions_are_not_the_patients_drugs() -> None:
    assert read_medications("Not on warfarin. Her mother takes sertraline.") == ()
    assert read_medications("否认服用华法林。") == ()


def test_a_drug_in_the_text_meets_the_scales_medication_indication() -> None:
    rec = recommend_text(
        "67-year-old woman on unfractionated heparin after cardiac surgery; platelets fell "
        "from 240 to 95.",
        setting="ward",
    )
    entry = next(e for e in rec.entries if "four_ts" in e.members)
    assert any(
        r.kind == "medication" and "heparin" in r.text and "B01AB01" in r.text
        for r in entry.best.reasons
    )


def test_shipped_list_is_valid_and_every_code_is_used_by_some_scale_prefix() -> None:
    from medagent.scales import all_scales

    prefixes = {
        p
        for s in all_scales()
        if s.indications is not None
        for p in (*s.indications.medications.atc, *(a for i in s.inputs for a in i.codes.atc))
    }
    for name, atc in drug_names().items():
        assert any(atc.startswith(p) or p.startswith(atc) for p in prefixes), (name, atc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "drugs:\n  - {atc: B01AA03, en: [warfarin]}\n  - {atc: B01AF01, en: [warfarin]}\n",
            "listed under",
        ),
        ("drugs:\n  - {atc: not-atc, en: [x]}\n", "drugs.0.atc"),
        ("drugs:\n  - {atc: B01AA03, en: [warfarin], brand: [x]}\n", "drugs.0.brand"),
    ],
)
def test_bad_drug_lists_are_refused_with_the_path(text: str, message: str) -> None:
    with pytest.raises(RecommendError, match=message):
        parse_drugs(text)
