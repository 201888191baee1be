"""Physical measures, drug-dose equivalents and pregnancy dating.

Blood pressure (mean arterial pressure), body size (ideal, adjusted and target weight, body
surface area), heart-rate correction of the QT interval (Bazett, Fridericia, Framingham, Hodges,
Rautaharju), maintenance fluids (Holliday-Segar), corticosteroid and opioid dose equivalents, and
dates of pregnancy (due date, conception, gestational age). Every constant is named and says where
it comes from; every intermediate value is recorded in the trace and none is rounded.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from medagent.errors import InputError, Problem
from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula

# --------------------------------------------------------------------------- blood pressure

# Mean arterial pressure: diastolic pressure plus one third of the pulse pressure
# (the usual sphygmomanometric estimate; Meaney 2000).
MAP_PULSE_PRESSURE_FRACTION = 1 / 3


@formula("mean_arterial_pressure")
def mean_arterial_pressure(ctx: FormulaContext) -> float:
    """MAP = DBP + (SBP − DBP) / 3, in mm Hg."""
    sbp = ctx.q("sbp", "mm[Hg]")
    dbp = ctx.q("dbp", "mm[Hg]")
    if dbp > sbp:
        raise InputError(
            "inputs of mean_arterial_pressure",
            [Problem("dbp", f"diastolic {dbp:g} mm Hg is above systolic {sbp:g} mm Hg")],
        )
    pulse = ctx.step("Pulse pressure", sbp - dbp, formula="SBP − DBP", unit="mm[Hg]")
    return ctx.step(
        "Mean arterial pressure",
        dbp + MAP_PULSE_PRESSURE_FRACTION * pulse,
        formula="DBP + (SBP − DBP) / 3",
        detail=f"{dbp:g} + {pulse:g} / 3",
        unit="mm[Hg]",
    )


# --------------------------------------------------------------------------- body size

# Devine (1974) ideal body weight: a base weight at 5 feet (60 inches) of height, plus a fixed
# weight per inch above 5 feet.
DEVINE_BASE_KG = {"male": 50.0, "female": 45.5}
DEVINE_KG_PER_INCH = 2.3
DEVINE_BASE_HEIGHT_IN = 60.0
# Adjusted body weight: ideal weight plus 40 % of the weight above it (Traynor 1995's
# aminoglycoside dosing-weight correction factor).
ABW_EXCESS_FRACTION = 0.4
# Mosteller (1987) body surface area: sqrt(height [cm] × weight [kg] / 3600), in m².
MOSTELLER_DIVISOR = 3600.0


def _devine_ibw(ctx: FormulaContext) -> float:
    sex = ctx.choice("sex")
    height_in = ctx.q("height", "[in_i]")
    if height_in < DEVINE_BASE_HEIGHT_IN:
        ctx.note(
            "Height is below 5 ft (60 in): the Devine line is extended below the heights it was "
            "written for (2.3 kg less per inch below 60 in)."
        )
    base = DEVINE_BASE_KG[sex]
    return ctx.step(
        "Ideal body weight (Devine)",
        base + DEVINE_KG_PER_INCH * (height_in - DEVINE_BASE_HEIGHT_IN),
        formula=f"{base:g} kg + 2.3 kg × (height in inches − 60)",
        detail=f"{sex}, {height_in:.6g} in",
        unit="kg",
    )


@formula("ideal_body_weight_devine")
def ideal_body_weight(ctx: FormulaContext) -> float:
    """Devine ideal body weight in kg from sex and height."""
    return _devine_ibw(ctx)


@formula("adjusted_body_weight")
def adjusted_body_weight(ctx: FormulaContext) -> float:
    """ABW = IBW + 0.4 × (actual weight − IBW), in kg."""
    ibw = _devine_ibw(ctx)
    weight = ctx.q("weight", "kg")
    if weight <= ibw:
        ctx.note(
            "Actual weight is not above ideal weight: the adjustment is meant for patients above "
            "their ideal weight, and here it gives a value between the two."
        )
    return ctx.step(
        "Adjusted body weight",
        ibw + ABW_EXCESS_FRACTION * (weight - ibw),
        formula="IBW + 0.4 × (weight − IBW)",
        detail=f"{ibw:.6g} + 0.4 × ({weight:.6g} − {ibw:.6g})",
        unit="kg",
    )


@formula("body_surface_area_mosteller")
def body_surface_area(ctx: FormulaContext) -> float:
    """Mosteller BSA = sqrt(height [cm] × weight [kg] / 3600), in m²."""
    height = ctx.q("height", "cm")
    weight = ctx.q("weight", "kg")
    return ctx.step(
        "Body surface area (Mosteller)",
        math.sqrt(height * weight / MOSTELLER_DIVISOR),
        formula="√(height [cm] × weight [kg] / 3600)",
        detail=f"√({height:.6g} × {weight:.6g} / 3600)",
        unit="m2",
    )


@formula("target_weight")
def target_weight(ctx: FormulaContext) -> float:
    """Weight that gives the target BMI at the patient's height: BMI × height², in kg."""
    target_bmi = ctx.q("target_bmi", "kg/m2")
    height = ctx.q("height", "m")
    return ctx.step(
        "Target weight",
        target_bmi * height**2,
        formula="target BMI × height²",
        detail=f"{target_bmi:g} kg/m² × ({height:.6g} m)²",
        unit="kg",
    )


# --------------------------------------------------------------------------- QT correction

SECONDS_PER_MINUTE = 60.0
# Framingham (Sagie 1992): QTc = QT + 0.154 s × (1 − RR), i.e. 154 ms per second of RR below 1 s.
FRAMINGHAM_MS_PER_S = 154.0
# Hodges (1983): QTc = QT + 1.75 ms × (heart rate − 60 /min).
HODGES_MS_PER_BEAT = 1.75
HODGES_REFERENCE_RATE = 60.0
# Rautaharju (2014) QTcMod: QTc = QT × (120 + HR) / 180.
RAUTAHARJU_OFFSET = 120.0
RAUTAHARJU_DIVISOR = 180.0


def _qt_and_rr(ctx: FormulaContext) -> tuple[float, float, float]:
    qt = ctx.q("qt_interval", "ms")
    rate = ctx.q("heart_rate", "/min")
    rr = ctx.step("RR interval", SECONDS_PER_MINUTE / rate, formula="60 / heart rate", unit="s")
    return qt, rate, rr


@formula("qtc_bazett")
def qtc_bazett(ctx: FormulaContext) -> float:
    """Bazett: QTc = QT / √RR (RR in seconds)."""
    qt, _, rr = _qt_and_rr(ctx)
    return ctx.step(
        "QTc (Bazett)",
        qt / math.sqrt(rr),
        formula="QT / √RR",
        detail=f"{qt:g} / √{rr:.6g}",
        unit="ms",
    )


@formula("qtc_fridericia")
def qtc_fridericia(ctx: FormulaContext) -> float:
    """Fridericia: QTc = QT / RR^(1/3) (RR in seconds)."""
    qt, _, rr = _qt_and_rr(ctx)
    return ctx.step(
        "QTc (Fridericia)",
        qt / rr ** (1 / 3),
        formula="QT / ∛RR",
        detail=f"{qt:g} / ∛{rr:.6g}",
        unit="ms",
    )


@formula("qtc_framingham")
def qtc_framingham(ctx: FormulaContext) -> float:
    """Framingham: QTc = QT + 154 ms × (1 − RR) (RR in seconds)."""
    qt, _, rr = _qt_and_rr(ctx)
    return ctx.step(
        "QTc (Framingham)",
        qt + FRAMINGHAM_MS_PER_S * (1 - rr),
        formula="QT + 154 × (1 − RR)",
        detail=f"{qt:g} + 154 × (1 − {rr:.6g})",
        unit="ms",
    )


@formula("qtc_hodges")
def qtc_hodges(ctx: FormulaContext) -> float:
    """Hodges: QTc = QT + 1.75 × (heart rate − 60)."""
    qt = ctx.q("qt_interval", "ms")
    rate = ctx.q("heart_rate", "/min")
    return ctx.step(
        "QTc (Hodges)",
        qt + HODGES_MS_PER_BEAT * (rate - HODGES_REFERENCE_RATE),
        formula="QT + 1.75 × (HR − 60)",
        detail=f"{qt:g} + 1.75 × ({rate:g} − 60)",
        unit="ms",
    )


@formula("qtc_rautaharju")
def qtc_rautaharju(ctx: FormulaContext) -> float:
    """Rautaharju QTcMod: QTc = QT × (120 + HR) / 180."""
    qt = ctx.q("qt_interval", "ms")
    rate = ctx.q("heart_rate", "/min")
    return ctx.step(
        "QTc (Rautaharju)",
        qt * (RAUTAHARJU_OFFSET + rate) / RAUTAHARJU_DIVISOR,
        formula="QT × (120 + HR) / 180",
        detail=f"{qt:g} × (120 + {rate:g}) / 180",
        unit="ms",
    )


# --------------------------------------------------------------------------- fluids

# Holliday-Segar (1957) maintenance water, hourly form ("4-2-1"): 4 mL/kg/h for the first 10 kg,
# 2 mL/kg/h for the next 10 kg, 1 mL/kg/h for every kg above 20 kg.
HS_FIRST_KG = 10.0
HS_SECOND_KG = 10.0
HS_RATE_FIRST = 4.0
HS_RATE_SECOND = 2.0
HS_RATE_REST = 1.0


@formula("maintenance_fluids_holliday_segar")
def maintenance_fluids(ctx: FormulaContext) -> float:
    """Hourly maintenance fluid by the 4-2-1 rule, in mL/h."""
    weight = ctx.q("weight", "kg")
    first = min(weight, HS_FIRST_KG)
    second = min(max(weight - HS_FIRST_KG, 0.0), HS_SECOND_KG)
    rest = max(weight - HS_FIRST_KG - HS_SECOND_KG, 0.0)
    ctx.step("First 10 kg × 4 mL/kg/h", HS_RATE_FIRST * first, detail=f"{first:g} kg", unit="mL/h")
    ctx.step(
        "Next 10 kg × 2 mL/kg/h", HS_RATE_SECOND * second, detail=f"{second:g} kg", unit="mL/h"
    )
    ctx.step(
        "Each kg above 20 × 1 mL/kg/h", HS_RATE_REST * rest, detail=f"{rest:g} kg", unit="mL/h"
    )
    return ctx.step(
        "Maintenance fluid rate",
        HS_RATE_FIRST * first + HS_RATE_SECOND * second + HS_RATE_REST * rest,
        formula="4 × (first 10 kg) + 2 × (next 10 kg) + 1 × (kg above 20)",
        unit="mL/h",
    )


# --------------------------------------------------------------------------- steroids

# Equivalent anti-inflammatory (glucocorticoid) doses in mg, by steroid and route: the dose of each
# that matches 5 mg of prednisone (BNF equivalence table; Meikle & Tyler 1977). Oral and
# intravenous doses of one steroid are taken as equal.
STEROID_EQUIVALENT_MG = {
    "betamethasone_iv": 0.75,
    "cortisone_po": 25.0,
    "dexamethasone_iv": 0.75,
    "dexamethasone_po": 0.75,
    "hydrocortisone_iv": 20.0,
    "hydrocortisone_po": 20.0,
    "methylprednisolone_iv": 4.0,
    "methylprednisolone_po": 4.0,
    "prednisolone_po": 5.0,
    "prednisone_po": 5.0,
    "triamcinolone": 4.0,
}


@formula("steroid_conversion")
def steroid_conversion(ctx: FormulaContext) -> float:
    """Dose of the target steroid equivalent to the given dose of the source steroid, in mg."""
    source = ctx.choice("source_steroid")
    target = ctx.choice("target_steroid")
    dose = ctx.q("dose", "mg")
    source_eq = STEROID_EQUIVALENT_MG[source]
    target_eq = STEROID_EQUIVALENT_MG[target]
    ratio = ctx.step(
        "Conversion factor",
        target_eq / source_eq,
        formula="equivalent dose of target / equivalent dose of source",
        detail=f"{target_eq:g} mg {target} / {source_eq:g} mg {source}",
    )
    return ctx.step(
        "Equivalent dose",
        dose * ratio,
        formula="dose × conversion factor",
        detail=f"{dose:g} mg × {ratio:.6g}",
        unit="mg",
    )


# --------------------------------------------------------------------------- opioids

# Morphine milligram equivalent conversion factors (CDC 2022 clinical practice guideline, Table;
# buccal/sublingual fentanyl from the CMS oral MME conversion-factor table), per unit of dose:
# mg for oral opioids, µg for buccal fentanyl, µg/h for a transdermal fentanyl patch.
MME_FACTORS: dict[str, tuple[float, str]] = {
    "codeine": (0.15, "mg"),
    "fentanyl_buccal": (0.13, "ug"),
    "hydrocodone": (1.0, "mg"),
    "hydromorphone": (5.0, "mg"),
    "methadone": (4.7, "mg"),
    "morphine": (1.0, "mg"),
    "oxycodone": (1.5, "mg"),
    "oxymorphone": (3.0, "mg"),
    "tapentadol": (0.4, "mg"),
    "tramadol": (0.2, "mg"),
}
# Transdermal fentanyl: MME/day = patch rate (µg/h) × 2.4 for each patch worn.
MME_FENTANYL_PATCH_FACTOR = 2.4


@formula("morphine_milligram_equivalents")
def morphine_milligram_equivalents(ctx: FormulaContext) -> float:
    """Total daily MME: Σ dose × doses per day × factor, plus patch rate × patches × 2.4."""
    total = 0.0
    given = 0
    for drug, (factor, unit) in MME_FACTORS.items():
        dose_id, per_day_id = f"{drug}_dose", f"{drug}_doses_per_day"
        if not (ctx.has(dose_id) or ctx.has(per_day_id)):
            continue
        given += 1
        dose = ctx.q(dose_id, unit)
        per_day = ctx.q(per_day_id)
        total += ctx.step(
            f"MME/day from {drug.replace('_', ' ')}",
            dose * per_day * factor,
            formula="dose × doses per day × conversion factor",
            detail=f"{dose:g} {unit} × {per_day:g}/day × {factor:g}",
            unit="mg/d",
        )
    if ctx.has("fentanyl_patch_rate") or ctx.has("fentanyl_patch_count"):
        given += 1
        rate = ctx.q("fentanyl_patch_rate", "ug/h")
        count = ctx.q("fentanyl_patch_count")
        total += ctx.step(
            "MME/day from transdermal fentanyl",
            rate * count * MME_FENTANYL_PATCH_FACTOR,
            formula="patch rate (µg/h) × patches × 2.4",
            detail=f"{rate:g} µg/h × {count:g} × 2.4",
            unit="mg/d",
        )
    if given == 0:
        raise InputError(
            "inputs of morphine_milligram_equivalents",
            [Problem("", "give at least one opioid with its dose and number of doses per day")],
        )
    return ctx.step("Total morphine milligram equivalents per day", total, unit="mg/d")


# --------------------------------------------------------------------------- pregnancy dating

# Naegele's rule in its 280-day form: the due date is 40 weeks after the first day of the last
# menstrual period (LMP) for a 28-day cycle with ovulation on day 14. For other cycle lengths
# ovulation (and so the due date) moves by the difference from 28 days.
GESTATION_FROM_LMP_DAYS = 280
REFERENCE_CYCLE_DAYS = 28
# Conception is dated 2 weeks after the LMP (gestational age = conceptional age + 14 days).
CONCEPTION_AFTER_LMP_DAYS = 14


@formula("estimated_due_date")
def estimated_due_date(ctx: FormulaContext) -> date:
    """EDD = LMP + 280 days + (cycle length − 28 days)."""
    lmp = ctx.date("lmp")
    cycle = ctx.q("cycle_length", "d")
    adjustment = ctx.step(
        "Cycle-length adjustment",
        cycle - REFERENCE_CYCLE_DAYS,
        formula="cycle length − 28",
        unit="d",
    )
    ctx.step(
        "Days from LMP", GESTATION_FROM_LMP_DAYS + adjustment, formula="280 + adjustment", unit="d"
    )
    due = lmp + timedelta(days=GESTATION_FROM_LMP_DAYS + round(adjustment))
    ctx.note(
        f"LMP {lmp.isoformat()} + {GESTATION_FROM_LMP_DAYS + round(adjustment)} days = "
        f"{due.isoformat()}"
    )
    return due


@formula("estimated_conception_date")
def estimated_conception_date(ctx: FormulaContext) -> date:
    """Conception ≈ LMP + 14 days."""
    lmp = ctx.date("lmp")
    conception = lmp + timedelta(days=CONCEPTION_AFTER_LMP_DAYS)
    ctx.note(f"LMP {lmp.isoformat()} + {CONCEPTION_AFTER_LMP_DAYS} days = {conception.isoformat()}")
    return conception


@formula("gestational_age_lmp")
def gestational_age(ctx: FormulaContext) -> float:
    """Completed days from the first day of the LMP to the date of assessment."""
    lmp = ctx.date("lmp")
    today = ctx.date("current_date")
    if today < lmp:
        raise InputError(
            "inputs of gestational_age",
            [Problem("current_date", f"{today.isoformat()} is before the LMP {lmp.isoformat()}")],
        )
    days = float((today - lmp).days)
    weeks, rest = divmod(int(days), 7)
    return ctx.step(
        "Gestational age",
        days,
        formula="date of assessment − first day of LMP",
        detail=f"{weeks} weeks {rest} days",
        unit="d",
    )
