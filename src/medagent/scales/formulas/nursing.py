"""Nursing and screening scales whose reading needs more than a plain sum (AUDIT-C)."""

from __future__ import annotations

from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula

# AUDIT-C items (Bush et al. 1998): questions 1-3 of the AUDIT, each scored 0-4.
AUDIT_C_ITEMS = ("drinking_frequency", "typical_quantity", "heavy_episode_frequency")

# Sex-specific screening cut-offs for alcohol misuse (Bradley et al. 2007; Frank et al. 2008):
# a total at or above the cut-off is a positive screen.
AUDIT_C_CUTOFF_MEN = 4
AUDIT_C_CUTOFF_WOMEN = 3


@formula("audit_c")
def audit_c(ctx: FormulaContext) -> float:
    """AUDIT-C total (sum of items 1-3); the screen is read at the cut-off for the sex given."""
    points = [ctx.points(item) for item in AUDIT_C_ITEMS]
    total = ctx.step(
        "AUDIT-C total",
        sum(points),
        formula="Q1 + Q2 + Q3",
        detail=" + ".join(f"{p:g}" for p in points),
    )
    sex = ctx.choice("sex")
    cutoff = AUDIT_C_CUTOFF_WOMEN if sex == "female" else AUDIT_C_CUTOFF_MEN
    group = "women" if sex == "female" else "men"
    verdict = "positive" if total >= cutoff else "negative"
    ctx.note(f"Screen {verdict} for alcohol misuse: the cut-off for {group} is {cutoff} or more.")
    return total
