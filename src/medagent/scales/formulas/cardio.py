"""Cardiovascular formulas: risk-factor counts, Framingham (ATP III) and pooled cohort equations."""

from __future__ import annotations

import math
from dataclasses import dataclass

from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula

# --------------------------------------------------------------------------- risk-factor counts

# HEART score (Six 2008, Backus 2013): the risk factors that are counted (atherosclerotic
# disease is scored separately, as 2 points on its own).
HEART_RISK_FACTORS = (
    "hypertension",
    "hypercholesterolemia",
    "diabetes",
    "obesity",
    "smoking",
    "family_history",
)

# TIMI risk score for UA/NSTEMI (Antman 2000): the coronary risk factors of the
# "at least 3 risk factors" item.
TIMI_RISK_FACTORS = (
    "family_history",
    "hypertension",
    "hypercholesterolemia",
    "diabetes",
    "current_smoker",
)


def _count_present(ctx: FormulaContext, ids: tuple[str, ...], label: str) -> float:
    present = [i for i in ids if ctx.flag(i)]
    return ctx.step(
        label,
        float(len(present)),
        formula="number of risk factors present",
        detail=", ".join(present) if present else "none",
    )


@formula("heart_risk_factor_count")
def heart_risk_factor_count(ctx: FormulaContext) -> float:
    """Number of HEART risk factors present (0–6)."""
    return _count_present(ctx, HEART_RISK_FACTORS, "HEART risk factors present")


@formula("timi_risk_factor_count")
def timi_risk_factor_count(ctx: FormulaContext) -> float:
    """Number of coronary risk factors present for the TIMI UA/NSTEMI score (0–5)."""
    return _count_present(ctx, TIMI_RISK_FACTORS, "TIMI coronary risk factors present")


# --------------------------------------------------------------------------- Framingham (ATP III)


@dataclass(frozen=True, slots=True)
class _FraminghamModel:
    """Sex-specific Cox model of the ATP III Framingham 10-year hard CHD risk (mg/dL, mm Hg)."""

    ln_age: float
    ln_total_chol: float
    ln_hdl: float
    ln_sbp: float
    bp_treated: float
    smoker: float
    ln_age_x_ln_total_chol: float
    ln_age_x_smoker: float
    ln_age_squared: float
    constant: float  # subtracted from the linear predictor
    baseline_survival: float  # 10-year survival at a linear predictor of 0
    smoking_age_cap: float  # age above which ln(age) × smoker uses this age


# ATP III (NCEP 2001) Framingham hard CHD equations, men.
FRAMINGHAM_MEN = _FraminghamModel(
    ln_age=52.00961,
    ln_total_chol=20.014077,
    ln_hdl=-0.905964,
    ln_sbp=1.305784,
    bp_treated=0.241549,
    smoker=12.096316,
    ln_age_x_ln_total_chol=-4.605038,
    ln_age_x_smoker=-2.84367,
    ln_age_squared=-2.93323,
    constant=172.300168,
    baseline_survival=0.9402,
    smoking_age_cap=70.0,
)

# ATP III (NCEP 2001) Framingham hard CHD equations, women (no ln(age)² term).
FRAMINGHAM_WOMEN = _FraminghamModel(
    ln_age=31.764001,
    ln_total_chol=22.465206,
    ln_hdl=-1.187731,
    ln_sbp=2.552905,
    bp_treated=0.420251,
    smoker=13.07543,
    ln_age_x_ln_total_chol=-5.060998,
    ln_age_x_smoker=-2.996945,
    ln_age_squared=0.0,
    constant=146.5933061,
    baseline_survival=0.98767,
    smoking_age_cap=78.0,
)

PERCENT = 100.0  # probability to percent


@formula("framingham_hard_chd")
def framingham_hard_chd(ctx: FormulaContext) -> float:
    """10-year risk (%) of myocardial infarction or coronary death, ATP III Framingham equations."""
    sex = ctx.choice("sex")
    model = FRAMINGHAM_MEN if sex == "male" else FRAMINGHAM_WOMEN
    ctx.note(f"{'men' if sex == 'male' else 'women'}'s equation")
    age = ctx.q("age", "a")
    total_chol = ctx.q("total_cholesterol", "mg/dL")
    hdl = ctx.q("hdl_cholesterol", "mg/dL")
    sbp = ctx.q("systolic_bp", "mm[Hg]")
    treated = 1.0 if ctx.flag("bp_treated") else 0.0
    smoker = 1.0 if ctx.flag("smoker") else 0.0
    ln_age = math.log(age)
    ln_tc = math.log(total_chol)
    smoking_age = min(age, model.smoking_age_cap)
    if smoker and age > model.smoking_age_cap:
        ctx.note(f"age above {model.smoking_age_cap:g}: the smoking term uses age {smoking_age:g}")
    linear = ctx.step(
        "Linear predictor",
        model.ln_age * ln_age
        + model.ln_total_chol * ln_tc
        + model.ln_hdl * math.log(hdl)
        + model.ln_sbp * math.log(sbp)
        + model.bp_treated * treated
        + model.smoker * smoker
        + model.ln_age_x_ln_total_chol * ln_age * ln_tc
        + model.ln_age_x_smoker * math.log(smoking_age) * smoker
        + model.ln_age_squared * ln_age * ln_age
        - model.constant,
        formula="Σ β·x − constant (ln age, ln TC, ln HDL, ln SBP, treated, smoker, interactions)",
    )
    return ctx.step(
        "10-year hard CHD risk",
        (1.0 - model.baseline_survival ** math.exp(linear)) * PERCENT,
        formula=f"(1 − {model.baseline_survival}^exp(L)) × 100",
        unit="%",
    )


# ------------------------------------------------------------------------- pooled cohort equations


@dataclass(frozen=True, slots=True)
class _PceModel:
    """One race- and sex-specific pooled cohort equation (Goff 2013, Table A)."""

    ln_age: float
    ln_age_squared: float
    ln_total_chol: float
    ln_age_x_ln_total_chol: float
    ln_hdl: float
    ln_age_x_ln_hdl: float
    ln_treated_sbp: float
    ln_age_x_ln_treated_sbp: float
    ln_untreated_sbp: float
    ln_age_x_ln_untreated_sbp: float
    smoker: float
    ln_age_x_smoker: float
    diabetes: float
    mean_linear: float  # group mean of the individual sum
    baseline_survival: float  # 10-year baseline survival


# Goff 2013 pooled cohort equations: white women.
PCE_WHITE_WOMEN = _PceModel(
    -29.799, 4.884, 13.540, -3.114, -13.578, 3.149, 2.019, 0.0, 1.957, 0.0, 7.574, -1.665, 0.661,
    mean_linear=-29.18,
    baseline_survival=0.9665,
)  # fmt: skip
# Goff 2013 pooled cohort equations: African-American women.
PCE_BLACK_WOMEN = _PceModel(
    17.114, 0.0, 0.940, 0.0, -18.920, 4.475, 29.291, -6.432, 27.820, -6.087, 0.691, 0.0, 0.874,
    mean_linear=86.61,
    baseline_survival=0.9533,
)  # fmt: skip
# Goff 2013 pooled cohort equations: white men.
PCE_WHITE_MEN = _PceModel(
    12.344, 0.0, 11.853, -2.664, -7.990, 1.769, 1.797, 0.0, 1.764, 0.0, 7.837, -1.795, 0.658,
    mean_linear=61.18,
    baseline_survival=0.9144,
)  # fmt: skip
# Goff 2013 pooled cohort equations: African-American men.
PCE_BLACK_MEN = _PceModel(
    2.469, 0.0, 0.302, 0.0, -0.307, 0.0, 1.916, 0.0, 1.809, 0.0, 0.549, 0.0, 0.645,
    mean_linear=19.54,
    baseline_survival=0.8954,
)  # fmt: skip


@formula("ascvd_pce")
def ascvd_pce(ctx: FormulaContext) -> float:
    """10-year risk (%) of a first hard ASCVD event by the 2013 pooled cohort equations."""
    sex = ctx.choice("sex")
    race = ctx.choice("race")
    black = race == "african_american"
    if sex == "male":
        model = PCE_BLACK_MEN if black else PCE_WHITE_MEN
    else:
        model = PCE_BLACK_WOMEN if black else PCE_WHITE_WOMEN
    group = f"{'African-American' if black else 'white'} {'men' if sex == 'male' else 'women'}"
    ctx.note(f"equation for {group}")
    if race == "other":
        ctx.note("race other than white or African-American: the white equation is used")
    age = ctx.q("age", "a")
    total_chol = ctx.q("total_cholesterol", "mg/dL")
    hdl = ctx.q("hdl_cholesterol", "mg/dL")
    sbp = ctx.q("systolic_bp", "mm[Hg]")
    treated = ctx.flag("bp_treated")
    smoker = 1.0 if ctx.flag("smoker") else 0.0
    diabetes = 1.0 if ctx.flag("diabetes") else 0.0
    ln_age = math.log(age)
    ln_tc = math.log(total_chol)
    ln_hdl = math.log(hdl)
    ln_sbp = math.log(sbp)
    if treated:
        sbp_terms = model.ln_treated_sbp * ln_sbp + model.ln_age_x_ln_treated_sbp * ln_age * ln_sbp
    else:
        sbp_terms = (
            model.ln_untreated_sbp * ln_sbp + model.ln_age_x_ln_untreated_sbp * ln_age * ln_sbp
        )
    individual = ctx.step(
        "Individual sum",
        model.ln_age * ln_age
        + model.ln_age_squared * ln_age * ln_age
        + model.ln_total_chol * ln_tc
        + model.ln_age_x_ln_total_chol * ln_age * ln_tc
        + model.ln_hdl * ln_hdl
        + model.ln_age_x_ln_hdl * ln_age * ln_hdl
        + sbp_terms
        + model.smoker * smoker
        + model.ln_age_x_smoker * ln_age * smoker
        + model.diabetes * diabetes,
        formula="Σ coefficient × value (Goff 2013, Table A)",
        detail="treated systolic BP terms" if treated else "untreated systolic BP terms",
    )
    return ctx.step(
        "10-year ASCVD risk",
        (1.0 - model.baseline_survival ** math.exp(individual - model.mean_linear)) * PERCENT,
        formula=(f"(1 − {model.baseline_survival}^exp(sum − {model.mean_linear:g})) × 100"),
        unit="%",
    )
