"""The one unit registry of medagent: UCUM codes in, exact conversions out (pint underneath)."""

from medagent.units.registry import (
    Quantity,
    convert,
    converter,
    normalize_unit,
    parse_quantity,
    same_dimension,
)

__all__ = [
    "Quantity",
    "convert",
    "converter",
    "normalize_unit",
    "parse_quantity",
    "same_dimension",
]
