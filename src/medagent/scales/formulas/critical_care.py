"""Critical care formulas: mean arterial pressure, PaO₂/FiO₂ ratio, and the SIRS criteria count.

Names are prefixed with ``critical_care.`` so that they cannot collide with formulas of other
areas (a name may be registered once only).
"""

from __future__ import annotations

from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula

# Weight of the diastolic pressure in the mean arterial pressure estimate (MAP = (SBP + 2·DBP) / 3).
MAP_DIASTOLIC_WEIGHT = 2.0
# Number of pressure readings the weighted mean divides by (one systolic + two diastolic).
MAP_DIVISOR = 3.0
# FiO₂ is entered in percent; the P/F ratio uses it as a fraction.
PERCENT_PER_FRACTION = 100.0

# SIRS thresholds (Bone et al., Chest 1992): each is one criterion.
SIRS_TEMPERATURE_HIGH_C = 38.0  # temperature above this (°C)
SIRS_TEMPERATURE_LOW_C = 36.0  # or below this (°C)
SIRS_HEART_RATE = 90.0  # heart rate above this (/min)
SIRS_RESPIRATORY_RATE = 20.0  # respiratory rate above this (/min)
SIRS_PACO2_MMHG = 32.0  # or PaCO₂ below this (mm Hg)
SIRS_WBC_HIGH = 12_000.0  # white cell count above this (/µL = /mm³)
SIRS_WBC_LOW = 4_000.0  # or below this (/µL)
SIRS_BANDS_PERCENT = 10.0  # or immature (band) forms above this (% of white cells)


@formula("critical_care.mean_arterial_pressure")
def mean_arterial_pressure(ctx: FormulaContext) -> float:
    """Mean arterial pressure estimated from systolic and diastolic pressures, in mm Hg."""
    sbp = ctx.q("sbp", "mm[Hg]")
    dbp = ctx.q("dbp", "mm[Hg]")
    return ctx.step(
        "Mean arterial pressure",
        (sbp + MAP_DIASTOLIC_WEIGHT * dbp) / MAP_DIVISOR,
        formula="(SBP + 2 × DBP) / 3",
        detail=f"({sbp:g} + 2 × {dbp:g}) / 3",
        unit="mm[Hg]",
    )


@formula("critical_care.pf_ratio")
def pf_ratio(ctx: FormulaContext) -> float:
    """PaO₂/FiO₂ ratio in mm Hg, with FiO₂ as a fraction."""
    pao2 = ctx.q("pao2", "mm[Hg]")
    fio2_percent = ctx.q("fio2", "%")
    fraction = fio2_percent / PERCENT_PER_FRACTION
    return ctx.step(
        "PaO₂/FiO₂",
        pao2 / fraction,
        formula="PaO₂ / FiO₂",
        detail=f"{pao2:g} mm Hg / {fraction:g}",
        unit="mm[Hg]",
    )


def _temperature_met(ctx: FormulaContext) -> bool:
    temperature = ctx.q("temperature", "Cel")
    met = temperature > SIRS_TEMPERATURE_HIGH_C or temperature < SIRS_TEMPERATURE_LOW_C
    ctx.step(
        "SIRS temperature criterion",
        1.0 if met else 0.0,
        formula="temperature > 38 °C or < 36 °C",
        detail=f"{temperature:g} °C",
    )
    return met


def _heart_rate_met(ctx: FormulaContext) -> bool:
    heart_rate = ctx.q("heart_rate", "/min")
    met = heart_rate > SIRS_HEART_RATE
    ctx.step(
        "SIRS heart rate criterion",
        1.0 if met else 0.0,
        formula="heart rate > 90/min",
        detail=f"{heart_rate:g}/min",
    )
    return met


def _respiratory_met(ctx: FormulaContext) -> bool:
    # Either part settles the criterion when it is met, whatever the other part is.
    if ctx.has("respiratory_rate") and ctx.q("respiratory_rate", "/min") > SIRS_RESPIRATORY_RATE:
        ctx.step(
            "SIRS respiratory criterion",
            1.0,
            formula="respiratory rate > 20/min",
            detail=f"{ctx.q('respiratory_rate', '/min'):g}/min",
        )
        return True
    if ctx.has("paco2") and ctx.q("paco2", "mm[Hg]") < SIRS_PACO2_MMHG:
        ctx.step(
            "SIRS respiratory criterion",
            1.0,
            formula="PaCO₂ < 32 mm Hg",
            detail=f"{ctx.q('paco2', 'mm[Hg]'):g} mm Hg",
        )
        return True
    rate = ctx.q("respiratory_rate", "/min")  # not met so far: the rate must be known
    if ctx.has("paco2"):
        detail = f"{rate:g}/min, PaCO₂ {ctx.q('paco2', 'mm[Hg]'):g} mm Hg"
    elif not ctx.flag("paco2_measured"):
        ctx.note("No arterial blood gas: the respiratory criterion rests on the rate alone.")
        detail = f"{rate:g}/min, PaCO₂ not measured"
    else:
        ctx.q("paco2", "mm[Hg]")  # measured but not given: asks for it
        detail = ""
    ctx.step(
        "SIRS respiratory criterion",
        0.0,
        formula="respiratory rate > 20/min or PaCO₂ < 32 mm Hg",
        detail=detail,
    )
    return False


def _white_cells_met(ctx: FormulaContext) -> bool:
    if ctx.has("wbc"):
        wbc = ctx.q("wbc", "/uL")
        if wbc > SIRS_WBC_HIGH or wbc < SIRS_WBC_LOW:
            ctx.step(
                "SIRS white cell criterion",
                1.0,
                formula="WBC > 12,000/µL or < 4,000/µL",
                detail=f"{wbc:g}/µL",
            )
            return True
    if ctx.has("band_forms") and ctx.q("band_forms", "%") > SIRS_BANDS_PERCENT:
        ctx.step(
            "SIRS white cell criterion",
            1.0,
            formula="immature (band) forms > 10 %",
            detail=f"{ctx.q('band_forms', '%'):g} %",
        )
        return True
    wbc = ctx.q("wbc", "/uL")  # not met so far: the count must be known
    if ctx.has("band_forms"):
        detail = f"{wbc:g}/µL, band forms {ctx.q('band_forms', '%'):g} %"
    elif not ctx.flag("band_forms_measured"):
        ctx.note("No band count: the white cell criterion rests on the total count alone.")
        detail = f"{wbc:g}/µL, band forms not counted"
    else:
        ctx.q("band_forms", "%")  # counted but not given: asks for it
        detail = ""
    ctx.step(
        "SIRS white cell criterion",
        0.0,
        formula="WBC > 12,000/µL or < 4,000/µL or band forms > 10 %",
        detail=detail,
    )
    return False


@formula("critical_care.sirs_count")
def sirs_count(ctx: FormulaContext) -> float:
    """Number of SIRS criteria met (0–4), each criterion counted once."""
    criteria = (
        _temperature_met(ctx),
        _heart_rate_met(ctx),
        _respiratory_met(ctx),
        _white_cells_met(ctx),
    )
    count = float(sum(criteria))
    return ctx.step("SIRS criteria met", count, formula="sum of the four criteria")
