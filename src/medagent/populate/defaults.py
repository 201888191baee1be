"""Population defaults as data: lookback windows per kind of input, demographic bindings."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medagent.populate.errors import PopulateError

_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
# Calendar units have no fixed length; a lookback window takes a year as 365 days and a month as
# 30 days, which errs on the side of a shorter window.
_SECONDS = {"y": 365 * 86400, "mo": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "mi": 60}


def parse_duration(text: str) -> timedelta:
    """Read an ISO 8601 duration such as ``PT24H``, ``P7D`` or ``P1Y`` (a year is 365 days)."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise PopulateError(f"{text!r} is not an ISO 8601 duration (e.g. PT24H, P7D)")
    seconds = 0.0
    for key, value in match.groupdict().items():
        if value is not None:
            seconds += float(value) * _SECONDS.get(key, 1)
    return timedelta(seconds=seconds)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Kind(_Frozen):
    """A kind of observation with its default lookback window."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str
    lookback: str
    loinc: tuple[str, ...] = ()

    @field_validator("lookback")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def window(self) -> timedelta:
        return parse_duration(self.lookback)


class Demographic(_Frozen):
    """How an input is recognised as bound to the Patient resource."""

    loinc: tuple[str, ...] = ()
    input_ids: tuple[str, ...] = ()


class Demographics(_Frozen):
    age: Demographic
    sex: Demographic


class Defaults(_Frozen):
    """Everything population needs that the scale files do not declare themselves."""

    kinds: tuple[Kind, ...]
    observation_default: Kind
    procedure_lookback: str
    demographics: Demographics
    observation_statuses: tuple[str, ...]
    medication_active_statuses: tuple[str, ...]
    medication_ended_statuses: tuple[str, ...]
    procedure_statuses: tuple[str, ...]

    @field_validator("procedure_lookback")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def kind_for(self, loinc: tuple[str, ...]) -> Kind:
        """The first kind whose codes meet ``loinc``, else the default for observations."""
        wanted = set(loinc)
        return next((k for k in self.kinds if wanted & set(k.loinc)), self.observation_default)


def parse_defaults(text: str, *, source: str = "defaults.yaml") -> Defaults:
    """Parse and validate a defaults document; every problem is listed with its path."""
    try:
        return Defaults.model_validate(yaml.safe_load(text))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise PopulateError(f"{source}: {problems}") from error


@cache
def default_defaults() -> Defaults:
    """The defaults shipped with medagent (``medagent/populate/defaults.yaml``)."""
    text = (resources.files("medagent.populate") / "defaults.yaml").read_text(encoding="utf-8")
    return parse_defaults(text, source="medagent/populate/defaults.yaml")
