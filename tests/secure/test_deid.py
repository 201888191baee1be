"""Tests of de-identification, including a leak measurement on the Synthea notes."""

from __future__ import annotations

import base64
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medagent.secure.deid import (
    Deidentifier,
    LeakReport,
    PatientIdentifiers,
    ReidMap,
    leaked,
    measure_leaks,
    reidentify,
)

SECRET = b"site-secret-for-tests-0123456789"
DATA = Path(
    os.environ.get("MEDAGENT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
SYNTHEA = DATA / "synthea-40.tar.xz"

PATIENT = PatientIdentifiers.from_fhir_patient(
    {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"value": "6594510"}, {"value": "999-48-4841"}, {"value": "S559151870"}],
        "name": [{"family": "Bruen", "given": ["Alica"], "prefix": ["Ms."]}],
        "telecom": [
            {"system": "phone", "value": "555-739-6110"},
            {"system": "email", "value": "alica.bruen467@example.com"},
        ],
        "address": [{"line": ["7693 Marks Ferry"], "city": "Boston", "postalCode": "02118"}],
        "birthDate": "1931-01-25",
    }
)


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Alica Bruen was seen.", ["Alica", "Bruen"]),  # known full name
        ("ALICA reports pain.", ["ALICA"]),  # known name, other case
        ("MRN: 6594510.", ["6594510"]),  # known identifier
        ("SSN 123-45-6789 on file", ["123-45-6789"]),  # SSN shape, not in the record
        ("Call (555) 739-6110 today", ["739-6110"]),  # known phone, other format
        ("Call 617.555.0199 today", ["617.555.0199"]),  # phone shape
        ("Mail jo.doe@example.org", ["jo.doe@example.org"]),  # e-mail shape
        ("Lives at 7693 Marks Ferry, Boston 02118", ["Marks Ferry", "Boston", "02118"]),
        ("Moved to 12 Elm Street", ["12 Elm Street"]),  # street address shape
        ("Referred by Dr. Kessler", ["Kessler"]),  # titled name
        ("Account # 77812345 closed", ["77812345"]),  # labelled id
        ("See https://portal.example.org/p/123", ["portal.example.org"]),  # URL
        ("Born 1931-01-25.", ["1931-01-25"]),  # birth date is shifted
        ("Seen 3/15/19 and 12/01/05.", ["3/15/19", "12/01/05"]),  # regression: 2-digit years
    ],
)
def test_identifiers_are_removed(text: str, gone: list[str]) -> None:
    out = Deidentifier(SECRET).deidentify(text, PATIENT).text
    assert leaked(out, gone) == [], out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a 93 year-old man", "a 90+ year-old man"),
        ("a 93-year-old man", "a 90+-year-old man"),
        ("aged 101", "aged 90+"),
        ("Age: 95", "Age: 90+"),
        ("97 y/o female", "90+ y/o female"),
        ("a 89 year-old man", "a 89 year-old man"),  # 89 is allowed
        ("Glucose 5.4 mg/dL glucose", "Glucose 5.4 mg/dL glucose"),  # a unit is not an id label
    ],
)
def test_ages_over_89_are_capped(text: str, expected: str) -> None:
    out = Deidentifier(SECRET).deidentify(text, PatientIdentifiers(patient_id="x")).text
    assert out == expected


def test_dates_shift_consistently_per_patient_and_keep_format() -> None:
    deid = Deidentifier(SECRET)
    shift = deid.shift_for("p-1")
    assert 1 <= shift <= 365
    assert deid.shift_for("p-1") == shift
    assert Deidentifier(b"another-site-secret-0123").shift_for("p-1") != shift
    text = "Admitted 2020-03-10, discharged 03/15/2020; follow-up March 25, 2020 and 5 April 2020."
    out = deid.deidentify(text, PATIENT).text
    assert "2020-03-10" not in out and "03/15/2020" not in out and "March 25" not in out
    from datetime import date, timedelta

    admitted = date(2020, 3, 10) - timedelta(days=shift)
    discharged = date(2020, 3, 15) - timedelta(days=shift)
    assert admitted.isoformat() in out
    assert f"{discharged.month:02d}/{discharged.day:02d}/{discharged.year}" in out
    # the interval between the two dates is kept
    assert (discharged - admitted).days == 5


def test_reidentify_restores_names_ids_and_dates() -> None:
    deid = Deidentifier(SECRET)
    text = "Alica Bruen (MRN 6594510) seen 2020-03-10 by Dr. Kessler; phone 555-739-6110."
    result = deid.deidentify(text, PATIENT)
    assert "Alica" not in result.text
    answer = f"Summary for {result.text}"
    assert reidentify(answer, result.reid) == f"Summary for {text}"
    again = ReidMap.from_json(result.reid.to_json())
    assert reidentify(result.text, again) == text


def test_tokens_are_consistent_across_notes() -> None:
    deid = Deidentifier(SECRET)
    reid = deid.new_map(PATIENT)
    first = deid.deidentify("Alica came in.", PATIENT, reid).text
    second = deid.deidentify("Later Alica called.", PATIENT, reid).text
    token = first.split()[0]
    assert token.startswith("[NAME-") and token in second


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Deidentifier(b"short")


def _bundles() -> Iterator[dict[str, Any]]:
    with tarfile.open(SYNTHEA, "r:xz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".json"):
                handle = tar.extractfile(member)
                assert handle is not None
                yield json.load(handle)


def _patient_and_notes(bundle: dict[str, Any]) -> tuple[PatientIdentifiers, list[tuple[str, str]]]:
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    notes = [
        (
            r["date"][:10],
            base64.b64decode(r["content"][0]["attachment"]["data"]).decode("utf-8"),
        )
        for r in resources
        if r["resourceType"] == "DocumentReference"
    ]
    return PatientIdentifiers.from_fhir_patient(patient), notes


def _referral_letter(patient: PatientIdentifiers) -> str:
    """A harder note than Synthea writes: every identifier of the record, in several formats."""
    name = max(patient.names, key=len)
    phone = next((t for t in patient.telecoms if "@" not in t), "555-000-0000")
    digits = "".join(c for c in phone if c.isdigit())
    return (
        f"Referral for {name} (MRN {patient.identifiers[1]}, SSN {patient.identifiers[2]}), "
        f"DOB {patient.dates[0]}.\nContact: ({digits[:3]}) {digits[3:6]}-{digits[6:]} / "
        f"{', '.join(t for t in patient.telecoms if '@' in t)}.\n"
        f"Address: {', '.join(patient.addresses)}.\n"
        f"{name.split()[0].upper()} is a 94 year-old with dyspnoea. Driver's license "
        f"{patient.identifiers[-1]}."
    )


@pytest.fixture(scope="module")
def synthea() -> list[tuple[PatientIdentifiers, list[tuple[str, str]]]]:
    if not SYNTHEA.exists():
        pytest.skip(f"Synthea data not found at {SYNTHEA} (set MEDAGENT_SHARED_DATA)")
    return [_patient_and_notes(b) for b in _bundles()]


def test_synthea_notes_leak_no_known_identifier(
    synthea: list[tuple[PatientIdentifiers, list[tuple[str, str]]]],
) -> None:
    report = measure_leaks(Deidentifier(SECRET), synthea)
    print("\nsynthea notes:", json.dumps(report.as_dict()))
    assert report.patients == 40 and report.notes > 6000
    assert report.identifiers_before > 10_000  # names and dates are in almost every note
    assert report.identifiers_after == 0, report.examples


def test_synthea_referral_letters_leak_no_known_identifier(
    synthea: list[tuple[PatientIdentifiers, list[tuple[str, str]]]],
) -> None:
    letters = [
        (patient, [("2020-01-01", _referral_letter(patient))])
        for patient, _ in synthea
        if len(patient.identifiers) >= 3
    ]
    report: LeakReport = measure_leaks(Deidentifier(SECRET), letters)
    print("\nreferral letters:", json.dumps(report.as_dict()))
    assert report.notes >= 30
    assert report.identifiers_after == 0, report.examples
    out = Deidentifier(SECRET).deidentify(letters[0][1][0][1], letters[0][0]).text
    assert "94 year-old" not in out and "90+ year-old" in out


_PIECES = [
    *PATIENT.names,
    *PATIENT.identifiers,
    *PATIENT.telecoms,
    *PATIENT.addresses,
    "1931-01-25",
    "03/15/2020",
    "March 5, 2019",
    "BP 120/80",
    "glucose 5.4 mg/dL",
    "seen today",
    "no distress",
    ",",
    ".",
    "\n",
]


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=25), noise=st.text(max_size=40))
def test_property_no_known_value_leaks_and_round_trip(pieces: list[str], noise: str) -> None:
    text = " ".join(pieces)
    deid = Deidentifier(SECRET)
    result = deid.deidentify(text, PATIENT)
    known = [*PATIENT.names, *PATIENT.identifiers, *PATIENT.telecoms, *PATIENT.addresses]
    assert leaked(result.text, known) == []
    assert reidentify(result.text, result.reid) == text
    deid.deidentify(noise + text, PATIENT)  # arbitrary text never crashes


@pytest.mark.parametrize(
    "text",
    [
        "Na 134 mmol/L, K 4.5, Cr 1.2 mg/dL",  # ordinary labs
        "BP 120/80 mmHg, HR 110 bpm, RR 24, SpO2 94% on 2 L",  # vitals
        "a 89 year-old man, GCS 15, pH 7.32",  # an age up to 89 is kept
        "platelets 250000/uL",  # regression: a count with a unit was an [ID-n]
        "Platelet count of 150000 per mm3",  # regression: unit word after the count
        "Platelets: 250000",  # regression: a count name before a bare number
        "HIV viral load 1500000 copies/mL",  # regression: viral loads are long numbers
        "Ferritin 1234567 ng/mL",  # regression: any long number followed by a unit
        "6 Minute Walk Test distance 350 m",  # regression: the BODE walk was an [ADDRESS-n]
        "glucose 300 mg/dl 4 hours later",  # regression: "dl" was read as a DL (licence) label
        "creatinine 1.4 mg/dL DL",  # a lower-case unit next to the label spelling
        "power 12/40/10 and ratio 1/2/3/45",  # not dates: left as written
    ],
)
def test_clinical_numbers_survive(text: str) -> None:
    out = Deidentifier(SECRET).deidentify(text, PatientIdentifiers(patient_id="x")).text
    assert out == text


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Patient 1234567 seen", "1234567"),  # a bare long number is still an identifier
        ("DL S99912345 on file", "S99912345"),  # the licence label in capitals still works
        ("ID: 4471-22 scanned", "4471-22"),  # and so does ID
    ],
)
def test_identifier_numbers_still_go(text: str, gone: str) -> None:
    out = Deidentifier(SECRET).deidentify(text, PatientIdentifiers(patient_id="x")).text
    assert gone not in out


def test_alignment_maps_surrogates_back_to_the_original_span() -> None:
    text = "Alica (MRN 6594510) seen 2020-03-10, a 93 year-old; Dr. Kessler. Na 134."
    result = Deidentifier(SECRET).deidentify(text, PATIENT)
    out = result.text
    for piece, original in [
        ("[NAME-1]", "Alica"),
        ("[ID-1]", "6594510"),
        ("90+", "93"),
        ("[NAME-2]", "Dr. Kessler"),
        ("Na 134", "Na 134"),  # untouched text maps to itself
    ]:
        start = out.index(piece)
        a, b = result.original_span(start, start + len(piece))
        assert text[a:b] == original
    shifted = next(s for s in result.reid.dates)
    start = out.index(shifted)
    a, b = result.original_span(start, start + len(shifted))
    assert text[a:b] == "2020-03-10"
    # a quote cutting a surrogate in two grows to the whole original value
    start = out.index("[ID-1]") + 2
    a, b = result.original_span(start, start + 3)
    assert text[a:b] == "6594510"
    assert result.original_span(0, len(out)) == (0, len(text))
    with pytest.raises(ValueError):
        result.original_span(0, len(out) + 1)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=25))
def test_property_every_surrogate_maps_to_its_original(pieces: list[str]) -> None:
    import re

    text = " ".join(pieces)
    result = Deidentifier(SECRET).deidentify(text, PATIENT)
    assert result.original_span(0, len(result.text)) == (0, len(text))
    for m in re.finditer(r"\[[A-Z]+-\d+\]", result.text):
        a, b = result.original_span(*m.span())
        assert text[a:b].casefold() == result.reid.tokens[m.group(0)].casefold()
    for shifted, original in result.reid.dates.items():
        for m in re.finditer(re.escape(shifted), result.text):
            a, b = result.original_span(*m.span())
            assert text[a:b] == original
