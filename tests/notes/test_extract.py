"""Table-driven extraction cases written from clinical-language patterns."""

from __future__ import annotations

from typing import Any

import pytest

from medagent.notes import extract_rules
from medagent.notes.lexicon import lexicon, links
from medagent.scales import get_scale

_MISSING = object()

CASES: list[tuple[str, str, str, str, Any]] = [
    # id, scale, note, input, expected value (_MISSING: not filled)
    # --- demographics
    ("age-hyphen", "cha2ds2_vasc", "A 72-year-old woman with AF.", "age", 72.0),
    ("age-yo", "cha2ds2_vasc", "68 yo M presents with palpitations.", "age", 68.0),
    ("sex-woman", "cha2ds2_vasc", "A 72-year-old woman with AF.", "sex", "female"),
    ("sex-pronoun", "cha2ds2_vasc", "Patient reports that he has palpitations.", "sex", "male"),
    # --- negation
    ("affirmed", "cha2ds2_vasc", "History of hypertension.", "hypertension", True),
    ("denies", "cha2ds2_vasc", "She denies diabetes or stroke.", "diabetes", False),
    ("no-history-list", "cha2ds2_vasc", "No history of diabetes, stroke or TIA.", "tia", False),
    ("post-negation", "perc_rule", "Hemoptysis was denied. HR 80.", "hemoptysis", False),
    ("terminated", "cha2ds2_vasc", "No fever but has hypertension.", "hypertension", True),
    ("not-mentioned", "cha2ds2_vasc", "Palpitations for two days.", "stroke", _MISSING),
    # --- experiencer: family history is not the patient's
    ("family", "cha2ds2_vasc", "Her mother had a stroke at 60.", "stroke", _MISSING),
    ("family-fh", "cha2ds2_vasc", "Family history of diabetes.", "diabetes", _MISSING),
    # --- uncertainty
    ("uncertain", "perc_rule", "Possible hemoptysis this morning.", "hemoptysis", _MISSING),
    # --- vitals and BP fractions
    ("bp-fraction", "mean_arterial_pressure", "BP 122/84 mmHg, HR 90.", "sbp", 122.0),
    ("bp-diastolic", "mean_arterial_pressure", "blood pressure was 150/95", "dbp", 95.0),
    (
        "hr-bpm",
        "qtc_bazett",
        "heart rate of 131 bpm and a QT interval of 330 msec",
        "heart_rate",
        131.0,
    ),
    (
        "qt-msec",
        "qtc_bazett",
        "heart rate of 131 bpm and a QT interval of 330 msec",
        "qt_interval",
        330.0,
    ),
    ("hr-not-spo2", "perc_rule", "Pulse oximetry 94 % on room air.", "heart_rate", _MISSING),
    # --- unit variants
    (
        "temp-F",
        "centor_mcisaac",
        "Her temperature is 100.1 deg F.",
        "temperature",
        (100.1, "[degF]"),
    ),
    ("temp-C", "centor_mcisaac", "temperature 38.2 °C", "temperature", 38.2),
    (
        "creat-umol",
        "ckd_epi_2021",
        "Serum creatinine was 88 µmol/L.",
        "creatinine",
        (88.0, "umol/L"),
    ),
    ("creat-mgpct", "ckd_epi_2021", "creatinine 1.9 mg%", "creatinine", 1.9),
    ("creat-bare-umol", "ckd_epi_2021", "creatinine 140", "creatinine", (140.0, "umol/L")),
    (
        "weight-lb",
        "bmi",
        "He weighs 154 lb and his height is 170 cm.",
        "weight",
        (154.0, "[lb_av]"),
    ),
    ("height-ft-in", "bmi", "height 5 ft 6 in, weight 70 kg", "height", (66.0, "[in_i]")),
    (
        "abbrev-paren",
        "glasgow_blatchford",
        "blood urea nitrogen (BUN) of 18 mg/dL",
        "urea",
        (18.0, "mg/dL"),
    ),
    ("wbc-per-mm3", "sirs", "white blood count 9400/mm3", "wbc", 9400.0),
    ("sodium-na+", "anion_gap", "Na+ 141 mEq/L, Cl- 100 mEq/L, HCO3- 24 mEq/L", "sodium", 141.0),
    ("before-fio2", "apache_ii", "ABG on 57 % FiO2 showed a pH of 7.29.", "fio2", 57.0),
    ("age-words", "cha2ds2_vasc", "A fifty-year-old man with AF.", "age", 50.0),
    # --- names listed before their values
    (
        "respectively",
        "body_surface_area",
        "Height and weight were 187 cm and 90 kg, respectively.",
        "weight",
        90.0,
    ),
    (
        "respectively-unequal",
        "body_surface_area",
        "Height and weight were 187 cm, respectively.",
        "weight",
        _MISSING,
    ),
    ("slash-pair", "ckd_epi_2021", "BUN/creatinine was 32/0.87.", "creatinine", 0.87),
    (
        "slash-abbrev",
        "curb65",
        "blood urea nitrogen (BUN)/creatinine of 21/1.0",
        "urea",
        (21.0, "mg/dL"),
    ),
    (
        "respectively-after-clause",
        "body_surface_area",
        "BP 120/80 mm Hg, and his height, weight, and waist were 187 cm, 90 kg, and 104 cm, "
        "respectively.",
        "height",
        187.0,
    ),
    (
        "at-the-age-of",
        "cha2ds2_vasc",
        "An 82-year-old woman; angina began at the age of 67.",
        "age",
        82.0,
    ),
    (
        "uncertain-fear",
        "has_bled",
        "Normal tests alleviated any fear of liver disease.",
        "liver_disease",
        _MISSING,
    ),
    (
        "scope-ends",
        "psi_port",
        "No history of hepatic disease, has been managed for heart failure.",
        "chf",
        True,
    ),
    # --- body size written without a name, next to the other body-size value
    ("unit-only", "bmi", "He was 170 cm and 70 kg on admission.", "weight", 70.0),
    ("unit-only-loss", "bmi", "He was 170 cm tall and had lost 9 kg.", "weight", _MISSING),
    # --- a phrase that states a value
    ("room-air", "apache_ii", "PaO2 78 mm Hg on room air.", "fio2", 21.0),
    (
        "word-count",
        "has_bled",
        "He drinks about three drinks per week.",
        "alcohol_drinks_per_week",
        3,
    ),
    # --- a value belongs to the nearest name before it
    (
        "nearest-name",
        "qtc_bazett",
        "heart rhythm regular, respiratory rate 20/min",
        "heart_rate",
        _MISSING,
    ),
    (
        "reference-range",
        "albumin_corrected_anion_gap",
        "anion gap corrected for albumin (normal: 8-12)",
        "albumin",
        _MISSING,
    ),
    ("target-height", "bmi", "Parental target height of 177.5 cm.", "height", _MISSING),
    ("title-case", "cha2ds2_vasc", "mRS 2 at discharge; he was stable.", "sex", "male"),
    (
        "doesnt",
        "psi_port",
        "He doesn’t have a history of any liver disease.",
        "liver_disease",
        False,
    ),
    (
        "pulmonary-htn",
        "cha2ds2_vasc",
        "Echo showed mild pulmonary hypertension.",
        "hypertension",
        _MISSING,
    ),
    (
        "surgery-consulted",
        "wells_pe",
        "Cardiothoracic surgery was consulted.",
        "recent_surgery",
        _MISSING,
    ),
    (
        "remote-surgery",
        "wells_pe",
        "He underwent an appendectomy 20 years ago.",
        "recent_surgery",
        _MISSING,
    ),
    (
        "mobility",
        "caprini_2005",
        "She has spent over 72 hours confined to bed.",
        "mobility",
        "confined_over_72h",
    ),
    # --- ranges: both ends are candidates; the input's rule chooses
    ("range-first", "anion_gap", "sodium 130-135 mmol/L", "sodium", (130.0, "mmol/L")),
    # --- conflicts: first on presentation by default, max where the scale declares it
    (
        "first-measure",
        "qtc_bazett",
        "HR 90 on arrival; later HR 120. QT 400 ms",
        "heart_rate",
        90.0,
    ),
    ("max-declared", "sirs", "HR 90 on arrival; later HR 120.", "heart_rate", 120.0),
    # --- dates
    (
        "lmp-us",
        "estimated_due_date",
        "Her last menstrual period was on 03/31/2006.",
        "lmp",
        "2006-03-31",
    ),
    (
        "lmp-month",
        "estimated_due_date",
        "LMP March 3, 2024. Cycle length is 30 days.",
        "lmp",
        "2024-03-03",
    ),
    (
        "cycle",
        "estimated_due_date",
        "LMP March 3, 2024. Her cycle length is 30 days.",
        "cycle_length",
        30,
    ),
    (
        "today",
        "gestational_age",
        "LMP 01/02/2020. Today's date is 03/29/2020.",
        "current_date",
        "2020-03-29",
    ),
    # --- medications with dose and frequency
    (
        "med-dose",
        "morphine_milligram_equivalents",
        "takes 60 mg of OxyCODONE 2 times a day",
        "oxycodone_dose",
        60.0,
    ),
    (
        "med-freq",
        "morphine_milligram_equivalents",
        "takes 60 mg of OxyCODONE 2 times a day",
        "oxycodone_doses_per_day",
        2.0,
    ),
    (
        "med-bid",
        "morphine_milligram_equivalents",
        "tramadol 50 mg twice daily",
        "tramadol_doses_per_day",
        2.0,
    ),
    (
        "steroid-route",
        "steroid_conversion",
        "Patient has taken 7.96 mg of Dexamethasone PO.",
        "source_steroid",
        "dexamethasone_po",
    ),
    # --- choices through phrases and E/V/M codes
    ("gcs-evm", "glasgow_coma_scale", "GCS 9 (E2V3M4).", "eye", "to_pressure"),
    (
        "gcs-phrase",
        "glasgow_coma_scale",
        "She opens her eyes spontaneously and obeys commands.",
        "motor",
        "obeys",
    ),
]


@pytest.mark.parametrize(
    ("scale_id", "note", "input_id", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_extraction(scale_id: str, note: str, input_id: str, expected: Any) -> None:
    ex = extract_rules(get_scale(scale_id), note)
    if expected is _MISSING:
        assert input_id not in ex.filled, ex.filled.get(input_id)
        return
    filled = ex.filled[input_id]
    assert filled.value == expected
    span = filled.chosen.span
    assert note[span.start : span.end] == span.text  # the evidence is exactly where it says


def test_alternatives_are_kept() -> None:
    ex = extract_rules(get_scale("sirs"), "HR 90 on arrival; later HR 120.")
    filled = ex.filled["heart_rate"]
    assert filled.rule == "highest (max)"
    assert [a.value for a in filled.alternatives] == [90.0]


def test_worst_aggregate_picks_most_points() -> None:
    # APACHE II temperature is declared `worst`: 34.9 °C scores more than 37.0 °C.
    ex = extract_rules(get_scale("apache_ii"), "Temperature 37.0 °C; later temperature 34.9 °C.")
    assert ex.filled["temperature"].value == 34.9
    assert ex.filled["temperature"].rule == "worst (most points)"


def test_presentation_value_comes_first() -> None:
    note = "Sodium was 128 mmol/L two years ago. On admission, sodium was 140 mmol/L."
    filled = extract_rules(get_scale("anion_gap"), note).filled["sodium"]
    assert filled.value == (140.0, "mmol/L")
    assert filled.chosen.timing == "presentation"


def test_lexicon_rejects_unknown_keys() -> None:
    from pydantic import ValidationError

    from medagent.notes.lexicon import Concept

    with pytest.raises(ValidationError):  # a typo in the data must not pass silently
        Concept.model_validate({"kind": "finding", "synonym": ["x"]})


def test_lexicon_loads_and_links_by_code() -> None:
    assert "creatinine" in lexicon().concepts
    got = links(get_scale("ckd_epi_2021"))
    assert got["creatinine"].via == "loinc"
    assert links(get_scale("cha2ds2_vasc"))["chf"].via == "icd10"
    assert links(get_scale("wells_pe"))["clinical_dvt"].via == "binding"


def test_has_bled_reads_uncontrolled_hypertension_not_a_diagnosis() -> None:
    # Regression: HAS-BLED's H is uncontrolled hypertension (systolic above 160 mm Hg).
    scale = get_scale("has_bled")
    plain = extract_rules(scale, "72-year-old man with atrial fibrillation and hypertension.")
    assert "hypertension" not in plain.filled
    worse = extract_rules(scale, "72-year-old man with AF and poorly controlled hypertension.")
    assert worse.filled["hypertension"].value is True


def test_benchmark_reading_applies_only_in_the_harness() -> None:
    from medagent.eval.medcalc import calculator_maps
    from medagent.eval.medcalc_notes import extract

    note = "72-year-old man with atrial fibrillation and hypertension."
    mapping = calculator_maps()[25]
    assert mapping.note_concepts == {"hypertension": ["hypertension"]}
    assert extract("has_bled", note, mapping=mapping).filled["hypertension"].value is True
    assert "hypertension" not in extract("has_bled", note).filled


def test_benchmark_reading_of_an_unknown_concept_is_refused() -> None:
    from medagent.errors import MedAgentError
    from medagent.eval.medcalc import calculator_maps
    from medagent.eval.medcalc_notes import extract

    bad = calculator_maps()[25].model_copy(update={"note_concepts": {"hypertension": ["nope"]}})
    with pytest.raises(MedAgentError, match="unknown lexicon concepts"):
        extract("has_bled", "hypertension", mapping=bad)
