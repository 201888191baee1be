"""Body size formulas: body mass index and relatives."""

from __future__ import annotations

from medagent.scales.context import FormulaContext
from medagent.scales.formulas import formula


@formula("bmi")
def bmi(ctx: FormulaContext) -> float:
    """Body mass index = weight / height², in kg/m²."""
    weight = ctx.q("weight", "kg")
    height = ctx.q("height", "m")
    return ctx.step(
        "BMI",
        weight / height**2,
        formula="weight / height²",
        detail=f"{weight:.6g} kg / ({height:.6g} m)²",
        unit="kg/m2",
    )
