"""The demo patients load, and each fills the scales it was built for mostly from the record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from medagent.demo import DemoPatient, demo_patients, load_demo
from medagent.demo.build import INDEX_TIME, build_all
from medagent.errors import InputError
from medagent.populate import populate, record_bound
from medagent.record import RecordStore
from medagent.scales import all_scales, get_scale

AT = INDEX_TIME.replace(tzinfo=None)


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RecordStore, list[DemoPatient]]]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    store = RecordStore.open(f"sqlite:///{path}")
    loaded = load_demo(store, now=INDEX_TIME)
    yield store, loaded
    store.close()


# (patient key, scale, inputs that must be filled from the record, expected value or None)
CASES = [
    (
        "sepsis-ward",
        "news2",
        {"respiratory_rate", "spo2", "supplemental_oxygen", "sbp", "pulse", "temperature"},
        None,
    ),
    ("sepsis-ward", "curb65", {"confusion", "urea", "respiratory_rate", "sbp", "dbp", "age"}, 4),
    ("sepsis-ward", "qsofa", {"respiratory_rate", "sbp"}, None),
    (
        "sepsis-ward",
        "sofa",
        {"pao2", "fio2", "platelets", "bilirubin", "sbp", "dbp", "gcs", "creatinine"},
        None,
    ),
    (
        "af-anticoagulation",
        "cha2ds2_vasc",
        {"age", "sex", "chf", "hypertension", "diabetes", "stroke", "tia", "vascular_disease"},
        None,
    ),
    ("af-anticoagulation", "has_bled", {"stroke", "age"}, None),
    ("copd-exacerbation", "news2", {"respiratory_rate", "spo2", "supplemental_oxygen"}, None),
    (
        "chest-pain",
        "heart_score",
        {"age", "hypertension", "diabetes", "smoking", "atherosclerotic_disease"},
        None,
    ),
    ("chest-pain", "timi_ua_nstemi", {"age", "known_cad", "aspirin_7d"}, None),
    ("chest-pain", "grace_in_hospital", {"age", "heart_rate", "systolic_bp", "creatinine"}, None),
    (
        "upper-gi-bleed",
        "glasgow_blatchford",
        {"urea", "sex", "hemoglobin", "sbp", "heart_rate", "melena", "syncope", "cardiac_failure"},
        None,
    ),
    ("upper-gi-bleed", "aims65", {"albumin", "inr", "sbp", "age"}, None),
    ("upper-gi-bleed", "rockall", {"age", "sbp", "heart_rate"}, None),
    ("decompensated-cirrhosis", "child_pugh", {"bilirubin", "albumin", "inr"}, None),
    ("decompensated-cirrhosis", "meld_na", {"creatinine", "bilirubin", "inr", "sodium"}, None),
    (
        "decompensated-cirrhosis",
        "meld_3",
        {"sex", "creatinine", "bilirubin", "inr", "sodium"},
        None,
    ),
    ("decompensated-cirrhosis", "fib4", {"age", "ast", "alt", "platelets"}, 11.87),
    ("postop-vte", "caprini_2005", {"age", "sex", "bmi", "malignancy", "previous_dvt"}, None),
    ("postop-vte", "padua", {"age", "bmi", "previous_vte", "active_cancer"}, None),
]


@pytest.mark.parametrize(
    ("key", "scale", "must_fill", "value"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_demo_patient_fills_its_scale(
    demo: tuple[RecordStore, list[DemoPatient]],
    key: str,
    scale: str,
    must_fill: set[str],
    value: float | None,
) -> None:
    store, _ = demo
    pop = populate(scale, f"demo-{key}", store=store, at=AT)
    assert must_fill <= set(pop.filled), sorted(must_fill - set(pop.filled))
    bound = {i.id for i in pop.scale.inputs if record_bound(i)}
    assert must_fill <= bound | {o for o in pop.filled if pop.filled[o].provenance.source == "user"}
    result = pop.evaluate().result
    if value is not None:
        assert result.value == pytest.approx(value, abs=0.01)
    for unfilled in pop.unfilled.values():
        assert unfilled.answerable_by  # who can answer is always said
        assert unfilled.detail


def test_every_demo_scale_tag_names_a_scale() -> None:
    for patient in demo_patients():
        for scale in patient.scales:
            get_scale(scale)


def test_shipped_bundles_match_the_builder() -> None:
    shipped = {p.file for p in demo_patients() if p.synthetic_source == "hand-built"}
    assert shipped == set(build_all())


def test_load_demo_moves_hand_built_patients_to_now(tmp_path: Path) -> None:
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    with RecordStore.open(f"sqlite:///{tmp_path / 'd.db'}") as store:
        loaded = load_demo(store, now=now)
        again = load_demo(store, now=now)  # loading twice replaces, never duplicates
        sepsis = next(p for p in loaded if p.patient_id == "demo-sepsis-ward")
        assert sepsis.index_time == now.replace(tzinfo=None)
        assert len(loaded) == len(again) >= 10
        shifted = populate("news2", "demo-sepsis-ward", store=store, at=now)
        assert shifted.filled["respiratory_rate"].value == 26
        counts = store.counts("demo-sepsis-ward")
        assert counts["Observation"] == len(
            [
                r
                for r in build_all()["sepsis-ward.json"]["entry"]
                if r["resource"]["resourceType"] == "Observation"
            ]
        )


def test_load_demo_by_default_makes_the_scenarios_current(tmp_path: Path) -> None:
    with RecordStore.open(f"sqlite:///{tmp_path / 'd.db'}") as store:
        load_demo(store)
        pop = populate("news2", "demo-sepsis-ward", store=store)  # default time: now
        assert pop.filled["respiratory_rate"].value == 26


def test_synthea_demo_patients_populate_every_scale(
    demo: tuple[RecordStore, list[DemoPatient]],
) -> None:
    store, loaded = demo
    synthea = [p for p in loaded if p.synthetic_source == "synthea"]
    assert len(synthea) >= 3
    filled = 0
    for patient in synthea:
        last = _last_observation(store, patient.patient_id)
        for scale in all_scales():
            pop = populate(scale, patient.patient_id, store=store, at=last)
            filled += len(pop.filled)
            try:
                pop.evaluate()
            except InputError:
                # a formula that refuses an empty call (opioid conversion needs one opioid)
                assert not pop.filled
    assert filled > 50


def _last_observation(store: RecordStore, patient_id: str) -> datetime:
    import sqlalchemy as sa

    from medagent.record.store import R

    with store.engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(R.time_start)).where(
                R.patient_id == patient_id, R.resource_type == "Observation"
            )
        ).scalar_one()
    assert isinstance(last, datetime)
    return last


def test_populate_all_reads_once_and_agrees_with_populate(
    demo: tuple[RecordStore, list[DemoPatient]],
) -> None:
    from medagent.populate import populate_all

    store, _ = demo
    scales = list(all_scales())
    together = populate_all(scales, "demo-sepsis-ward", store=store, at=AT)
    for scale, pop in zip(scales, together, strict=True):
        alone = populate(scale, "demo-sepsis-ward", store=store, at=AT)
        assert pop.scale is scale
        assert pop.filled == alone.filled, scale.id
        assert pop.unfilled == alone.unfilled, scale.id
