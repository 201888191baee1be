"""How each MedCalc-Bench row's entities become the parameters of the peer package's functions.

The peer (PyPI ``medcalc-bench``, module ``medcalc``) names its parameters in its own way; this
table says, per calculator id, which function to call and how each entity key is renamed. Values
keep the benchmark's shapes ((value, unit) tuples, booleans, strings), which the peer accepts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PeerSpec:
    module: str
    function: str
    keys: Mapping[str, str] = field(default_factory=dict)  # entity key -> peer parameter
    passthrough: bool = False  # the peer takes the benchmark's own entity names


PEER: dict[int, PeerSpec] = {
    4: PeerSpec(
        "cha2ds2_vasc_score",
        "generate_cha2ds2_vasc_explanation",
        {
            "age": "age",
            "sex": "sex",
            "Congestive Heart Faliure": "chf",
            "Hypertension history": "hypertension",
            "Diabetes history": "diabetes",
            "Stroke": "stroke",
            "Transient Ischemic Attacks History": "tia",
            "Thromboembolism history": "thromboembolism",
            "Vascular disease history": "vascular_disease",
        },
    ),
    6: PeerSpec(
        "bmi_calculator", "bmi_calculator_explanation", {"weight": "weight", "height": "height"}
    ),
    2: PeerSpec(
        "creatinine_clearance",
        "generate_cockcroft_gault_explanation",
        {
            "age": "age",
            "creatinine": "creatinine",
            "height": "height",
            "sex": "sex",
            "weight": "weight",
        },
    ),
    3: PeerSpec(
        "ckd_epi_2021_creatinine",
        "ckd_epi_2021_explanation",
        {
            "age": "age",
            "creatinine": "creatinine",
            "sex": "sex",
        },
    ),
    5: PeerSpec(
        "mean_arterial_pressure",
        "mean_arterial_pressure_explanation",
        {
            "Diastolic Blood Pressure": "dia_bp",
            "Systolic Blood Pressure": "sys_bp",
        },
    ),
    7: PeerSpec(
        "calcium_correction",
        "calculate_corrected_calcium_explanation",
        {
            "Albumin": "albumin",
            "Calcium": "calcium",
        },
    ),
    8: PeerSpec(
        "wells_criteria_pe",
        "calculate_pe_wells_explanation",
        {
            "Clinical signs and symptoms of Deep Vein Thrombosis": "clinical_dvt",
            "Heart Rate or Pulse": "heart_rate",
            "Hemoptysis": "hemoptysis",
            "Immobilization for at least 3 days": "immobilization_for_3days",
            "Malignancy with treatment within 6 months or palliative": "malignancy_with_treatment",
            "Previously Documented Pulmonary Embolism": "previous_pe",
            "Previously documented Deep Vein Thrombosis": "previous_dvt",
            "Pulmonary Embolism is #1 diagnosis OR equally likely": "pe_number_one",
            "Surgery in the previous 4 weeks": "surgery_in_past4weeks",
        },
    ),
    9: PeerSpec(
        "mdrd_gfr",
        "mrdr_gfr_explanation",
        {
            "Race": "race",
            "age": "age",
            "creatinine": "creatinine",
            "sex": "sex",
        },
    ),
    10: PeerSpec(
        "ideal_body_weight",
        "ibw_explanation",
        {
            "height": "height",
            "sex": "sex",
        },
    ),
    11: PeerSpec(
        "qt_calculator_bazett",
        "bazett_calculator_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "QT interval": "qt_interval",
        },
    ),
    13: PeerSpec(
        "estimated_due_date",
        "add_40_weeks_explanation",
        {
            "Last menstrual date": "menstrual_date",
            "cycle length": "cycle_length",
        },
    ),
    15: PeerSpec(
        "child_pugh_score",
        "compute_child_pugh_score_explanation",
        {
            "Albumin": "albumin",
            "Ascites": "ascites",
            "Bilirubin": "bilirubin",
            "Encephalopathy": "encephalopathy",
            "international normalized ratio": "inr",
        },
    ),
    16: PeerSpec(
        "wells_criteria_dvt",
        "compute_wells_criteria_dvt_explanation",
        {
            "Active cancer": "active_cancer",
            "Alternative diagnosis to Deep Vein Thrombosis as likely or more likely": "alternative_to_dvt_diagnosis",
            "Bedridden recently >3 days or major surgery within 12 weeks": "bedridden_for_atleast_3_days",
            "Calf swelling >3 centimeters compared to the other leg": "calf_swelling_3cm",
            "Collateral (nonvaricose) superficial veins present": "collateral_superficial_veins",
            "Entire Leg Swollen": "leg_swollen",
            "Localized tenderness along the deep venous system": "localized_tenderness_on_deep_venuous_system",
            "Major surgery within 12 weeks": "major_surgery_in_last_12_weeks",
            "Paralysis, paresis, or recent plaster immobilization of the lower extremity": "paralysis_paresis_immobilization_in_lower_extreme",
            "Pitting edema, confined to symptomatic leg": "pitting_edema_on_symptomatic_leg",
            "Previously documented Deep Vein Thrombosis": "previous_dvt",
        },
    ),
    17: PeerSpec(
        "cardiac_risk_index",
        "compute_cardiac_index_explanation",
        {
            "Cerebrovascular disease history": "cerebrovascular_disease",
            "Congestive Heart Failure criteria for the Cardiac Risk Index rule": "congestive_heart_failure",
            "Elevated-risk surgery": "elevated_risk_surgery",
            "History of cerebrovascular disease": "cerebrovascular_disease",
            "History of ischemic heart disease": "ischemetic_heart_disease",
            "Pre-operative creatinine": "pre_operative_creatinine",
            "Pre-operative treatment with insulin": "pre_operative_insulin_treatment",
        },
    ),
    18: PeerSpec(
        "heart_score",
        "compute_heart_score_explanation",
        {
            "Diabetes mellitus criteria for CCI rule": "diabetes_mellitus",
            "Electrocardiogram Test": "electrocardiogram",
            "Hypertension history": "hypertension",
            "Initial troponin": "initial_troponin",
            "Suspicion History": "history",
            "Transient Ischemic Attacks History": "atherosclerotic_disease",
            "age": "age",
            "atherosclerotic disease": "atherosclerotic_disease",
            "hypercholesterolemia": "hypercholesterolemia",
            "obesity": "obesity",
            "parent or sibling with Cardiovascular disease before age 65": "family_with_cvd",
            "smoking": "smoking",
        },
    ),
    19: PeerSpec(
        "fibrosis_4",
        "compute_fib4_explanation",
        {
            "Alanine aminotransferase": "alt",
            "Aspartate aminotransferase": "ast",
            "Platelet count": "platelet_count",
            "age": "age",
        },
    ),
    20: PeerSpec(
        "centor_score",
        "compute_centor_score_explanation",
        {
            "Cough Absent": "cough_absent",
            "Exudate or swelling on tonsils": "exudate_swelling_tonsils",
            "Temperature": "temperature",
            "Tender/swollen anterior cervical lymph nodes": "tender_lymph_nodes",
            "age": "age",
        },
    ),
    21: PeerSpec(
        "glasgow_coma_score",
        "compute_glasgow_coma_score_explanation",
        {
            "Best eye response": "best_eye_response",
            "Best motor response": "best_motor_response",
            "Best verbal response": "best_verbal_response",
        },
    ),
    22: PeerSpec(
        "maintenance_fluid_calc",
        "maintenance_fluid_explanation",
        {
            "weight": "weight",
        },
    ),
    23: PeerSpec(
        "meldna",
        "compute_meldna_explanation",
        {
            "Bilirubin": "bilirubin",
            "Continuous veno-venous hemodialysis for ≥24 hours in the past week": "cvvhd",
            "Dialysis at least twice in the past week": "dialysis_twice",
            "Sodium": "sodium",
            "creatinine": "creatinine",
            "international normalized ratio": "inr",
        },
    ),
    24: PeerSpec(
        "steroid_conversion",
        "compute_steroid_conversion_explanation",
        {
            "input steroid": "input steroid",
            "target steroid": "target steroid",
        },
    ),
    25: PeerSpec(
        "has_bled_score",
        "compute_has_bled_score_explanation",
        {
            "Hypertension history": "hypertension",
            "Labile international normalized ratio": "labile_inr",
            "Liver disease criteria for the HAS-BLED rule": "liver_disease_has_bled",
            "Medication usage predisposing to bleeding": "medications_for_bleeding",
            "Number of Alcoholic Drinks Per Week": "alcoholic_drinks",
            "Prior major bleeding or predisposition to bleeding": "prior_bleeding",
            "Renal disease criteria for the HAS-BLED rule": "renal_disease_has_bled",
            "Stroke": "stroke",
            "age": "age",
        },
    ),
    26: PeerSpec(
        "sch",
        "compute_sodium_correction_hyperglycemia_explanation",
        {
            "Glucose": "glucose",
            "Sodium": "sodium",
        },
    ),
    27: PeerSpec(
        "glasgow_bleeding_score",
        "glasgow_bleeding_score_explanation",
        {
            "Blood Urea Nitrogen (BUN)": "bun",
            "Cardiac failure present": "cardiac_failure",
            "Heart Rate or Pulse": "heart_rate",
            "Hemoglobin": "hemoglobin",
            "Hepatic disease history": "hepatic_disease_history",
            "Melena present": "melena_present",
            "Recent syncope": "syncope",
            "Systolic Blood Pressure": "sys_bp",
            "sex": "sex",
        },
    ),
    28: PeerSpec(
        "apache_ii",
        "apache_ii_explanation",
        {
            "A-a gradient": "a_a_gradient",
            "Acute renal failure": "acute_renal_failure",
            "Chronic Renal Failure": "chronic_renal_failure",
            "Diastolic Blood Pressure": "dia_bp",
            "FiO₂": "fio2",
            "Glasgow Coma Score": "gcs",
            "Heart Rate or Pulse": "heart_rate",
            "Hematocrit": "hemocratit",
            "History of severe organ failure or immunocompromise": "organ_failure_immunocompromise",
            "Partial pressure of oxygen (PaO₂) for Apache II": "partial_pressure_oxygen",
            "Potassium": "potassium",
            "Sodium": "sodium",
            "Surgery Type": "surgery_type",
            "Systolic Blood Pressure": "sys_bp",
            "Temperature": "temperature",
            "White blood cell count": "wbc",
            "age": "age",
            "creatinine": "creatinine",
            "pH": "pH",
            "respiratory rate": "respiratory_rate",
        },
    ),
    29: PeerSpec(
        "psi_score",
        "psi_score_explanation",
        {
            "Altered mental status": "altered_mental_status",
            "Blood Urea Nitrogen (BUN)": "bun",
            "Cerebrovascular disease history": "cerebrovascular_disease",
            "Congestive Heart Faliure": "chf",
            "Glucose": "glucose",
            "Heart Rate or Pulse": "heart_rate",
            "Hematocrit": "hemocratit",
            "Liver disease severity": "liver_disease",
            "Neoplastic disease": "neoplastic_disease",
            "Nursing home resident": "nursing_home_resident",
            "Partial pressure of oxygen (PaO₂) for Apache II": "partial_pressure_oxygen",
            "Pleural effusion on x-ray": "pleural_effusion",
            "Renal disease": "renal_disease",
            "Sodium": "sodium",
            "Systolic Blood Pressure": "sys_bp",
            "Temperature": "temperature",
            "age": "age",
            "pH": "pH",
            "respiratory rate": "respiratory_rate",
            "sex": "sex",
        },
    ),
    30: PeerSpec(
        "sOsm",
        "compute_serum_osmolality_explanation",
        {
            "Blood Urea Nitrogen (BUN)": "bun",
            "Glucose": "glucose",
            "Sodium": "sodium",
        },
    ),
    31: PeerSpec(
        "homa_ir",
        "compute_homa_ir_explanation",
        {
            "Glucose": "glucose",
            "Insulin": "insulin",
        },
    ),
    32: PeerSpec(
        "cci",
        "compute_cci_explanation",
        {
            "AIDS": "aids",
            "Cerebrovascular Accident": "cva",
            "Chronic Obstructive Pulmonary Disease": "copd",
            "Congestive Heart Faliure": "chf",
            "Connective tissue disease": "connective_tissue_disease",
            "Dementia": "dementia",
            "Diabetes mellitus criteria for CCI rule": "diabetes_mellitus",
            "Hemiplegia": "hemiplegia",
            "Leukemia": "leukemia",
            "Liver disease severity": "liver_disease",
            "Lymphoma": "lymphoma",
            "Moderate to severe Chronic Kidney Disease": "moderate_to_severe_ckd",
            "Myocardial infarction": "mi",
            "Peptic ulcer disease": "peptic_ucler_disease",
            "Peripheral vascular disease": "peripheral_vascular_disease",
            "Solid tumor": "solid_tumor",
            "Transient Ischemic Attacks History": "tia",
            "age": "age",
        },
    ),
    33: PeerSpec(
        "feverpain",
        "compute_fever_pain_explanation",
        {
            "Absence of cough or coryza": "cough_coryza_absent",
            "Fever in past 24 hours": "fever_24_hours",
            "Purulent tonsils": "purulent_tonsils",
            "Severe tonsil inflammation": "severe_tonsil_inflammation",
            "Symptom onset ≤3 days": "symptom_onset",
        },
    ),
    36: PeerSpec(
        "caprini_score",
        "caprini_score_explanation",
        {
            "Acute Myocardial infarction": "acute_myocardial_infarction",
            "Acute spinal cord injury causing paralysis in the last month": "acute_spinal_chord_injury",
            "Body Mass Index (BMI)": "bmi",
            "Chronic Obstructive Pulmonary Disease": "copd",
            "Congestive Heart Failure in the last month": "chf",
            "Current central venous access": "current_central_venuous",
            "Current swollen legs": "current_swollen_legs",
            "Elevated anticardiolipin antibody": "elevated_anticardiolipin_antibody",
            "Elevated serum homocysteine": "serum_homocysteine",
            "Family history of thrombosis": "family_history_thrombosis",
            "Heparin-induced thrombocytopenia": "heparin_induced_thrombocytopenia",
            "Hip, pelvis, or leg fracture in the last month": "hip_pelvis_leg_fracture",
            "History of inflammatory bowel disease": "inflammatory_bowel_disease",
            "Immobilizing plaster cast in the last month": "immobilizing_plaster_case",
            "Major Surgery in the last month": "major_surgery",
            "Mobility": "mobility",
            "Multiple trauma in the last month": "multiple_trauma",
            "Other congenital or acquired thrombophilia": "congenital_acquired_thrombophilia",
            "Pneumonia in the last month": "pneumonia",
            "Positive Factor V Leiden": "positive_factor_v",
            "Positive lupus anticoagulant": "positive_lupus_anticoagulant",
            "Positive prothrombin 20210A": "positive_prothrombin",
            "Present or previous malignancy": "malignancy",
            "Previously Documented Pulmonary Embolism": "previous_pe",
            "Previously documented Deep Vein Thrombosis": "previous_dvt",
            "Sepsis in the last month": "sepsis",
            "Stroke in the last month": "stroke",
            "Surgery Type": "surgery_type",
            "Varicose veins": "varicose_veins",
            "age": "age",
            "sex": "sex",
        },
    ),
    38: PeerSpec(
        "free_water_deficit",
        "free_water_deficit_explanation",
        {
            "Sodium": "sodium",
            "age": "age",
            "sex": "sex",
            "weight": "weight",
        },
    ),
    39: PeerSpec(
        "anion_gap",
        "compute_anion_gap_explanation",
        {
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    40: PeerSpec(
        "compute_fena",
        "compute_fena_explanation",
        {
            "Sodium": "sodium",
            "Urine creatinine": "urine_creatinine",
            "Urine sodium": "urine_sodium",
            "creatinine": "creatinine",
        },
    ),
    43: PeerSpec(
        "sofa",
        "compute_sofa_explanation",
        {
            "Bilirubin": "bilirubin",
            "Continous positive airway pressure": "cpap",
            "DOBUTamine": "dobutamine",
            "DOPamine": "dopamine",
            "Diastolic Blood Pressure": "dia_bp",
            "EPINEPHrine": "epinephrine",
            "FiO₂": "fio2",
            "Glasgow Coma Score": "gcs",
            "On mechanical ventilation": "mechanical_ventilation",
            "Partial pressure of oxygen (PaO₂) for Apache II": "partial_pressure_oxygen",
            "Platelet count": "platelet_count",
            "Systolic Blood Pressure": "sys_bp",
            "Urine Output": "urine_output",
            "creatinine": "creatinine",
            "norEPINEPHrine": "norepinephrine",
        },
    ),
    44: PeerSpec(
        "ldl_calculated",
        "compute_ldl_explanation",
        {
            "Total cholesterol": "total_cholestrol",
            "Triglycerides": "triglycerides",
            "high-density lipoprotein cholesterol": "hdl_cholestrol",
        },
    ),
    45: PeerSpec(
        "curb_65",
        "curb_65_explanation",
        {
            "Blood Urea Nitrogen (BUN)": "bun",
            "Confusion": "confusion",
            "Diastolic Blood Pressure": "dia_bp",
            "Systolic Blood Pressure": "sys_bp",
            "age": "age",
            "respiratory rate": "respiratory_rate",
        },
    ),
    46: PeerSpec(
        "framingham_risk_score",
        "framingham_risk_score_explanation",
        {
            "Blood pressure being treated with medicines": "bp_medicine",
            "Smoker": "smoker",
            "Systolic Blood Pressure": "sys_bp",
            "Total cholesterol": "total_cholestrol",
            "age": "age",
            "high-density lipoprotein cholesterol": "hdl_cholestrol",
            "sex": "sex",
        },
    ),
    48: PeerSpec(
        "perc_rule",
        "compute_perc_rule_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "Hemoptysis": "hemoptysis",
            "Hormone use": "hormonal_use",
            "O₂ saturation percentage": "oxygen_sat",
            "Previously Documented Pulmonary Embolism": "previous_pe",
            "Previously documented Deep Vein Thrombosis": "previous_dvt",
            "Recent surgery or trauma": "recent_surgery_or_trauma",
            "Unilateral Leg Swelling": "unilateral_leg_swelling",
            "age": "age",
        },
    ),
    49: PeerSpec("mme", "mme_explanation", passthrough=True),
    51: PeerSpec(
        "sirs_criteria",
        "sirs_criteria_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "PaCO₂": "paco2",
            "Temperature": "temperature",
            "White blood cell count": "wbc",
            "respiratory rate": "respiratory_rate",
        },
    ),
    56: PeerSpec(
        "qt_calculator_fredericia",
        "fredericia_calculator_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "QT interval": "qt_interval",
        },
    ),
    57: PeerSpec(
        "qt_calculator_framingham",
        "framingham_calculator_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "QT interval": "qt_interval",
        },
    ),
    58: PeerSpec(
        "qt_calculator_hodges",
        "hodges_calculator_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "QT interval": "qt_interval",
        },
    ),
    59: PeerSpec(
        "qt_calculator_rautaharju",
        "rautaharju_calculator_explanation",
        {
            "Heart Rate or Pulse": "heart_rate",
            "QT interval": "qt_interval",
        },
    ),
    60: PeerSpec(
        "bsa_calculator",
        "bsa_calculator_explaination",
        {
            "height": "height",
            "weight": "weight",
        },
    ),
    61: PeerSpec(
        "target_weight",
        "targetweight_explanation",
        {
            "Body Mass Index (BMI)": "body_mass_index",
            "height": "height",
        },
    ),
    62: PeerSpec(
        "adjusted_body_weight",
        "abw_explanation",
        {
            "height": "height",
            "sex": "sex",
            "weight": "weight",
        },
    ),
    63: PeerSpec(
        "delta_gap",
        "compute_delta_gap_explanation",
        {
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    64: PeerSpec(
        "delta_ratio",
        "compute_delta_ratio_explanation",
        {
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    65: PeerSpec(
        "albumin_corrected_anion",
        "compute_albumin_corrected_anion_explanation",
        {
            "Albumin": "albumin",
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    66: PeerSpec(
        "albumin_corrected_delta_gap",
        "compute_albumin_corrected_delta_gap_explanation",
        {
            "Albumin": "albumin",
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    67: PeerSpec(
        "albumin_delta_ratio",
        "compute_albumin_delta_ratio_explanation",
        {
            "Albumin": "albumin",
            "Bicarbonate": "bicarbonate",
            "Chloride": "chloride",
            "Sodium": "sodium",
        },
    ),
    68: PeerSpec(
        "conception_date",
        "add_2_weeks_explanation",
        {
            "Last menstrual date": "menstrual_date",
            "cycle length": "cycle_length",
        },
    ),
    69: PeerSpec(
        "gestational_age",
        "compute_gestational_age_explanation",
        {
            "Current Date": "current_date",
            "Last menstrual date": "menstrual_date",
        },
    ),
}


def peer_function(calculator_id: int) -> Callable[[dict[str, Any]], Any]:
    """The peer's function for a calculator; raises ImportError when the peer cannot load it."""
    spec = PEER[calculator_id]
    module = importlib.import_module(f"medcalc.{spec.module}")
    fn: Callable[[dict[str, Any]], Any] = getattr(module, spec.function)
    return fn


def _shape(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
        return (value[0], value[1])
    return value


def peer_params(calculator_id: int, entities: Mapping[str, Any]) -> dict[str, Any]:
    spec = PEER[calculator_id]
    if spec.passthrough:
        return {k: _shape(v) for k, v in entities.items()}
    return {spec.keys[k]: _shape(v) for k, v in entities.items() if k in spec.keys}
