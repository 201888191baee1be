"""Registry of the formulas that scale files name; every module in this package registers some.

A formula is a small typed function of a :class:`FormulaContext`. It reads inputs in the units it
needs (the conversion is recorded), uses named constants, and records each step it takes, so the
explanation of a result is generated from what was actually computed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from datetime import date
from functools import cache

from medagent.scales.context import FormulaContext

FormulaValue = float | date
Formula = Callable[[FormulaContext], FormulaValue]

_FORMULAS: dict[str, Formula] = {}


def formula(name: str) -> Callable[[Formula], Formula]:
    """Register ``fn`` under ``name``; a name may be registered once only."""

    def register(fn: Formula) -> Formula:
        if name in _FORMULAS and _FORMULAS[name] is not fn:
            raise ValueError(f"formula {name!r} is registered twice")
        _FORMULAS[name] = fn
        return fn

    return register


@cache
def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def get_formula(name: str) -> Formula | None:
    """The formula registered under ``name``, or None."""
    _load_all()
    return _FORMULAS.get(name)


def formula_names() -> frozenset[str]:
    """Every registered formula name."""
    _load_all()
    return frozenset(_FORMULAS)
