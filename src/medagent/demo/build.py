"""Build the hand-made demo patients as FHIR R4 transaction bundles (python -m medagent.demo.build).

Every person here is invented; no real patient's data was used. Times are written relative to one
index time (Bundle.timestamp), the moment the demo is meant to be looked at; `load_demo` can move
them so that the index time is now.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

INDEX_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SOURCE = "medagent/demo/build.py"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

Resource = dict[str, Any]

# LOINC code, display, UCUM unit, category
VITALS: dict[str, tuple[str, str, str]] = {
    "rr": ("9279-1", "Respiratory rate", "/min"),
    "sbp": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "hr": ("8867-4", "Heart rate", "/min"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    "temp": ("8310-5", "Body temperature", "Cel"),
    "gcs": ("9269-2", "Glasgow coma score total", "{score}"),
    "fio2": ("3150-0", "Inhaled oxygen concentration", "%"),
    "o2flow": ("3151-8", "Inhaled oxygen flow rate", "L/min"),
    "weight": ("29463-7", "Body weight", "kg"),
    "height": ("8302-2", "Body height", "cm"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
}
LABS: dict[str, tuple[str, str]] = {
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
    "bilirubin": ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma"),
    "platelets": ("777-3", "Platelets [#/volume] in Blood by Automated count"),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count"),
    "hb": ("718-7", "Hemoglobin [Mass/volume] in Blood"),
    "hct": ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count"),
    "sodium": ("2951-2", "Sodium [Moles/volume] in Serum or Plasma"),
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
    "chloride": ("2075-0", "Chloride [Moles/volume] in Serum or Plasma"),
    "bicarbonate": ("1963-8", "Bicarbonate [Moles/volume] in Serum or Plasma"),
    "bun": ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma"),
    "glucose": ("2345-7", "Glucose [Mass/volume] in Serum or Plasma"),
    "albumin": ("1751-7", "Albumin [Mass/volume] in Serum or Plasma"),
    "inr": ("6301-6", "INR in Platelet poor plasma by Coagulation assay"),
    "lactate": ("2524-7", "Lactate [Moles/volume] in Serum or Plasma"),
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma"),
    "pao2": ("2703-7", "Oxygen [Partial pressure] in Arterial blood"),
    "paco2": ("2019-8", "Carbon dioxide [Partial pressure] in Arterial blood"),
    "ph": ("2744-1", "pH of Arterial blood"),
    "troponin": (
        "89579-7",
        "Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity",
    ),
    "ast": ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
    "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
    "cholesterol": ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"),
    "hdl": ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"),
}


class PatientBuilder:
    """Collects one invented patient's resources, with times in hours before the index time."""

    def __init__(
        self, key: str, *, given: str, family: str, gender: str, birth: str, scenario: str
    ) -> None:
        self.key = key
        self.scenario = scenario
        self.pid = f"demo-{key}"
        self.resources: list[Resource] = []
        self.counter = 0
        self.encounter: str | None = None
        self.add(
            {
                "resourceType": "Patient",
                "id": self.pid,
                "meta": {"tag": [{"system": "urn:medagent:demo", "code": "synthetic"}]},
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": gender,
                "birthDate": birth,
            }
        )

    # ---- helpers --------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{self.pid}-{prefix}-{self.counter}"

    @staticmethod
    def at(hours_before: float) -> str:
        when = INDEX_TIME - timedelta(hours=hours_before)
        return when.isoformat().replace("+00:00", "Z")

    def add(self, resource: Resource) -> Resource:
        self.resources.append(resource)
        return resource

    def _subject(self, resource: Resource) -> Resource:
        resource["subject"] = {"reference": f"Patient/{self.pid}"}
        if self.encounter and resource["resourceType"] in ("Observation", "Procedure"):
            resource["encounter"] = {"reference": f"Encounter/{self.encounter}"}
        return resource

    # ---- resources ------------------------------------------------------------------------

    def admit(self, *, hours_before: float, klass: str, reason: str, snomed: str) -> None:
        eid = self._id("enc")
        self.encounter = eid
        self.add(
            {
                "resourceType": "Encounter",
                "id": eid,
                "status": "in-progress",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": klass,
                },
                "subject": {"reference": f"Patient/{self.pid}"},
                "period": {"start": self.at(hours_before)},
                "reasonCode": [{"coding": [{"system": SNOMED, "code": snomed, "display": reason}]}],
            }
        )

    def vital(
        self, name: str, value: float, hours_before: float, *, status: str = "final"
    ) -> Resource:
        code, display, unit = VITALS[name]
        return self._obs(
            code,
            display=display,
            value=value,
            unit=unit,
            hours_before=hours_before,
            category="vital-signs",
            status=status,
        )

    def lab(
        self, name: str, value: float, unit: str, hours_before: float, *, status: str = "final"
    ) -> Resource:
        code, display = LABS[name]
        return self._obs(
            code,
            display=display,
            value=value,
            unit=unit,
            hours_before=hours_before,
            category="laboratory",
            status=status,
        )

    def _obs(
        self,
        code: str,
        *,
        display: str,
        value: float,
        unit: str,
        hours_before: float,
        category: str,
        status: str,
    ) -> Resource:
        return self.add(
            self._subject(
                {
                    "resourceType": "Observation",
                    "id": self._id("obs"),
                    "status": status,
                    "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                    "effectiveDateTime": self.at(hours_before),
                    "valueQuantity": {
                        "value": value,
                        "unit": unit,
                        "system": UCUM,
                        "code": unit,
                    },
                }
            )
        )

    def bp(self, systolic: float, diastolic: float, hours_before: float) -> Resource:
        def part(code: str, display: str, value: float) -> Resource:
            return {
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {
                    "value": value,
                    "unit": "mm[Hg]",
                    "system": UCUM,
                    "code": "mm[Hg]",
                },
            }

        return self.add(
            self._subject(
                {
                    "resourceType": "Observation",
                    "id": self._id("bp"),
                    "status": "final",
                    "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs"}]}],
                    "code": {
                        "coding": [
                            {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}
                        ]
                    },
                    "effectiveDateTime": self.at(hours_before),
                    "component": [
                        part("8480-6", "Systolic blood pressure", systolic),
                        part("8462-4", "Diastolic blood pressure", diastolic),
                    ],
                }
            )
        )

    def condition(
        self,
        display: str,
        *,
        icd10: str | None = None,
        snomed: str | None = None,
        onset_days: float,
        status: str = "active",
        verification: str = "confirmed",
        abated_days: float | None = None,
    ) -> Resource:
        coding = []
        if snomed:
            coding.append({"system": SNOMED, "code": snomed, "display": display})
        if icd10:
            coding.append({"system": ICD10, "code": icd10, "display": display})
        resource: Resource = {
            "resourceType": "Condition",
            "id": self._id("cond"),
            "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": status}]},
            "verificationStatus": {"coding": [{"system": COND_VERIFICATION, "code": verification}]},
            "code": {"coding": coding, "text": display},
            "onsetDateTime": self.at(onset_days * 24),
            "recordedDate": self.at(onset_days * 24),
        }
        if abated_days is not None:
            resource["abatementDateTime"] = self.at(abated_days * 24)
        return self.add(self._subject(resource))

    def medication(
        self,
        display: str,
        *,
        rxnorm: str,
        atc: str,
        started_days: float,
        status: str = "active",
    ) -> Resource:
        return self.add(
            self._subject(
                {
                    "resourceType": "MedicationRequest",
                    "id": self._id("med"),
                    "status": status,
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [
                            {"system": RXNORM, "code": rxnorm, "display": display},
                            {"system": ATC, "code": atc},
                        ],
                        "text": display,
                    },
                    "authoredOn": self.at(started_days * 24),
                }
            )
        )

    def procedure(self, display: str, *, snomed: str, hours_before: float) -> Resource:
        return self.add(
            self._subject(
                {
                    "resourceType": "Procedure",
                    "id": self._id("proc"),
                    "status": "completed",
                    "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display}]},
                    "performedDateTime": self.at(hours_before),
                }
            )
        )

    def note(self, text: str, *, hours_before: float) -> Resource:
        import base64

        return self.add(
            {
                "resourceType": "DocumentReference",
                "id": self._id("note"),
                "status": "current",
                "type": {
                    "coding": [
                        {"system": LOINC, "code": "34117-2", "display": "History and physical note"}
                    ]
                },
                "subject": {"reference": f"Patient/{self.pid}"},
                "date": self.at(hours_before),
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "data": base64.b64encode(text.encode()).decode(),
                        }
                    }
                ],
            }
        )

    # ---- output ---------------------------------------------------------------------------

    def bundle(self, scales: list[str]) -> Resource:
        return {
            "resourceType": "Bundle",
            "id": f"{self.pid}-bundle",
            "meta": {
                "source": SOURCE,
                "tag": [
                    {"system": "urn:medagent:demo", "code": "synthetic"},
                    *({"system": "urn:medagent:demo:scale", "code": s} for s in scales),
                ],
            },
            "identifier": {"system": "urn:medagent:demo", "value": self.key},
            "type": "transaction",
            "timestamp": INDEX_TIME.isoformat().replace("+00:00", "Z"),
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in self.resources
            ],
        }


# --------------------------------------------------------------------------- the patients


def sepsis_ward() -> tuple[PatientBuilder, list[str]]:
    """78-year-old woman on a medical ward: community-acquired pneumonia progressing to sepsis."""
    p = PatientBuilder(
        "sepsis-ward",
        given="Margaret",
        family="Ellison",
        gender="female",
        birth="1947-06-14",
        scenario="Sepsis on a medical ward (pneumonia)",
    )
    p.admit(hours_before=40, klass="IMP", reason="Pneumonia", snomed="233604007")
    p.condition("Essential hypertension", icd10="I10", snomed="38341003", onset_days=3650)
    p.condition("Type 2 diabetes mellitus", icd10="E11.9", snomed="44054006", onset_days=2900)
    p.condition("Pneumonia", icd10="J18.9", snomed="233604007", onset_days=2)
    p.condition("Sepsis", icd10="A41.9", snomed="91302008", onset_days=0.25)
    p.condition("Delirium", icd10="F05", snomed="2776000", onset_days=0.4)
    # A urinary tract infection last year, resolved: not active now.
    p.condition(
        "Urinary tract infection",
        icd10="N39.0",
        snomed="68566005",
        onset_days=300,
        status="resolved",
        abated_days=290,
    )
    for h, (rr, hr, spo2, temp, sbp, dbp) in {
        20: (18, 96, 95, 38.2, 128, 74),
        12: (22, 108, 93, 38.7, 112, 66),
        6: (24, 116, 92, 38.9, 101, 58),
        1: (26, 118, 91, 38.6, 94, 55),
    }.items():
        p.vital("rr", rr, h)
        p.vital("hr", hr, h)
        p.vital("spo2", spo2, h)
        p.vital("temp", temp, h)
        p.bp(sbp, dbp, h)
    # A mistyped systolic pressure, withdrawn: must never count.
    p.vital("sbp", 58, 0.5, status="entered-in-error")
    p.vital("gcs", 14, 1)
    p.vital("fio2", 35, 1)
    p.vital("o2flow", 4, 1)
    p.procedure("Oxygen therapy", snomed="57485005", hours_before=6)
    p.lab("pao2", 68, "mm[Hg]", 1.5)
    p.lab("paco2", 34, "mm[Hg]", 1.5)
    p.lab("ph", 7.33, "[pH]", 1.5)
    p.lab("lactate", 3.4, "mmol/L", 1.5)
    p.lab("wbc", 18.2, "10*3/uL", 5)
    p.lab("platelets", 142, "10*3/uL", 28)
    p.lab("platelets", 95, "10*3/uL", 5)
    p.lab("creatinine", 88, "umol/L", 28)  # from the admission bloods, in µmol/L
    p.lab("creatinine", 168, "umol/L", 5)
    p.lab("bilirubin", 38, "umol/L", 5)
    p.lab("sodium", 134, "mmol/L", 5)
    p.lab("potassium", 4.9, "mmol/L", 5)
    p.lab("bun", 34, "mg/dL", 5)
    p.lab("glucose", 212, "mg/dL", 5)
    p.lab("hct", 36, "%", 5)
    p.lab("crp", 186, "mg/L", 5)
    p.medication(
        "piperacillin 4000 MG / tazobactam 500 MG Injection",
        rxnorm="1659149",
        atc="J01CR05",
        started_days=0.2,
    )
    p.medication(
        "metformin hydrochloride 500 MG Oral Tablet",
        rxnorm="861007",
        atc="A10BA02",
        started_days=2900,
    )
    p.note(
        "Ward review. 78F admitted with right lower lobe pneumonia. Now more breathless, "
        "RR 26, SpO2 91% on 4 L/min, BP 94/55, HR 118, T 38.6. New confusion overnight per "
        "nursing staff. Lactate 3.4. Impression: sepsis from pneumonia. Plan: sepsis bundle, "
        "escalate antibiotics, critical care outreach review.",
        hours_before=0.5,
    )
    return p, ["news2", "qsofa", "sofa", "sirs", "curb65"]


def af_anticoagulation() -> tuple[PatientBuilder, list[str]]:
    """76-year-old man with newly diagnosed atrial fibrillation, before anticoagulation."""
    p = PatientBuilder(
        "af-anticoagulation",
        given="Harold",
        family="Becker",
        gender="male",
        birth="1949-11-02",
        scenario="Atrial fibrillation before anticoagulation",
    )
    p.admit(hours_before=3, klass="AMB", reason="Atrial fibrillation", snomed="49436004")
    p.condition("Atrial fibrillation", icd10="I48.91", snomed="49436004", onset_days=3)
    p.condition("Essential hypertension", icd10="I10", snomed="38341003", onset_days=5400)
    p.condition("Type 2 diabetes mellitus", icd10="E11.9", snomed="44054006", onset_days=3100)
    # The TIA itself, two years ago (resolved), and the history code that stays on the list.
    p.condition(
        "Transient cerebral ischemic attack",
        icd10="G45.9",
        snomed="266257000",
        onset_days=730,
        status="resolved",
        abated_days=729,
    )
    p.condition(
        "Personal history of transient ischemic attack",
        icd10="Z86.73",
        onset_days=700,
    )
    p.condition("Peripheral arterial disease", icd10="I73.9", snomed="399957001", onset_days=1500)
    # Heart failure was suspected once and ruled out by echocardiography.
    p.condition(
        "Congestive heart failure",
        icd10="I50.9",
        snomed="42343007",
        onset_days=40,
        status="inactive",
        verification="refuted",
    )
    p.bp(152, 88, 2)
    p.vital("hr", 112, 2)
    p.vital("weight", 84, 2)
    p.vital("height", 176, 2)
    p.lab("creatinine", 1.1, "mg/dL", 24)
    p.lab("inr", 1.0, "{INR}", 24)
    p.lab("hb", 14.1, "g/dL", 24)
    p.lab("platelets", 231, "10*3/uL", 24)
    p.lab("alt", 24, "U/L", 24)
    p.lab("ast", 22, "U/L", 24)
    p.lab("bilirubin", 0.7, "mg/dL", 24)
    p.lab("albumin", 4.1, "g/dL", 24)
    p.medication("aspirin 81 MG Oral Tablet", rxnorm="243670", atc="B01AC06", started_days=700)
    p.medication("lisinopril 20 MG Oral Tablet", rxnorm="314077", atc="C09AA03", started_days=5000)
    p.medication(
        "metformin hydrochloride 500 MG Oral Tablet",
        rxnorm="861007",
        atc="A10BA02",
        started_days=3000,
    )
    p.note(
        "Cardiology clinic. 76M, palpitations for 3 days; ECG shows atrial fibrillation, rate "
        "112. History of hypertension, type 2 diabetes, TIA two years ago, peripheral arterial "
        "disease. Echo: normal LV function. Drinks about 4 units a week. On aspirin. Discuss "
        "oral anticoagulation.",
        hours_before=1,
    )
    return p, ["cha2ds2_vasc", "cha2ds2_va", "has_bled"]


def copd_exacerbation() -> tuple[PatientBuilder, list[str]]:
    """69-year-old woman with COPD and hypercapnic respiratory failure in an exacerbation."""
    p = PatientBuilder(
        "copd-exacerbation",
        given="Doreen",
        family="Walsh",
        gender="female",
        birth="1956-08-23",
        scenario="COPD exacerbation with hypercapnia (SpO2 scale 2)",
    )
    p.admit(hours_before=10, klass="EMER", reason="Exacerbation of COPD", snomed="195951007")
    p.condition(
        "Chronic obstructive pulmonary disease", icd10="J44.9", snomed="13645005", onset_days=4000
    )
    p.condition(
        "Chronic obstructive pulmonary disease with (acute) exacerbation",
        icd10="J44.1",
        snomed="195951007",
        onset_days=2,
    )
    p.condition(
        "Tobacco dependence, cigarettes", icd10="F17.210", snomed="77176002", onset_days=15000
    )
    for h, (rr, hr, spo2, temp, sbp, dbp) in {
        9: (26, 108, 86, 37.8, 148, 84),
        4: (24, 104, 88, 37.6, 146, 82),
        1: (23, 102, 89, 37.5, 142, 80),
    }.items():
        p.vital("rr", rr, h)
        p.vital("hr", hr, h)
        p.vital("spo2", spo2, h)
        p.vital("temp", temp, h)
        p.bp(sbp, dbp, h)
    p.vital("o2flow", 2, 1)
    p.procedure("Oxygen therapy", snomed="57485005", hours_before=9)
    p.lab("ph", 7.31, "[pH]", 8)
    p.lab("paco2", 58, "mm[Hg]", 8)
    p.lab("pao2", 56, "mm[Hg]", 8)
    p.lab("bicarbonate", 31, "mmol/L", 8)
    p.lab("wbc", 12.4, "10*3/uL", 8)
    p.lab("bun", 22, "mg/dL", 8)
    p.lab("sodium", 138, "mmol/L", 8)
    p.lab("glucose", 131, "mg/dL", 8)
    p.lab("hct", 47, "%", 8)
    p.vital("weight", 58, 9)
    p.vital("height", 162, 9)
    p.vital("bmi", 22.1, 9)
    p.medication(
        "tiotropium 18 MCG Inhalation Capsule", rxnorm="485032", atc="R03BB04", started_days=1500
    )
    p.medication("prednisolone 30 MG Oral Tablet", rxnorm="312615", atc="H02AB06", started_days=0.3)
    p.note(
        "ED. 69F with COPD (FEV1 38% predicted), 3 days of increased breathlessness and purulent "
        "sputum. Breathless walking 100 m on the flat at baseline; stops for breath after a few "
        "minutes. Target saturation 88-92% (known CO2 retainer). Alert. ABG pH 7.31, PaCO2 58.",
        hours_before=8,
    )
    return p, ["news2", "curb65", "cat_copd", "mmrc_dyspnoea"]


def chest_pain() -> tuple[PatientBuilder, list[str]]:
    """61-year-old man in the emergency department with acute chest pain."""
    p = PatientBuilder(
        "chest-pain",
        given="Rajesh",
        family="Patel",
        gender="male",
        birth="1964-04-30",
        scenario="Acute chest pain in the emergency department",
    )
    p.admit(hours_before=3, klass="EMER", reason="Chest pain", snomed="29857009")
    p.condition("Chest pain", icd10="R07.9", snomed="29857009", onset_days=0.15)
    p.condition("Essential hypertension", icd10="I10", snomed="38341003", onset_days=4000)
    p.condition("Hyperlipidemia", icd10="E78.5", snomed="13644009", onset_days=3000)
    p.condition("Type 2 diabetes mellitus", icd10="E11.9", snomed="44054006", onset_days=2000)
    p.condition("Obesity", icd10="E66.9", snomed="414916001", onset_days=2000)
    p.condition(
        "Tobacco dependence, cigarettes", icd10="F17.210", snomed="77176002", onset_days=12000
    )
    p.condition(
        "Atherosclerotic heart disease of native coronary artery",
        icd10="I25.10",
        snomed="53741008",
        onset_days=1200,
    )
    p.bp(158, 94, 2.5)
    p.bp(149, 90, 0.5)
    p.vital("hr", 96, 2.5)
    p.vital("hr", 92, 0.5)
    p.vital("rr", 18, 0.5)
    p.vital("spo2", 97, 0.5)
    p.vital("temp", 36.8, 0.5)
    p.vital("weight", 98, 2.5)
    p.vital("height", 174, 2.5)
    p.vital("bmi", 32.4, 2.5)
    p.lab("troponin", 34, "ng/L", 2)
    p.lab("troponin", 61, "ng/L", 0.2)
    p.lab("creatinine", 115, "umol/L", 2)
    p.lab("cholesterol", 231, "mg/dL", 2)
    p.lab("hdl", 38, "mg/dL", 2)
    p.lab("hb", 14.8, "g/dL", 2)
    p.medication("aspirin 81 MG Oral Tablet", rxnorm="243670", atc="B01AC06", started_days=1200)
    p.medication(
        "atorvastatin 40 MG Oral Tablet", rxnorm="617311", atc="C10AA05", started_days=1200
    )
    p.note(
        "ED. 61M with central chest pressure radiating to the left arm for 3 hours, worse on "
        "exertion, sweaty. ECG: 1 mm ST depression V4-V6. Two episodes of pain in the last 24 "
        "hours. Father had MI at 54. hs-TnI 34 then 61 ng/L. Killip class I.",
        hours_before=0.2,
    )
    return p, ["heart_score", "timi_ua_nstemi", "grace_in_hospital"]


def upper_gi_bleed() -> tuple[PatientBuilder, list[str]]:
    """68-year-old man with melaena and a falling haemoglobin on NSAIDs and aspirin."""
    p = PatientBuilder(
        "upper-gi-bleed",
        given="Thomas",
        family="O'Brien",
        gender="male",
        birth="1957-12-09",
        scenario="Upper gastrointestinal bleeding",
    )
    p.admit(hours_before=5, klass="EMER", reason="Melena", snomed="2901004")
    p.condition("Melena", icd10="K92.1", snomed="2901004", onset_days=1)
    p.condition("Syncope and collapse", icd10="R55", snomed="271594007", onset_days=0.3)
    p.condition("Heart failure", icd10="I50.22", snomed="84114007", onset_days=900)
    p.condition("Osteoarthritis of knee", icd10="M17.11", snomed="239873007", onset_days=2500)
    p.bp(104, 62, 4.5)
    p.bp(96, 58, 1)
    p.vital("hr", 104, 4.5)
    p.vital("hr", 112, 1)
    p.vital("rr", 20, 1)
    p.vital("spo2", 96, 1)
    p.vital("temp", 36.6, 1)
    p.vital("gcs", 15, 1)
    p.lab("hb", 89, "g/L", 4)  # reported in g/L; the scales want g/dL
    p.lab("bun", 46, "mg/dL", 4)
    p.lab("creatinine", 1.2, "mg/dL", 4)
    p.lab("albumin", 2.9, "g/dL", 4)
    p.lab("inr", 1.3, "{INR}", 4)
    p.lab("platelets", 210, "10*3/uL", 4)
    p.medication("ibuprofen 400 MG Oral Tablet", rxnorm="197806", atc="M01AE01", started_days=60)
    p.medication("aspirin 81 MG Oral Tablet", rxnorm="243670", atc="B01AC06", started_days=800)
    p.medication("furosemide 40 MG Oral Tablet", rxnorm="313988", atc="C03CA01", started_days=900)
    p.note(
        "ED. 68M, black tarry stools for 24 h, fainted at home this morning. Takes ibuprofen for "
        "knee pain and aspirin. Heart failure (EF 35%). Alert and oriented. Hb 89 g/L, urea "
        "raised. Plan: IV access, transfuse to 70 g/L, PPI, endoscopy within 24 h.",
        hours_before=4,
    )
    return p, ["glasgow_blatchford", "aims65", "rockall"]


def decompensated_cirrhosis() -> tuple[PatientBuilder, list[str]]:
    """57-year-old woman with alcohol-related cirrhosis, ascites and encephalopathy."""
    p = PatientBuilder(
        "decompensated-cirrhosis",
        given="Linda",
        family="Moreau",
        gender="female",
        birth="1968-09-17",
        scenario="Decompensated alcohol-related cirrhosis",
    )
    p.admit(hours_before=30, klass="IMP", reason="Ascites", snomed="389026000")
    p.condition(
        "Alcoholic cirrhosis of liver with ascites",
        icd10="K70.31",
        snomed="420054005",
        onset_days=900,
    )
    p.condition("Other ascites", icd10="R18.8", snomed="389026000", onset_days=20)
    p.condition("Hepatic encephalopathy", icd10="K76.82", snomed="13920009", onset_days=2)
    p.condition("Alcohol dependence", icd10="F10.20", snomed="66590003", onset_days=5000)
    p.lab("bilirubin", 58, "umol/L", 6)  # reported in µmol/L
    p.lab("albumin", 26, "g/L", 6)  # reported in g/L
    p.lab("inr", 2.1, "{INR}", 6)
    p.lab("creatinine", 1.6, "mg/dL", 6)
    p.lab("sodium", 129, "mmol/L", 6)
    p.lab("platelets", 72, "10*3/uL", 6)
    p.lab("ast", 96, "U/L", 6)
    p.lab("alt", 41, "U/L", 6)
    p.lab("hb", 10.4, "g/dL", 6)
    p.lab("bun", 28, "mg/dL", 6)
    p.bp(102, 60, 2)
    p.vital("hr", 96, 2)
    p.vital("rr", 18, 2)
    p.vital("spo2", 96, 2)
    p.vital("temp", 36.9, 2)
    p.medication(
        "spironolactone 100 MG Oral Tablet", rxnorm="313096", atc="C03DA01", started_days=300
    )
    p.medication(
        "lactulose 10 GM per 15 ML Oral Solution", rxnorm="197855", atc="A06AD11", started_days=2
    )
    p.note(
        "Hepatology ward. 57F with alcohol-related cirrhosis. Tense ascites, drained 5 L. "
        "Grade 2 hepatic encephalopathy (asterixis, disoriented to time). Not on dialysis.",
        hours_before=2,
    )
    return p, ["child_pugh", "meld_na", "meld_3", "albi_grade", "fib4"]


def postop_vte() -> tuple[PatientBuilder, list[str]]:
    """71-year-old man one day after a total hip replacement, with cancer and a past DVT."""
    p = PatientBuilder(
        "postop-vte",
        given="George",
        family="Lindqvist",
        gender="male",
        birth="1954-05-21",
        scenario="Post-operative patient at VTE risk (hip arthroplasty)",
    )
    p.admit(hours_before=40, klass="IMP", reason="Total hip replacement", snomed="52734007")
    p.procedure("Total replacement of hip", snomed="52734007", hours_before=26)
    p.condition(
        "Primary osteoarthritis of hip", icd10="M16.11", snomed="239872002", onset_days=1800
    )
    p.condition("Malignant neoplasm of prostate", icd10="C61", snomed="399068003", onset_days=200)
    p.condition(
        "Personal history of other venous thrombosis and embolism",
        icd10="Z86.718",
        snomed="128053003",
        onset_days=2600,
    )
    p.condition(
        "Varicose veins of lower extremity", icd10="I83.90", snomed="128060009", onset_days=4000
    )
    p.condition("Obesity", icd10="E66.9", snomed="414916001", onset_days=3000)
    p.condition(
        "Chronic obstructive pulmonary disease", icd10="J44.9", snomed="13645005", onset_days=2200
    )
    p.vital("weight", 101, 48)
    p.vital("height", 178, 48)
    p.vital("bmi", 31.9, 48)
    p.bp(134, 76, 2)
    p.vital("hr", 84, 2)
    p.vital("rr", 16, 2)
    p.vital("spo2", 95, 2)
    p.vital("temp", 37.4, 2)
    p.lab("hb", 11.2, "g/dL", 8)
    p.lab("platelets", 198, "10*3/uL", 8)
    p.lab("creatinine", 0.9, "mg/dL", 8)
    p.medication("bicalutamide 50 MG Oral Tablet", rxnorm="198240", atc="L02BB03", started_days=180)
    p.note(
        "Orthopaedic ward, day 1 after elective left total hip arthroplasty (open, 2 h). On bed "
        "rest until physiotherapy review. Prostate cancer on bicalutamide. DVT left leg 7 years "
        "ago. Varicose veins. BMI 32.",
        hours_before=2,
    )
    return p, ["caprini_2005", "padua"]


BUILDERS: tuple[Callable[[], tuple[PatientBuilder, list[str]]], ...] = (
    sepsis_ward,
    af_anticoagulation,
    copd_exacerbation,
    chest_pain,
    upper_gi_bleed,
    decompensated_cirrhosis,
    postop_vte,
)


def build_all() -> dict[str, Resource]:
    """Every hand-built demo bundle, by file name."""
    out: dict[str, Resource] = {}
    for build in BUILDERS:
        patient, scales = build()
        out[f"{patient.key}.json"] = patient.bundle(scales)
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the bundles into the package's ``patients`` folder (or the folder given)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).parent / "patients"
    folder.mkdir(parents=True, exist_ok=True)
    for name, bundle in build_all().items():
        text = json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"
        (folder / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
