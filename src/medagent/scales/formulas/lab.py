"""Laboratory formulas: kidney function, electrolytes and acid-base, lipids, liver scores.

Each formula reads its inputs in the units its source publication uses (the context converts and
records the conversion), uses the named constants below, and records every intermediate value with
``ctx.step`` so that the explanation of a result is the trace of what was computed. Nothing is
rounded here except where the source itself prescribes a rounding step (MELD-Na, MELD 3.0).
"""

from __future__ import annotations

import math

from medagent.errors import InputError, Problem
from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula

# --------------------------------------------------------------------------- kidney function

# Cockcroft & Gault 1976: CrCl = (140 - age) x weight / (72 x SCr), 15 % less in women.
CG_AGE_OFFSET = 140.0  # years
CG_DIVISOR = 72.0  # (mg/dL)^-1 scaling of the 1976 equation
CG_FEMALE_FACTOR = 0.85  # "15 % less in females"
# Devine 1974 ideal body weight: base weight (kg) at 60 inches, plus 2.3 kg per inch above.
IBW_BASE_MALE_KG = 50.0
IBW_BASE_FEMALE_KG = 45.5
IBW_KG_PER_INCH = 2.3
IBW_BASE_HEIGHT_IN = 60.0
CM_PER_INCH = 2.54
# Adjusted body weight: IBW + 0.4 x (actual - IBW).
ABW_FRACTION = 0.4
# WHO BMI cut-offs (kg/m2) used by the weight-by-BMI rule.
BMI_UNDERWEIGHT_BELOW = 18.5
BMI_OVERWEIGHT_FROM = 25.0

# CKD-EPI 2021 creatinine equation (Inker 2021), race-free.
CKD_EPI_2021_CONSTANT = 142.0
CKD_EPI_2021_KAPPA = {"female": 0.7, "male": 0.9}  # mg/dL
CKD_EPI_2021_ALPHA = {"female": -0.241, "male": -0.302}
CKD_EPI_2021_HIGH_EXPONENT = -1.200
CKD_EPI_2021_AGE_BASE = 0.9938  # per year of age
CKD_EPI_2021_FEMALE_FACTOR = 1.012

# IDMS-traceable 4-variable MDRD Study equation (Levey 2006).
MDRD_CONSTANT = 175.0
MDRD_CREATININE_EXPONENT = -1.154
MDRD_AGE_EXPONENT = -0.203
MDRD_FEMALE_FACTOR = 0.742
MDRD_BLACK_FACTOR = 1.212

# KDIGO 2012 AKI staging thresholds.
AKI_ABSOLUTE_RISE_MG_DL = 0.3  # rise within 48 h that defines AKI (stage 1)
AKI_RATIO_STAGE = ((3.0, 3), (2.0, 2), (1.5, 1))  # creatinine / baseline, highest first
AKI_STAGE3_CREATININE_MG_DL = 4.0  # rise to >= 4.0 mg/dL gives stage 3
AKI_PEDIATRIC_AGE_BELOW = 18.0  # years; the eGFR < 35 criterion applies below this age

# --------------------------------------------------------------------------- electrolytes

NORMAL_ALBUMIN_G_DL = 4.0  # reference albumin of the Payne and Figge corrections (40 g/L)
PAYNE_CALCIUM_PER_G_DL = 0.8  # mg/dL calcium per g/dL albumin (= 0.02 mmol/L per g/L)
FIGGE_ANION_GAP_PER_G_DL = 2.5  # mEq/L anion gap per g/dL albumin (= 0.25 per g/L)
NORMAL_ANION_GAP = 12.0  # mEq/L, the expected gap of the delta-gap method
NORMAL_BICARBONATE = 24.0  # mEq/L, the expected bicarbonate of the delta-ratio method
GLUCOSE_REFERENCE_MG_DL = 100.0  # glucose above which the sodium correction applies
SODIUM_CORRECTION_PER_100_MG_DL = {"katz": 1.6, "hillier": 2.4}  # mEq/L per 100 mg/dL glucose
OSMOLALITY_SODIUM_FACTOR = 2.0  # sodium and its accompanying anions
BUN_MG_DL_PER_MMOL = 2.8  # mg/dL of urea nitrogen per mmol/L of urea
GLUCOSE_MG_DL_PER_MMOL = 18.0  # mg/dL of glucose per mmol/L
IDEAL_SODIUM = 140.0  # mmol/L, the target of the free water deficit
HOMA_IR_DIVISOR_MG_DL = 405.0  # insulin (uU/mL) x glucose (mg/dL) / 405 = HOMA1-IR
PERCENT = 100.0

# Total body water as a fraction of weight (Adrogue & Madias 2000): children 0.6; adults below 65
# men 0.6, women 0.5; 65 and over men 0.5, women 0.45.
TBW_CHILD = 0.6
TBW_ADULT = {"male": 0.6, "female": 0.5}
TBW_ELDERLY = {"male": 0.5, "female": 0.45}
ADULT_FROM_AGE = 18.0
ELDERLY_FROM_AGE = 65.0

# --------------------------------------------------------------------------- lipids, liver

FRIEDEWALD_TG_DIVISOR = 5.0  # VLDL cholesterol = triglycerides / 5 (mg/dL)

# MELD(i) and MELD-Na, OPTN policy (2016 implementation of Kim 2008).
MELD_CREATININE_COEF = 0.957
MELD_BILIRUBIN_COEF = 0.378
MELD_INR_COEF = 1.120
MELD_CONSTANT = 0.643
MELD_LAB_FLOOR = 1.0  # bilirubin, creatinine and INR below 1.0 are set to 1.0
MELD_CREATININE_CAP = 4.0  # mg/dL; also the value used after dialysis
MELD_NA_APPLIES_ABOVE = 11.0  # the sodium term is added when MELD(i) > 11
MELD_NA_LOW = 125.0  # mmol/L bounds of sodium
MELD_NA_HIGH = 137.0
MELD_NA_LINEAR = 1.32
MELD_NA_INTERACTION = 0.033
MELD_MAX = 40.0

# MELD 3.0 (Kim 2021).
MELD3_FEMALE = 1.33
MELD3_BILIRUBIN = 4.56
MELD3_SODIUM = 0.82
MELD3_SODIUM_BILIRUBIN = 0.24
MELD3_INR = 9.09
MELD3_CREATININE = 11.14
MELD3_ALBUMIN = 1.85
MELD3_ALBUMIN_CREATININE = 1.83
MELD3_CONSTANT = 6.0
MELD3_CREATININE_CAP = 3.0  # mg/dL; also the value used after dialysis
MELD3_ALBUMIN_LOW = 1.5  # g/dL bounds of albumin
MELD3_ALBUMIN_HIGH = 3.5

# ALBI (Johnson 2015): 0.66 x log10(bilirubin umol/L) - 0.085 x albumin (g/L).
ALBI_BILIRUBIN_COEF = 0.66
ALBI_ALBUMIN_COEF = -0.085


# =========================================================================== kidney function


def _ideal_body_weight(ctx: FormulaContext, sex: str) -> float:
    height_cm = ctx.q("height", "cm")
    inches = ctx.step(
        "Height in inches", height_cm / CM_PER_INCH, formula="height (cm) / 2.54", unit="[in_i]"
    )
    base = IBW_BASE_MALE_KG if sex == "male" else IBW_BASE_FEMALE_KG
    return ctx.step(
        "Ideal body weight (Devine)",
        base + IBW_KG_PER_INCH * (inches - IBW_BASE_HEIGHT_IN),
        formula=f"{base:g} + 2.3 × (height in inches − 60)",
        unit="kg",
    )


def _adjusted_body_weight(ctx: FormulaContext, actual: float, ibw: float) -> float:
    return ctx.step(
        "Adjusted body weight",
        ibw + ABW_FRACTION * (actual - ibw),
        formula="IBW + 0.4 × (actual weight − IBW)",
        detail=f"{ibw:.6g} + 0.4 × ({actual:.6g} − {ibw:.6g})",
        unit="kg",
    )


def _weight_for_clearance(ctx: FormulaContext, sex: str) -> float:
    basis = ctx.choice("weight_basis")
    actual = ctx.q("weight", "kg")
    if basis == "actual":
        ctx.note("Weight basis: actual body weight.")
        return actual
    ibw = _ideal_body_weight(ctx, sex)
    if basis == "ideal":
        ctx.note("Weight basis: ideal body weight.")
        return ibw
    if basis == "adjusted":
        ctx.note("Weight basis: adjusted body weight.")
        return _adjusted_body_weight(ctx, actual, ibw)
    height_m = ctx.q("height", "m")
    bmi = ctx.step("BMI", actual / height_m**2, formula="weight / height²", unit="kg/m2")
    if bmi < BMI_UNDERWEIGHT_BELOW:
        ctx.note("BMI < 18.5 (underweight): actual body weight is used.")
        return actual
    if bmi < BMI_OVERWEIGHT_FROM:
        ctx.note("18.5 ≤ BMI < 25 (normal): the lower of ideal and actual body weight is used.")
        return ctx.step("Weight used", min(ibw, actual), formula="min(IBW, actual)", unit="kg")
    ctx.note("BMI ≥ 25 (overweight or obese): adjusted body weight is used.")
    return _adjusted_body_weight(ctx, actual, ibw)


@formula("cockcroft_gault")
def cockcroft_gault(ctx: FormulaContext) -> float:
    """Creatinine clearance (mL/min) by Cockcroft & Gault, on the chosen weight basis."""
    sex = ctx.choice("sex")
    age = ctx.q("age", "a")
    scr = ctx.q("creatinine", "mg/dL")
    weight = _weight_for_clearance(ctx, sex)
    factor = CG_FEMALE_FACTOR if sex == "female" else 1.0
    return ctx.step(
        "Creatinine clearance",
        (CG_AGE_OFFSET - age) * weight * factor / (CG_DIVISOR * scr),
        formula="(140 − age) × weight × (0.85 if female) / (72 × creatinine)",
        detail=f"(140 − {age:g}) × {weight:.6g} × {factor:g} / (72 × {scr:.6g})",
        unit="mL/min",
    )


@formula("ckd_epi_2021")
def ckd_epi_2021(ctx: FormulaContext) -> float:
    """eGFR (mL/min/1.73 m²) by the race-free 2021 CKD-EPI creatinine equation."""
    sex = ctx.choice("sex")
    age = ctx.q("age", "a")
    scr = ctx.q("creatinine", "mg/dL")
    kappa = CKD_EPI_2021_KAPPA[sex]
    alpha = CKD_EPI_2021_ALPHA[sex]
    ratio = ctx.step("Creatinine / κ", scr / kappa, formula=f"creatinine / {kappa:g}")
    low = min(ratio, 1.0) ** alpha
    high = max(ratio, 1.0) ** CKD_EPI_2021_HIGH_EXPONENT
    female = CKD_EPI_2021_FEMALE_FACTOR if sex == "female" else 1.0
    return ctx.step(
        "eGFR (CKD-EPI 2021)",
        CKD_EPI_2021_CONSTANT * low * high * CKD_EPI_2021_AGE_BASE**age * female,
        formula=(
            f"142 × min(Scr/κ, 1)^{alpha:g} × max(Scr/κ, 1)^−1.200 × 0.9938^age"
            + (" × 1.012" if sex == "female" else "")
        ),
        detail=f"κ = {kappa:g}, Scr/κ = {ratio:.6g}, age = {age:g}",
        unit="mL/min/{1.73_m2}",
    )


@formula("mdrd_gfr")
def mdrd_gfr(ctx: FormulaContext) -> float:
    """eGFR (mL/min/1.73 m²) by the IDMS-traceable 4-variable MDRD Study equation."""
    sex = ctx.choice("sex")
    age = ctx.q("age", "a")
    scr = ctx.q("creatinine", "mg/dL")
    black = ctx.flag("black_race")
    female = MDRD_FEMALE_FACTOR if sex == "female" else 1.0
    race = MDRD_BLACK_FACTOR if black else 1.0
    return ctx.step(
        "eGFR (MDRD, IDMS-traceable)",
        MDRD_CONSTANT * scr**MDRD_CREATININE_EXPONENT * age**MDRD_AGE_EXPONENT * female * race,
        formula="175 × Scr^−1.154 × age^−0.203 × (0.742 if female) × (1.212 if Black)",
        detail=f"Scr = {scr:.6g} mg/dL, age = {age:g}, sex factor {female:g}, race factor {race:g}",
        unit="mL/min/{1.73_m2}",
    )


@formula("kdigo_aki_stage")
def kdigo_aki_stage(ctx: FormulaContext) -> float:
    """KDIGO 2012 AKI stage (0 = criteria not met): the highest stage any criterion reaches."""
    scr = ctx.q("creatinine", "mg/dL")
    baseline = ctx.q("baseline_creatinine", "mg/dL")
    rise = ctx.q("creatinine_rise_48h", "mg/dL")
    ratio = ctx.step("Creatinine / baseline", scr / baseline, formula="creatinine / baseline")
    stage = 0
    by_ratio = next((s for limit, s in AKI_RATIO_STAGE if ratio >= limit), 0)
    if by_ratio:
        ctx.note(f"Creatinine {ratio:.3g} × baseline: stage {by_ratio}.")
        stage = max(stage, by_ratio)
    creatinine_aki = ratio >= AKI_RATIO_STAGE[-1][0] or rise >= AKI_ABSOLUTE_RISE_MG_DL
    if rise >= AKI_ABSOLUTE_RISE_MG_DL:
        ctx.note(f"Rise of {rise:.3g} mg/dL within 48 h (≥ 0.3): stage 1.")
        stage = max(stage, 1)
    if creatinine_aki and scr >= AKI_STAGE3_CREATININE_MG_DL:
        ctx.note("Creatinine has risen to ≥ 4.0 mg/dL: stage 3.")
        stage = 3
    if ctx.flag("uo_below_0_5_6h"):
        ctx.note("Urine output < 0.5 mL/kg/h for ≥ 6 h: stage 1.")
        stage = max(stage, 1)
    if ctx.flag("uo_below_0_5_12h"):
        ctx.note("Urine output < 0.5 mL/kg/h for ≥ 12 h: stage 2.")
        stage = max(stage, 2)
    if ctx.flag("uo_below_0_3_24h"):
        ctx.note("Urine output < 0.3 mL/kg/h for ≥ 24 h: stage 3.")
        stage = 3
    if ctx.flag("anuria_12h"):
        ctx.note("Anuria for ≥ 12 h: stage 3.")
        stage = 3
    if ctx.flag("kidney_replacement_therapy"):
        ctx.note("Kidney replacement therapy started: stage 3.")
        stage = 3
    if ctx.q("age", "a") < AKI_PEDIATRIC_AGE_BELOW and ctx.flag("pediatric_egfr_below_35"):
        ctx.note("Age < 18 with eGFR fallen below 35 mL/min/1.73 m²: stage 3.")
        stage = 3
    if stage == 0:
        ctx.note("No KDIGO AKI criterion is met.")
    return float(stage)


# =========================================================================== electrolytes


def _anion_gap(ctx: FormulaContext) -> float:
    sodium = ctx.q("sodium", "meq/L")
    chloride = ctx.q("chloride", "meq/L")
    bicarbonate = ctx.q("bicarbonate", "meq/L")
    return ctx.step(
        "Anion gap",
        sodium - (chloride + bicarbonate),
        formula="Na − (Cl + HCO₃)",
        detail=f"{sodium:g} − ({chloride:g} + {bicarbonate:g})",
        unit="meq/L",
    )


def _albumin_corrected_anion_gap(ctx: FormulaContext) -> float:
    gap = _anion_gap(ctx)
    albumin = ctx.q("albumin", "g/dL")
    return ctx.step(
        "Albumin-corrected anion gap",
        gap + FIGGE_ANION_GAP_PER_G_DL * (NORMAL_ALBUMIN_G_DL - albumin),
        formula="anion gap + 2.5 × (4.0 − albumin g/dL)",
        detail=f"{gap:.6g} + 2.5 × (4.0 − {albumin:.6g})",
        unit="meq/L",
    )


def _delta_gap(ctx: FormulaContext, gap: float, label: str) -> float:
    return ctx.step(
        label, gap - NORMAL_ANION_GAP, formula="gap − 12", detail=f"{gap:.6g} − 12", unit="meq/L"
    )


def _delta_ratio(ctx: FormulaContext, delta_gap: float, label: str) -> float:
    bicarbonate = ctx.q("bicarbonate", "meq/L")
    fall = ctx.step(
        "Fall in bicarbonate", NORMAL_BICARBONATE - bicarbonate, formula="24 − HCO₃", unit="meq/L"
    )
    if fall == 0:
        raise InputError(
            "delta ratio",
            [Problem("bicarbonate", "equals 24 mEq/L: the ratio is undefined (no fall)")],
        )
    return ctx.step(
        label,
        delta_gap / fall,
        formula="delta gap / (24 − HCO₃)",
        detail=f"{delta_gap:.6g} / {fall:.6g}",
    )


@formula("anion_gap")
def anion_gap(ctx: FormulaContext) -> float:
    """Serum anion gap Na − (Cl + HCO₃), mEq/L."""
    return _anion_gap(ctx)


@formula("delta_gap")
def delta_gap(ctx: FormulaContext) -> float:
    """Delta gap: anion gap − 12, mEq/L."""
    return _delta_gap(ctx, _anion_gap(ctx), "Delta gap")


@formula("delta_ratio")
def delta_ratio(ctx: FormulaContext) -> float:
    """Delta ratio: (anion gap − 12) / (24 − HCO₃)."""
    dg = _delta_gap(ctx, _anion_gap(ctx), "Delta gap")
    return _delta_ratio(ctx, dg, "Delta ratio")


@formula("albumin_corrected_anion_gap")
def albumin_corrected_anion_gap(ctx: FormulaContext) -> float:
    """Anion gap corrected for albumin (Figge): AG + 2.5 × (4 − albumin g/dL)."""
    return _albumin_corrected_anion_gap(ctx)


@formula("albumin_corrected_delta_gap")
def albumin_corrected_delta_gap(ctx: FormulaContext) -> float:
    """Albumin-corrected anion gap − 12, mEq/L."""
    return _delta_gap(ctx, _albumin_corrected_anion_gap(ctx), "Albumin-corrected delta gap")


@formula("albumin_corrected_delta_ratio")
def albumin_corrected_delta_ratio(ctx: FormulaContext) -> float:
    """(Albumin-corrected anion gap − 12) / (24 − HCO₃)."""
    dg = _delta_gap(ctx, _albumin_corrected_anion_gap(ctx), "Albumin-corrected delta gap")
    return _delta_ratio(ctx, dg, "Albumin-corrected delta ratio")


@formula("calcium_corrected")
def calcium_corrected(ctx: FormulaContext) -> float:
    """Total calcium adjusted to an albumin of 4.0 g/dL: Ca + 0.8 × (4.0 − albumin), mg/dL."""
    calcium = ctx.q("calcium", "mg/dL")
    albumin = ctx.q("albumin", "g/dL")
    return ctx.step(
        "Corrected calcium",
        calcium + PAYNE_CALCIUM_PER_G_DL * (NORMAL_ALBUMIN_G_DL - albumin),
        formula="calcium + 0.8 × (4.0 − albumin g/dL)",
        detail=f"{calcium:.6g} + 0.8 × (4.0 − {albumin:.6g})",
        unit="mg/dL",
    )


@formula("sodium_corrected_hyperglycemia")
def sodium_corrected_hyperglycemia(ctx: FormulaContext) -> float:
    """Sodium corrected for glucose: Na + k × (glucose − 100) / 100, k = 1.6 (Katz) or 2.4."""
    sodium = ctx.q("sodium", "meq/L")
    glucose = ctx.q("glucose", "mg/dL")
    method = ctx.choice("correction_factor")
    per_100 = SODIUM_CORRECTION_PER_100_MG_DL[method]
    return ctx.step(
        "Corrected sodium",
        sodium + per_100 * (glucose - GLUCOSE_REFERENCE_MG_DL) / 100.0,
        formula=f"Na + {per_100:g} × (glucose mg/dL − 100) / 100",
        detail=f"{sodium:g} + {per_100:g} × ({glucose:.6g} − 100) / 100",
        unit="meq/L",
    )


@formula("serum_osmolality")
def serum_osmolality(ctx: FormulaContext) -> float:
    """Calculated serum osmolality 2 × Na + BUN / 2.8 + glucose / 18, mOsm/kg."""
    sodium = ctx.q("sodium", "mmol/L")
    bun = ctx.q("bun", "mg/dL")
    glucose = ctx.q("glucose", "mg/dL")
    return ctx.step(
        "Calculated osmolality",
        OSMOLALITY_SODIUM_FACTOR * sodium
        + bun / BUN_MG_DL_PER_MMOL
        + glucose / GLUCOSE_MG_DL_PER_MMOL,
        formula="2 × Na + BUN (mg/dL) / 2.8 + glucose (mg/dL) / 18",
        detail=f"2 × {sodium:g} + {bun:.6g} / 2.8 + {glucose:.6g} / 18",
        unit="mosm/kg",
    )


@formula("homa_ir")
def homa_ir(ctx: FormulaContext) -> float:
    """HOMA1-IR: fasting insulin (µU/mL) × fasting glucose (mg/dL) / 405."""
    insulin = ctx.q("insulin", "u[IU]/mL")
    glucose = ctx.q("glucose", "mg/dL")
    return ctx.step(
        "HOMA-IR",
        insulin * glucose / HOMA_IR_DIVISOR_MG_DL,
        formula="insulin (µU/mL) × glucose (mg/dL) / 405",
        detail=f"{insulin:.6g} × {glucose:.6g} / 405",
    )


def _total_body_water_fraction(ctx: FormulaContext) -> float:
    age = ctx.q("age", "a")
    sex = ctx.choice("sex")
    if age < ADULT_FROM_AGE:
        fraction, why = TBW_CHILD, "child (< 18 years)"
    elif age < ELDERLY_FROM_AGE:
        fraction, why = TBW_ADULT[sex], f"adult {sex} (18–64 years)"
    else:
        fraction, why = TBW_ELDERLY[sex], f"older {sex} (≥ 65 years)"
    return ctx.step("Total body water fraction", fraction, detail=why)


@formula("free_water_deficit")
def free_water_deficit(ctx: FormulaContext) -> float:
    """Free water deficit (L) = TBW fraction × weight × (Na / 140 − 1)."""
    fraction = _total_body_water_fraction(ctx)
    weight = ctx.q("weight", "kg")
    sodium = ctx.q("sodium", "mmol/L")
    return ctx.step(
        "Free water deficit",
        fraction * weight * (sodium / IDEAL_SODIUM - 1.0),
        formula="TBW fraction × weight × (Na / 140 − 1)",
        detail=f"{fraction:g} × {weight:.6g} × ({sodium:g} / 140 − 1)",
        unit="L",
    )


@formula("fena")
def fena(ctx: FormulaContext) -> float:
    """Fractional excretion of sodium (%) = (U_Na × P_Cr) / (P_Na × U_Cr) × 100."""
    p_na = ctx.q("sodium", "meq/L")
    u_na = ctx.q("urine_sodium", "meq/L")
    p_cr = ctx.q("creatinine", "mg/dL")
    u_cr = ctx.q("urine_creatinine", "mg/dL")
    return ctx.step(
        "FENa",
        u_na * p_cr / (p_na * u_cr) * PERCENT,
        formula="(urine Na × plasma Cr) / (plasma Na × urine Cr) × 100",
        detail=f"({u_na:g} × {p_cr:.6g}) / ({p_na:g} × {u_cr:.6g}) × 100",
        unit="%",
    )


# =========================================================================== lipids


@formula("ldl_friedewald")
def ldl_friedewald(ctx: FormulaContext) -> float:
    """LDL cholesterol (mg/dL) = total − HDL − triglycerides / 5 (Friedewald)."""
    total = ctx.q("total_cholesterol", "mg/dL")
    hdl = ctx.q("hdl_cholesterol", "mg/dL")
    tg = ctx.q("triglycerides", "mg/dL")
    vldl = ctx.step("VLDL cholesterol", tg / FRIEDEWALD_TG_DIVISOR, formula="TG / 5", unit="mg/dL")
    return ctx.step(
        "LDL cholesterol (Friedewald)",
        total - hdl - vldl,
        formula="total cholesterol − HDL − TG / 5",
        detail=f"{total:.6g} − {hdl:.6g} − {vldl:.6g}",
        unit="mg/dL",
    )


# =========================================================================== liver


@formula("fib4")
def fib4(ctx: FormulaContext) -> float:
    """FIB-4 = age × AST / (platelets (10⁹/L) × √ALT)."""
    age = ctx.q("age", "a")
    ast = ctx.q("ast", "U/L")
    alt = ctx.q("alt", "U/L")
    platelets = ctx.q("platelets", "10*9/L")
    return ctx.step(
        "FIB-4",
        age * ast / (platelets * math.sqrt(alt)),
        formula="age × AST / (platelets × √ALT)",
        detail=f"{age:g} × {ast:g} / ({platelets:.6g} × √{alt:g})",
    )


def _meld_creatinine(ctx: FormulaContext, cap: float) -> float:
    scr = ctx.q("creatinine", "mg/dL")
    dialysis = ctx.flag("dialysis_twice_week")
    cvvhd = ctx.flag("cvvhd_24h")
    if dialysis or cvvhd:
        ctx.note(f"Dialysis ≥ 2 times or CVVHD ≥ 24 h in the past week: creatinine set to {cap:g}.")
        return cap
    bounded = min(max(scr, MELD_LAB_FLOOR), cap)
    if bounded != scr:
        ctx.note(f"Creatinine {scr:.6g} mg/dL bounded to {bounded:g}.")
    return bounded


def _floored(ctx: FormulaContext, input_id: str, unit: str | None, name: str) -> float:
    value = ctx.q(input_id, unit)
    if value < MELD_LAB_FLOOR:
        ctx.note(f"{name} {value:.6g} is below 1.0: set to 1.0.")
        return MELD_LAB_FLOOR
    return value


def _bounded(ctx: FormulaContext, value: float, low: float, high: float, name: str) -> float:
    bounded = min(max(value, low), high)
    if bounded != value:
        ctx.note(f"{name} {value:.6g} bounded to {bounded:g}.")
    return bounded


@formula("meld_na")
def meld_na(ctx: FormulaContext) -> float:
    """MELD-Na as implemented by OPTN/UNOS in 2016 (rounded MELD(i), sodium term if > 11)."""
    scr = _meld_creatinine(ctx, MELD_CREATININE_CAP)
    bili = _floored(ctx, "bilirubin", "mg/dL", "Bilirubin")
    inr = _floored(ctx, "inr", None, "INR")
    raw = ctx.step(
        "MELD(i)",
        MELD_CREATININE_COEF * math.log(scr)
        + MELD_BILIRUBIN_COEF * math.log(bili)
        + MELD_INR_COEF * math.log(inr)
        + MELD_CONSTANT,
        formula="0.957 × ln(Cr) + 0.378 × ln(bilirubin) + 1.120 × ln(INR) + 0.643",
        detail=f"0.957 × ln({scr:.6g}) + 0.378 × ln({bili:.6g}) + 1.120 × ln({inr:.6g}) + 0.643",
    )
    meld_i = ctx.step(
        "MELD(i) rounded to the tenth × 10",
        float(_round_half_up(raw * 10)),
        formula="round(MELD(i), 1) × 10",
    )
    if meld_i <= MELD_NA_APPLIES_ABOVE:
        ctx.note("MELD(i) ≤ 11: the sodium term is not applied.")
        return float(meld_i)
    sodium = _bounded(ctx, ctx.q("sodium", "mmol/L"), MELD_NA_LOW, MELD_NA_HIGH, "Sodium")
    value = ctx.step(
        "MELD-Na",
        meld_i
        + MELD_NA_LINEAR * (MELD_NA_HIGH - sodium)
        - MELD_NA_INTERACTION * meld_i * (MELD_NA_HIGH - sodium),
        formula="MELD(i) + 1.32 × (137 − Na) − 0.033 × MELD(i) × (137 − Na)",
        detail=f"{meld_i:g} + 1.32 × (137 − {sodium:g}) − 0.033 × {meld_i:g} × (137 − {sodium:g})",
    )
    return float(min(_round_half_up(value), MELD_MAX))


@formula("meld_3")
def meld_3(ctx: FormulaContext) -> float:
    """MELD 3.0 (Kim 2021), bounded inputs, rounded to an integer, at most 40."""
    female = ctx.choice("sex") == "female"
    scr = _meld_creatinine(ctx, MELD3_CREATININE_CAP)
    bili = _floored(ctx, "bilirubin", "mg/dL", "Bilirubin")
    inr = _floored(ctx, "inr", None, "INR")
    sodium = _bounded(ctx, ctx.q("sodium", "mmol/L"), MELD_NA_LOW, MELD_NA_HIGH, "Sodium")
    albumin = _bounded(
        ctx, ctx.q("albumin", "g/dL"), MELD3_ALBUMIN_LOW, MELD3_ALBUMIN_HIGH, "Albumin"
    )
    na_gap = MELD_NA_HIGH - sodium
    alb_gap = MELD3_ALBUMIN_HIGH - albumin
    value = ctx.step(
        "MELD 3.0",
        MELD3_FEMALE * female
        + MELD3_BILIRUBIN * math.log(bili)
        + MELD3_SODIUM * na_gap
        - MELD3_SODIUM_BILIRUBIN * na_gap * math.log(bili)
        + MELD3_INR * math.log(inr)
        + MELD3_CREATININE * math.log(scr)
        + MELD3_ALBUMIN * alb_gap
        - MELD3_ALBUMIN_CREATININE * alb_gap * math.log(scr)
        + MELD3_CONSTANT,
        formula=(
            "1.33 × female + 4.56 × ln(bili) + 0.82 × (137 − Na) − 0.24 × (137 − Na) × ln(bili)"
            " + 9.09 × ln(INR) + 11.14 × ln(Cr) + 1.85 × (3.5 − alb) − 1.83 × (3.5 − alb) × ln(Cr)"
            " + 6"
        ),
        detail=(
            f"female {int(female)}, bilirubin {bili:.6g}, Na {sodium:g}, INR {inr:.6g}, "
            f"Cr {scr:.6g}, albumin {albumin:.6g}"
        ),
    )
    return float(min(_round_half_up(value), MELD_MAX))


@formula("albi")
def albi(ctx: FormulaContext) -> float:
    """ALBI score = 0.66 × log10(bilirubin µmol/L) − 0.085 × albumin (g/L)."""
    bili = ctx.q("bilirubin", "umol/L")
    albumin = ctx.q("albumin", "g/L")
    return ctx.step(
        "ALBI score",
        ALBI_BILIRUBIN_COEF * math.log10(bili) + ALBI_ALBUMIN_COEF * albumin,
        formula="0.66 × log10(bilirubin µmol/L) − 0.085 × albumin g/L",
        detail=f"0.66 × log10({bili:.6g}) − 0.085 × {albumin:.6g}",
    )


def _round_half_up(value: float) -> int:
    """Round to the nearest integer, halves upward (as the policies state), not to even."""
    return math.floor(value + 0.5)
