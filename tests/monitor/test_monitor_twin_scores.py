"""The digital twin and early-warning scores: incremental updates, rebuild after a restart,
NEWS2 escalation rules, SpO2 scale 2 for hypercapnic respiratory failure, SOFA on labs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from monitor_helpers import T0, Clock, observation, vitals

from medagent.monitor.config import parse_config
from medagent.monitor.core import Monitor
from medagent.monitor.errors import MonitorConfigError
from medagent.record.store import RecordStore
from medagent.scales import evaluate, get_scale

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def news2(monitor: Monitor, pid: str = "p1") -> tuple[object, str | None]:
    state = monitor.twin(pid).scores["news2"]
    return state.result.value, state.escalation


@pytest.mark.parametrize(
    ("kwargs", "value", "rule"),
    [
        ({}, 0, None),  # every parameter normal
        ({"level": "C"}, 3, "news2_single_3"),  # one parameter scores 3 → urgent ward review
        ({"hr": 115, "rr": 22, "temp": 38.5}, 5, "news2_urgent"),  # total 5 → urgent response
        ({"hr": 135, "rr": 26, "spo2": 95}, 7, "news2_emergency"),  # 7 → emergency response
        ({"hr": 95, "o2": 2}, 3, None),  # oxygen 2 + pulse 1, no single 3
    ],
)
def test_news2_escalation_rules(monitor: Monitor, kwargs: dict[str, float], value: int,
                                rule: str | None) -> None:  # fmt: skip
    monitor.ingest_fhir(vitals("v", T0, **kwargs))  # type: ignore[arg-type]
    assert news2(monitor) == (value, rule)


def test_scores_match_the_engine(monitor: Monitor) -> None:
    monitor.ingest_fhir(vitals("v", T0, hr=115, rr=22, temp=38.5))
    expected = evaluate(
        get_scale("news2"),
        {"respiratory_rate": 22, "spo2_scale": "scale_1", "spo2": 97, "supplemental_oxygen": False,
         "sbp": 125, "pulse": 115, "consciousness": "alert", "temperature": 38.5},
    )  # fmt: skip
    assert monitor.twin("p1").scores["news2"].result.value == expected.value
    assert monitor.twin("p1").scores["qsofa"].result.value == 1  # RR 22 or more
    assert monitor.twin("p1").scores["mews"].result.complete


def test_incomplete_news2_escalates_only_on_what_is_certain(monitor: Monitor) -> None:
    # No consciousness, no oxygen: the total is a range; the lowest possible total decides.
    monitor.ingest_fhir(observation("a", "heart_rate", 135, T0))
    monitor.ingest_fhir(observation("b", "respiratory_rate", 26, T0))
    result = monitor.twin("p1").scores["news2"].result
    assert not result.complete and result.minimum == 6
    assert news2(monitor)[1] == "news2_urgent"


def test_hypercapnic_condition_selects_spo2_scale_2(store: RecordStore, clock: Clock) -> None:
    store.put(
        [
            {"resourceType": "Patient", "id": "copd", "gender": "male", "birthDate": "1950-01-01"},
            {
                "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/copd"},
                "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
                "code": {"coding": [{"system": ICD10CM, "code": "J96.12"}]},
                "onsetDateTime": "2020-01-01",
            },
        ]
    )  # fmt: skip
    monitor = Monitor(store, clock=clock)
    monitor.ingest_fhir(vitals("v", T0, patient="copd", spo2=89, o2=2))
    twin = monitor.twin("copd")
    assert twin.hypercapnic
    # scale 2: 89 % on oxygen scores 0 for SpO2, 2 for oxygen
    assert twin.scores["news2"].result.value == 2
    monitor.ingest_fhir(vitals("w", T0, patient="p2", spo2=89, o2=2))
    assert monitor.twin("p2").scores["news2"].result.value == 5  # scale 1: 3 + 2


def test_sofa_waits_for_labs(monitor: Monitor) -> None:
    monitor.ingest_fhir(vitals("v", T0))
    assert "sofa" not in monitor.twin("p1").scores
    monitor.ingest_fhir(observation("pl", "platelets", 45, T0 + timedelta(minutes=1)))
    sofa = monitor.twin("p1").scores["sofa"].result
    assert not sofa.complete and sofa.minimum is not None and sofa.minimum >= 3


def test_twin_updates_incrementally_and_keeps_late_values_in_history(monitor: Monitor) -> None:
    monitor.ingest_fhir(observation("a", "heart_rate", 80, T0))
    twin = monitor.twin("p1")
    version = twin.version
    monitor.ingest_fhir(observation("b", "heart_rate", 90, T0 + timedelta(minutes=10)))
    monitor.ingest_fhir(observation("c", "heart_rate", 85, T0 + timedelta(minutes=5)))  # late
    assert monitor.twin("p1") is twin and twin.version == version + 2
    hr = twin.signals["heart_rate"]
    assert hr.value == 90 and hr.values == [80, 85, 90]


def test_stale_values_do_not_feed_scores(monitor: Monitor) -> None:
    monitor.ingest_fhir(vitals("v", T0, level="C"))
    monitor.ingest_fhir(observation("late", "heart_rate", 80, T0 + timedelta(hours=13)))
    result = monitor.twin("p1").scores["news2"].result
    assert not result.complete  # the other vitals are over 12 h old now


def test_rebuild_after_restart_is_exact(store: RecordStore, clock: Clock, db_path: str) -> None:
    monitor = Monitor(store, clock=clock)
    for i in range(12):
        t = T0 + timedelta(minutes=15 * i)
        monitor.ingest_fhir(vitals(f"v{i}", t, hr=80 + 5 * i, rr=16 + i // 2, patient="p1"))
        monitor.ingest_fhir(vitals(f"w{i}", t, patient="p2", level="A" if i % 3 else "V"))
        clock.advance(minutes=15)
    alert = monitor.alerts(patient_id="p1")[0]
    monitor.acknowledge(alert.id, user="nurse")
    before = {pid: monitor.twin(pid).snapshot() for pid in ("p1", "p2")}
    restarted = Monitor(RecordStore.open(db_path), clock=clock)
    restarted.rebuild()
    after = {pid: restarted.twin(pid).snapshot() for pid in ("p1", "p2")}
    assert json.dumps(after, sort_keys=True, default=str) == json.dumps(
        before, sort_keys=True, default=str
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("signals: []\nextra: 1", "extra"),  # unknown key
        ("x", "valid"),  # not a mapping
    ],
)
def test_config_rejects_bad_files(text: str, problem: str) -> None:
    with pytest.raises(MonitorConfigError, match=problem):
        parse_config(text)


# Regression: ru_maxrss survives exec, so a small child process started by a large parent
# reported the parent's peak; the peak is now the process's own (VmHWM on Linux).
def test_peak_memory_of_a_small_child_is_its_own() -> None:
    import subprocess
    import sys

    from medagent.monitor.batch import peak_rss_mb

    ballast = bytearray(300 * 1024 * 1024)  # the parent's peak goes above 300 MB
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert peak_rss_mb() > 300
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from medagent.monitor.batch import peak_rss_mb; print(peak_rss_mb())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    del ballast
    assert float(child.stdout) < 250
