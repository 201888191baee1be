"""The one exception hierarchy of medagent: every error says every problem with its path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found while checking something, with the dotted path of what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MedAgentError(Exception):
    """Base of every error medagent raises on purpose."""


class _ProblemsError(MedAgentError):
    """An error that carries every problem found, not only the first."""

    headline = "invalid"

    def __init__(self, subject: str, problems: Iterable[Problem]) -> None:
        self.subject = subject
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{subject}: {len(self.problems)} problem(s) {self.headline}\n{lines}")


class ScaleDefinitionError(_ProblemsError, ValueError):
    """A scale file does not follow the scale format; lists every problem with its path."""

    headline = "in the scale definition"


class InputError(_ProblemsError, ValueError):
    """Inputs given to a scale are malformed or out of range; lists every problem by input id."""

    headline = "with the inputs"


class UnitError(MedAgentError, ValueError):
    """A unit is unknown or cannot be converted to the unit asked for."""


class UnknownScaleError(MedAgentError, KeyError):
    """No scale with that id is in the library."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown scale"
