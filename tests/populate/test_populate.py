"""Population from the record, one binding kind at a time, on small hand-built records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medagent.demo.build import INDEX_TIME, PatientBuilder
from medagent.errors import MedAgentError
from medagent.populate import (
    Override,
    PopulateError,
    Reason,
    parse_duration,
    populate,
    save_override,
)
from medagent.record import RecordStore

AT = INDEX_TIME.replace(tzinfo=None)


def _store(tmp: Path, builder: PatientBuilder) -> RecordStore:
    store = RecordStore.open(f"sqlite:///{tmp / 'record.db'}")
    store.put(builder.resources, source="test")
    return store


@pytest.fixture
def person() -> PatientBuilder:
    return PatientBuilder(
        "t", given="Test", family="Person", gender="female", birth="1950-01-10", scenario="test"
    )


@pytest.fixture
def store_of(tmp_path: Path) -> Iterator[object]:
    opened: list[RecordStore] = []

    def make(builder: PatientBuilder) -> RecordStore:
        store = _store(tmp_path, builder)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_latest_within_the_default_window(person: PatientBuilder, store_of) -> None:
    person.vital("rr", 18, 20)
    person.vital("rr", 26, 1)
    person.vital("rr", 30, 30)  # older than the 24 h window for vital signs
    pop = populate("news2", person.pid, store=store_of(person), at=AT)
    filled = pop.filled["respiratory_rate"]
    assert filled.value == 26
    assert filled.provenance.resource_type == "Observation"
    assert filled.provenance.effective == AT - timedelta(hours=1)
    assert "latest of 2 values within PT24H" in filled.provenance.rule
    assert "(default for vital signs)" in filled.provenance.rule  # the default is named


def test_worst_in_window_by_the_scales_own_points(person: PatientBuilder, store_of) -> None:
    # APACHE II heart rate: 80 scores 0, 150 scores 3, 100 scores 0; the worst is 150 although
    # it is neither the latest nor (by itself) what `max` would mean for a low value.
    for hours, rate in ((20, 80), (10, 150), (1, 100)):
        person.vital("hr", rate, hours)
    pop = populate("apache_ii", person.pid, store=store_of(person), at=AT)
    filled = pop.filled["heart_rate"]
    assert filled.value == 150
    assert filled.provenance.rule.startswith("worst by points (3) of 3 values in PT24H")


def test_worst_picks_a_low_value_when_it_scores_more(person: PatientBuilder, store_of) -> None:
    for hours, rate in ((20, 45), (10, 115), (1, 90)):  # 45 scores 3 in APACHE II; 115 scores 2
        person.vital("hr", rate, hours)
    pop = populate("apache_ii", person.pid, store=store_of(person), at=AT)
    assert pop.filled["heart_rate"].value == 45


def test_as_of_a_past_time_sees_only_what_was_known_then(person: PatientBuilder, store_of) -> None:
    person.vital("rr", 16, 30)
    person.vital("rr", 28, 1)
    store = store_of(person)
    past = AT - timedelta(hours=20)
    pop = populate("news2", person.pid, store=store, at=past)
    assert pop.filled["respiratory_rate"].value == 16
    assert pop.at == past
    assert (
        populate("news2", person.pid, store=store, at=AT - timedelta(hours=60))
        .unfilled["respiratory_rate"]
        .reason
        is Reason.NO_DATA_IN_WINDOW
    )


def test_as_of_accepts_an_aware_time(person: PatientBuilder, store_of) -> None:
    person.vital("rr", 16, 2)
    aware = INDEX_TIME.astimezone(ZoneInfo("Asia/Shanghai"))
    pop = populate("news2", person.pid, store=store_of(person), at=aware)
    assert pop.at == AT
    assert pop.filled["respiratory_rate"].value == 16


def test_entered_in_error_and_preliminary_observations_never_count(
    person: PatientBuilder, store_of
) -> None:
    person.bp(112, 70, 3)
    person.vital("sbp", 58, 1, status="entered-in-error")
    person.vital("sbp", 61, 0.5, status="preliminary")
    pop = populate("news2", person.pid, store=store_of(person), at=AT)
    assert pop.filled["sbp"].value == 112  # a component of the blood pressure panel


def test_only_entered_in_error_gives_no_value(person: PatientBuilder, store_of) -> None:
    person.vital("sbp", 58, 1, status="entered-in-error")
    pop = populate("news2", person.pid, store=store_of(person), at=AT)
    assert pop.unfilled["sbp"].reason is Reason.NO_DATA_IN_WINDOW


def test_active_condition_fills_true_with_its_provenance(person: PatientBuilder, store_of) -> None:
    cond = person.condition("Essential hypertension", icd10="I10", onset_days=400)
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    filled = pop.filled["hypertension"]
    assert filled.value is True
    assert filled.provenance.reference == f"Condition/{cond['id']}"
    assert "coded I10" in filled.provenance.rule


def test_resolved_condition_is_ignored(person: PatientBuilder, store_of) -> None:
    person.condition(
        "Essential hypertension", icd10="I10", onset_days=900, status="resolved", abated_days=100
    )
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    unfilled = pop.unfilled["hypertension"]
    assert unfilled.reason is Reason.NO_RECORD_OF_IT
    assert "absence is not evidence of absence" in unfilled.detail
    assert "resolved" in unfilled.detail
    # ...but it was active before it resolved.
    earlier = populate(
        "cha2ds2_vasc", person.pid, store=store_of(person), at=AT - timedelta(days=200)
    )
    assert earlier.filled["hypertension"].value is True


def test_entered_in_error_condition_is_ignored(person: PatientBuilder, store_of) -> None:
    person.condition(
        "Diabetes", icd10="E11.9", onset_days=30, status="active", verification="entered-in-error"
    )
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    assert pop.unfilled["diabetes"].reason is Reason.NO_RECORD_OF_IT


def test_refuted_condition_answers_false(person: PatientBuilder, store_of) -> None:
    person.condition(
        "Heart failure", icd10="I50.9", onset_days=30, status="inactive", verification="refuted"
    )
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    assert pop.filled["chf"].value is False
    assert "refuted" in pop.filled["chf"].provenance.rule


def test_absence_is_not_evidence_and_says_who_can_answer(person: PatientBuilder, store_of) -> None:
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    unfilled = pop.unfilled["stroke"]
    assert unfilled.reason is Reason.NO_RECORD_OF_IT
    assert unfilled.detail == "no record of it; absence is not evidence of absence"
    assert unfilled.answerable_by == ("clinician",)
    assert unfilled.record_bound
    result = pop.evaluate().result
    assert not result.complete  # nothing was assumed absent


def test_unbound_and_clinician_only_inputs_say_why(person: PatientBuilder, store_of) -> None:
    pop = populate("news2", person.pid, store=store_of(person), at=AT)
    assert pop.unfilled["consciousness"].reason is Reason.NEEDS_JUDGEMENT
    assert pop.unfilled["supplemental_oxygen"].reason in (Reason.NOT_BOUND, Reason.NO_RECORD_OF_IT)


@pytest.mark.parametrize(
    ("scale", "input_id", "value", "unit", "expected"),
    [
        # creatinine reported in µmol/L, scale in mg/dL (molar mass 113.12 g/mol)
        ("sofa", "creatinine", 168, "umol/L", 1.900416),
        # bilirubin reported in mg/dL, ALBI takes µmol/L
        ("albi_grade", "bilirubin", 3.4, "mg/dL", 58.15346),
        # haemoglobin in g/L, Glasgow-Blatchford in g/dL (no analyte needed)
        ("glasgow_blatchford", "hemoglobin", 89, "g/L", 8.9),
        # BUN (urea nitrogen) in mg/dL, Glasgow-Blatchford urea in mmol/L
        ("glasgow_blatchford", "urea", 46, "mg/dL", 16.42036),
    ],
)
def test_units_are_converted_through_the_registry(
    person: PatientBuilder,
    store_of,
    scale: str,
    input_id: str,
    value: float,
    unit: str,
    expected: float,
) -> None:
    name = {"creatinine": "creatinine", "bilirubin": "bilirubin", "hemoglobin": "hb", "urea": "bun"}
    person.lab(name[input_id], value, unit, 2)
    pop = populate(scale, person.pid, store=store_of(person), at=AT)
    filled = pop.filled[input_id]
    assert filled.value == pytest.approx(expected, rel=1e-5)
    assert filled.provenance.original_value == value
    assert filled.provenance.original_unit == unit
    assert filled.provenance.conversion is not None and unit in filled.provenance.conversion


def test_demographics_age_at_the_time_and_sex(person: PatientBuilder, store_of) -> None:
    store = store_of(person)
    pop = populate("cha2ds2_vasc", person.pid, store=store, at=datetime(2025, 1, 9))
    assert pop.filled["age"].value == 74  # the birthday (10 January) is the next day
    assert pop.filled["sex"].value == "female"
    assert pop.filled["age"].provenance.reference == f"Patient/{person.pid}"


def test_medication_by_atc_code_fills_true(person: PatientBuilder, store_of) -> None:
    person.medication("aspirin 81 MG Oral Tablet", rxnorm="243670", atc="B01AC06", started_days=9)
    pop = populate("timi_ua_nstemi", person.pid, store=store_of(person), at=AT)
    assert pop.filled["aspirin_7d"].value is True
    assert pop.filled["aspirin_7d"].provenance.resource_type == "MedicationRequest"


def test_stopped_medication_without_end_is_not_active(person: PatientBuilder, store_of) -> None:
    person.medication(
        "aspirin 81 MG Oral Tablet",
        rxnorm="243670",
        atc="B01AC06",
        started_days=90,
        status="stopped",
    )
    pop = populate("timi_ua_nstemi", person.pid, store=store_of(person), at=AT)
    assert "aspirin_7d" in pop.unfilled


def test_override_wins_and_survives_reopening_the_store(
    tmp_path: Path, person: PatientBuilder
) -> None:
    person.vital("rr", 26, 1)
    url = f"sqlite:///{tmp_path / 'record.db'}"
    with RecordStore.open(url) as store:
        store.put(person.resources)
        saved = save_override(
            store,
            scale_id="news2",
            patient_id=person.pid,
            input_id="respiratory_rate",
            value="22",
            user="dr.chen",
            at=AT - timedelta(minutes=5),
        )
        assert saved.user == "dr.chen"
    with RecordStore.open(url) as store:  # a new process would see the same
        pop = populate("news2", person.pid, store=store, at=AT)
        filled = pop.filled["respiratory_rate"]
        assert filled.value == 22
        assert filled.provenance.source == "user"
        assert filled.provenance.rule == "entered by user dr.chen at 2026-03-02T08:55"
        assert any("overridden by user dr.chen" in n for n in pop.notes)
        # an override entered later does not rewrite what was known earlier
        before = populate("news2", person.pid, store=store, at=AT - timedelta(minutes=30))
        assert before.filled["respiratory_rate"].value == 26


def test_override_fills_what_the_record_cannot(person: PatientBuilder, store_of) -> None:
    override = Override("consciousness", "new_confusion", "nurse.lee", AT)
    pop = populate("news2", person.pid, store=store_of(person), at=AT, overrides=[override])
    assert pop.filled["consciousness"].value == "new_confusion"
    assert "consciousness" not in pop.unfilled


def test_override_is_checked_against_the_scale(person: PatientBuilder, store_of) -> None:
    store = store_of(person)
    with pytest.raises(PopulateError, match="respiratory_rate"):
        save_override(
            store,
            scale_id="news2",
            patient_id=person.pid,
            input_id="respiratory_rate",
            value="500",
            user="dr.chen",
        )
    with pytest.raises(PopulateError, match="not an input"):
        save_override(
            store, scale_id="news2", patient_id=person.pid, input_id="nope", value="1", user="x"
        )
    assert issubclass(PopulateError, MedAgentError)


def test_evaluate_returns_the_result_with_provenance(person: PatientBuilder, store_of) -> None:
    person.condition("Hypertension", icd10="I10", onset_days=10)
    overrides = [
        Override(i, "false", "dr.chen", AT)
        for i in ("chf", "diabetes", "stroke", "tia", "thromboembolism", "vascular_disease")
    ]
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT, overrides=overrides)
    evaluation = pop.evaluate()
    assert evaluation.result.complete
    assert evaluation.result.value == 4  # age 76 (2) + female (1) + hypertension (1)
    assert evaluation.provenance["hypertension"].resource_type == "Condition"
    assert evaluation.provenance["chf"].source == "user"
    assert evaluation.to_dict()["provenance"]["age"]["resource_type"] == "Patient"


def test_out_of_range_record_values_are_not_used(person: PatientBuilder, store_of) -> None:
    person.vital("rr", 160, 1)  # outside 0–100: a charting error, not a respiratory rate
    pop = populate("news2", person.pid, store=store_of(person), at=AT)
    assert pop.unfilled["respiratory_rate"].reason is Reason.UNUSABLE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT24H", timedelta(hours=24)),
        ("P7D", timedelta(days=7)),
        ("P1Y", timedelta(days=365)),  # a year counts as 365 days
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT30M", timedelta(minutes=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "P", "PT", "24H", "P1H"])
def test_parse_duration_rejects_malformed(bad: str) -> None:
    with pytest.raises(PopulateError):
        parse_duration(bad)


def test_now_is_the_default_time(person: PatientBuilder, store_of) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    pop = populate("news2", person.pid, store=store_of(person))
    assert before <= pop.at <= datetime.now(UTC).replace(tzinfo=None)


def test_overrides_have_their_own_alembic_version_table(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'v.db'}"
    with RecordStore.open(url) as store:
        save_override(
            store, scale_id="news2", patient_id="p", input_id="spo2", value="95", user="u"
        )
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            version = conn.execute(
                sa.text("select version_num from populate_alembic_version")
            ).scalar_one()
    assert {"populate_override", "populate_alembic_version", "record_alembic_version"} <= tables
    assert version == "populate_0002_at_rest"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mg_dl=st.floats(min_value=0.2, max_value=20, allow_nan=False))
def test_unit_invariance_of_a_populated_value(tmp_path: Path, mg_dl: float) -> None:
    # The same creatinine reported in mg/dL or in µmol/L populates the same value.
    from medagent.units import convert

    values = []
    for n, (value, unit) in enumerate(
        [(mg_dl, "mg/dL"), (convert(mg_dl, "mg/dL", "umol/L", "creatinine"), "umol/L")]
    ):
        builder = PatientBuilder(
            f"u{n}", given="U", family="Nit", gender="male", birth="1960-01-01", scenario="t"
        )
        builder.lab("creatinine", value, unit, 1)
        with RecordStore.open("sqlite://") as store:
            store.put(builder.resources)
            values.append(populate("sofa", builder.pid, store=store, at=AT).filled["creatinine"])
    assert values[0].value == pytest.approx(values[1].value, rel=1e-9)


def test_a_condition_coded_in_two_systems_counts_once(person: PatientBuilder, store_of) -> None:
    # Regression: found by its ICD-10 and its SNOMED code, it was counted as two conditions.
    person.condition("Hypertension", icd10="I10", snomed="38341003", onset_days=10)
    pop = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    assert pop.filled["hypertension"].provenance.candidates == 1
    assert "(of" not in pop.filled["hypertension"].provenance.rule


def test_silence_fills_false_only_where_the_input_declares_the_record_complete(
    person: PatientBuilder, store_of
) -> None:
    from medagent.scales import get_scale
    from medagent.scales.model import InputDef

    class CompleteProblemList(InputDef):
        record_absence: bool = True

    scale = get_scale("cha2ds2_vasc")
    inputs = tuple(
        CompleteProblemList(**i.model_dump()) if i.id == "diabetes" else i for i in scale.inputs
    )
    declared = scale.model_copy(update={"inputs": inputs})
    pop = populate(declared, person.pid, store=store_of(person), at=AT)
    assert pop.filled["diabetes"].value is False
    assert "complete" in pop.filled["diabetes"].provenance.rule
    assert pop.unfilled["hypertension"].reason is Reason.NO_RECORD_OF_IT  # not declared


def test_hypertension_diagnosis_does_not_answer_has_bled_uncontrolled_pressure(
    person: PatientBuilder, store_of
) -> None:
    # Regression: HAS-BLED's H is uncontrolled hypertension (SBP > 160 mm Hg); an I10 code
    # used to fill it with True for every treated hypertensive patient.
    person.condition("Essential hypertension", icd10="I10", onset_days=400)
    pop = populate("has_bled", person.pid, store=store_of(person), at=AT)
    assert "hypertension" not in pop.filled
    assert "hypertension" in pop.unfilled
    chads = populate("cha2ds2_vasc", person.pid, store=store_of(person), at=AT)
    assert chads.filled["hypertension"].value is True
