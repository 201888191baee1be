"""What a registered formula sees: typed access to inputs, and a trace of each step it takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from medagent.units import convert

if TYPE_CHECKING:
    from medagent.scales.model import Scale


_UNITS: dict[int, tuple[object, dict[str, tuple[str | None, str | None]]]] = {}


def declared_units(scale: Scale) -> dict[str, tuple[str | None, str | None]]:
    """Unit and analyte of every input and derived value of a scale, built once per scale."""
    cached = _UNITS.get(id(scale))
    if cached is not None and cached[0] is scale:
        return cached[1]
    table: dict[str, tuple[str | None, str | None]] = {d.id: (d.unit, None) for d in scale.derived}
    table.update({i.id: (i.unit, i.analyte) for i in scale.inputs})
    _UNITS[id(scale)] = (scale, table)
    return table


class NeedInput(Exception):  # noqa: N818 - control flow, not an error shown to anyone
    """Raised inside a formula when it asks for an input that was not given."""

    def __init__(self, input_id: str) -> None:
        super().__init__(input_id)
        self.input_id = input_id


class Step(NamedTuple):
    """One step of a computation: what was computed, how, and the number it gave."""

    label: str
    value: float | str
    formula: str = ""
    detail: str = ""
    unit: str | None = None


@dataclass(slots=True)
class FormulaContext:
    """The inputs of one evaluation (already checked and in declared units) and its trace."""

    scale: Scale
    values: Mapping[str, object]
    item_points: Mapping[str, float] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    requested: set[str] = field(default_factory=set)

    def has(self, input_id: str) -> bool:
        """Whether the input was given (asking does not make it required)."""
        return self.values.get(input_id) is not None

    def _get(self, input_id: str) -> object:
        self.requested.add(input_id)
        value = self.values.get(input_id)
        if value is None:
            raise NeedInput(input_id)
        return value

    def q(self, input_id: str, unit: str | None = None) -> float:
        """A numeric input (quantity, integer or derived) in ``unit`` (default: as declared)."""
        value = self._get(input_id)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{input_id} is not numeric")
        number = float(value)
        if unit is None:
            return number
        declared, analyte = declared_units(self.scale).get(input_id, (None, None))
        if declared is None or declared == unit:
            return number
        converted = convert(number, declared, unit, analyte)
        self.steps.append(
            Step(label=input_id, value=converted, detail=f"{number:g} {declared}", unit=unit)
        )
        return converted

    def flag(self, input_id: str) -> bool:
        """A boolean input."""
        value = self._get(input_id)
        if not isinstance(value, bool):
            raise TypeError(f"{input_id} is not boolean")
        return value

    def choice(self, input_id: str) -> str:
        """The option code of a choice input."""
        value = self._get(input_id)
        if not isinstance(value, str):
            raise TypeError(f"{input_id} is not a choice")
        return value

    def date(self, input_id: str) -> date:
        """A date input."""
        value = self._get(input_id)
        if not isinstance(value, date):
            raise TypeError(f"{input_id} is not a date")
        return value

    def points(self, item_id: str) -> float:
        """The points the engine gave an item (inputs with points rules, and scoring items)."""
        if item_id not in self.item_points:
            raise NeedInput(item_id)
        return self.item_points[item_id]

    def step(
        self,
        label: str,
        value: float,
        *,
        formula: str = "",
        detail: str = "",
        unit: str | None = None,
    ) -> float:
        """Record one computed value in the trace and return it unchanged."""
        self.steps.append(Step(label=label, value=value, formula=formula, detail=detail, unit=unit))
        return value

    def note(self, text: str) -> None:
        """Record a rule applied (a branch taken) in the trace."""
        self.steps.append(Step(label="rule", value=text))
