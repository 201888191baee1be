"""Frozen, typed models of a scale definition, validated when a scale file is loaded."""

from __future__ import annotations

import math
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ID = r"^[a-z][a-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class InputType(StrEnum):
    """The kinds of value a scale input takes."""

    BOOLEAN = "boolean"
    CHOICE = "choice"
    INTEGER = "integer"
    QUANTITY = "quantity"
    DATE = "date"


class Answerer(StrEnum):
    """Who can answer an input: the record, the clinician, or the patient."""

    RECORD = "record"
    CLINICIAN = "clinician"
    PATIENT = "patient"


class Aggregate(StrEnum):
    """How several record values in the lookback window become one input value."""

    LATEST = "latest"
    FIRST = "first"
    MAX = "max"
    MIN = "min"
    WORST = "worst"  # the value that scores the most points


class Interval(_Frozen):
    """A one-dimensional interval written with ge/gt (lower) and le/lt (upper) bounds."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _one_bound_per_side(self) -> Interval:
        if self.ge is not None and self.gt is not None:
            raise ValueError("give ge or gt, not both")
        if self.le is not None and self.lt is not None:
            raise ValueError("give le or lt, not both")
        if self.lower > self.upper or (
            self.lower == self.upper and (self.gt is not None or self.lt is not None)
        ):
            raise ValueError(f"empty interval {self.describe('x')}")
        return self

    @property
    def lower(self) -> float:
        if self.ge is not None:
            return self.ge
        return self.gt if self.gt is not None else -math.inf

    @property
    def upper(self) -> float:
        if self.le is not None:
            return self.le
        return self.lt if self.lt is not None else math.inf

    @property
    def lower_closed(self) -> bool:
        return self.gt is None

    @property
    def upper_closed(self) -> bool:
        return self.lt is None

    def contains(self, x: float) -> bool:
        if self.ge is not None and x < self.ge:
            return False
        if self.gt is not None and x <= self.gt:
            return False
        if self.le is not None and x > self.le:
            return False
        return not (self.lt is not None and x >= self.lt)

    def describe(self, name: str) -> str:
        """Human-readable form, e.g. ``65 ≤ age < 75``."""
        left = f"{_fmt(self.ge)} ≤ " if self.ge is not None else ""
        left = f"{_fmt(self.gt)} < " if self.gt is not None else left
        right = f" ≤ {_fmt(self.le)}" if self.le is not None else ""
        right = f" < {_fmt(self.lt)}" if self.lt is not None else right
        return f"{left}{name}{right}" if (left or right) else f"any {name}"


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class Bracket(Interval):
    """Points given when a numeric value falls in the interval."""

    points: float


class Option(_Frozen):
    """One answer of a choice input."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$")]
    label: str
    points: float | None = None
    loinc: str | None = None  # LOINC answer code (LA...) where the instrument has one
    aliases: tuple[str, ...] = ()


class Codes(_Frozen):
    """Terminology codes that let the record answer an input (value sets by system)."""

    loinc: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()  # a code or a prefix such as "I50"
    rxnorm: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()


class Condition(_Frozen):
    """A test on another input, used to make an item apply only in some cases."""

    input: str
    eq: bool | str | float | None = None
    in_: Annotated[tuple[str, ...] | None, Field(alias="in")] = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def holds(self, value: Any) -> bool:
        if self.eq is not None and value != self.eq:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        if self.ge is None and self.gt is None and self.le is None and self.lt is None:
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        if self.eq is not None:
            return f"{self.input} = {self.eq}"
        if self.in_ is not None:
            return f"{self.input} in {{{', '.join(self.in_)}}}"
        return Interval(ge=self.ge, gt=self.gt, le=self.le, lt=self.lt).describe(self.input)


class Alert(_Frozen):
    """A single answer that calls for action whatever the total (PHQ-9 item 9, for one).

    It fires when every condition holds on the given inputs (``engine.check_alerts``); while an
    input it tests is missing it is neither fired nor cleared, only reported as unchecked.
    """

    id: Annotated[str, Field(pattern=_ID)]
    when: Annotated[tuple[Condition, ...], Field(min_length=1)]
    severity: Literal["warning", "critical"]
    text: str  # "The … recommends …", never an order
    reference: str  # a reference key of the scale


class PointsRule(_Frozen):
    """How one value becomes points: fixed points when true, per option, by brackets, or linear."""

    points: float | None = None  # boolean: points when true (0 when false)
    brackets: tuple[Bracket, ...] = ()
    per_unit: float | None = None  # linear: points = per_unit * value (PSI's age)
    group: str | None = None  # items of one group combine (max by default) before the sum


class InputDef(PointsRule):
    """One input of a scale: what it is, how it is coded, who can answer it, how it scores."""

    id: Annotated[str, Field(pattern=_ID)]
    label: str
    type: InputType
    unit: str | None = None  # UCUM
    range: tuple[float, float] | None = None
    options: tuple[Option, ...] = ()
    analyte: str | None = None
    codes: Codes = Codes()
    answerable_by: tuple[Answerer, ...] = (Answerer.RECORD, Answerer.CLINICIAN)
    required: bool = True
    help: str | None = None
    loinc: str | None = None  # LOINC code of the questionnaire item, where one exists
    lookback: str | None = None  # ISO 8601 duration for record look-ups, e.g. PT24H
    aggregate: Aggregate = Aggregate.LATEST

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    @property
    def scores(self) -> bool:
        return (
            self.points is not None
            or bool(self.brackets)
            or self.per_unit is not None
            or any(o.points is not None for o in self.options)
        )


class Item(PointsRule):
    """A scored item that is not simply one input: a derived value, or a conditional variant."""

    id: Annotated[str, Field(pattern=_ID)]
    label: str
    source: str  # an input id or a derived id
    when: tuple[Condition, ...] = ()
    option_points: dict[str, float] = {}


class Group(_Frozen):
    """Items whose points combine by max (e.g. one organ system in SOFA) before summing."""

    id: Annotated[str, Field(pattern=_ID)]
    label: str
    combine: Literal["max", "sum"] = "max"


class Derived(_Frozen):
    """A value computed from inputs by a registered formula, then scored like an input."""

    id: Annotated[str, Field(pattern=_ID)]
    label: str
    formula: str
    unit: str | None = None
    inputs: tuple[str, ...]


class Scoring(_Frozen):
    """How the score is computed: the sum of item points, or a registered formula."""

    method: Literal["sum", "formula"]
    formula: str | None = None
    items: tuple[Item, ...] = ()
    groups: tuple[Group, ...] = ()


class Output(_Frozen):
    """What the score is: type, unit, display precision and possible range."""

    type: Literal["integer", "number", "date"] = "integer"
    label: str = "Score"
    unit: str | None = None
    precision: int = 0
    range: tuple[float, float] | None = None
    display: Literal["plain", "weeks_days"] = "plain"


class Guidance(_Frozen):
    """What a guideline recommends at a result, phrased as the guideline's recommendation."""

    text: str  # "The 2024 ESC guideline recommends …", never an order
    reference: str  # a reference key of the scale
    strength: str | None = None  # e.g. "Class I, level A"


class Band(Interval):
    """An interpretation band of the score."""

    id: Annotated[str, Field(pattern=_ID)]
    label: str
    interpretation: str = ""
    severity: Literal["none", "low", "moderate", "high", "critical"] | None = None
    guidance: tuple[Guidance, ...] = ()


Setting = Literal["ed", "icu", "ward", "clinic", "preop"]


class Terms(_Frozen):
    """Words that point to a scale, in English and Simplified Chinese."""

    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()


class Trigger(Interval):
    """A lab or vital-sign value that suggests the scale (e.g. creatinine above 1.5 mg/dL)."""

    label: str
    loinc: tuple[str, ...]
    unit: str  # UCUM; the bounds are in this unit
    analyte: str | None = None


class AgeLimits(_Frozen):
    """The ages (in years) a scale was made for."""

    min: float | None = None
    max: float | None = None


class Indications(_Frozen):
    """When a scale fits a patient: data for the recommender, never code."""

    settings: tuple[Setting, ...] = ()
    departments: tuple[str, ...] = ()
    age: AgeLimits = AgeLimits()
    sex: Literal["female", "male"] | None = None
    pregnancy: Literal["required", "excluded"] | None = None
    conditions: Codes = Codes()  # diagnoses that call for the scale (ICD-10 prefixes, SNOMED)
    medications: Codes = Codes()  # drugs that call for it (ATC prefixes, RxNorm)
    complaints: Terms = Terms()  # chief complaints
    findings: Terms = Terms()  # history, diagnoses and findings as written in notes
    triggers: tuple[Trigger, ...] = ()
    refresh: str | None = None  # ISO 8601 duration after which an unchanged result is stale
    # Scales that answer the same question in different ways (the QTc formulas, the eGFR
    # equations) share a family and are recommended as one entry with their variants.
    family: Annotated[str | None, Field(pattern=_ID)] = None
    # False when the inputs are routine measurements (a blood pressure): values written in a
    # text then do not suggest the scale by themselves; only an indication above does.
    data_alone: bool = True


class Reference(_Frozen):
    """A publication the scale comes from or is checked against."""

    key: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    citation: str
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    primary: bool = False

    @property
    def link(self) -> str | None:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


class Licence(_Frozen):
    """Whether the instrument's wording may be redistributed."""

    status: Literal["public-domain", "open", "free-to-use", "permission-required", "proprietary"]
    holder: str | None = None
    note: str = ""
    item_wording: bool = True  # False: labels are paraphrases, the original wording is not shipped


class Expectation(_Frozen):
    """What a worked example must give."""

    value: float | str | None = None  # a number, or an ISO date for date outputs
    band: str | None = None
    tolerance: float | None = None  # absolute; default half a unit of the display precision
    complete: bool = True
    missing: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    alerts: tuple[str, ...] | None = None  # ids of the alerts that fire: exactly these


class Example(_Frozen):
    """A worked example from the source publication or an authoritative reference."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    source: str  # reference key
    where: str = ""  # table, figure, page or case in the source
    description: str = ""
    inputs: dict[str, Any]
    expect: Expectation


class Scale(_Frozen):
    """A clinical scale: a declarative definition loaded from one file of the library."""

    id: Annotated[str, Field(pattern=_ID)]
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    title: str
    short_title: str | None = None
    purpose: str
    population: str
    category: str
    tags: tuple[str, ...] = ()
    loinc: str | None = None
    licence: Licence
    inputs: tuple[InputDef, ...]
    derived: tuple[Derived, ...] = ()
    scoring: Scoring
    output: Output
    bands: tuple[Band, ...] = ()
    bands_note: str | None = None
    alerts: tuple[Alert, ...] = ()
    indications: Indications | None = None
    notes: tuple[str, ...] = ()
    references: tuple[Reference, ...]
    examples: tuple[Example, ...]

    def input(self, input_id: str) -> InputDef:
        for spec in self.inputs:
            if spec.id == input_id:
                return spec
        raise KeyError(input_id)

    @property
    def input_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.inputs)

    @property
    def primary_reference(self) -> Reference:
        return next((r for r in self.references if r.primary), self.references[0])

    def band_for(self, value: float) -> Band | None:
        """The band of a score, read on the value as displayed.

        Clinicians see and guidelines classify the reported (rounded) number: a BMI shown as
        25.0 is overweight even when the unrounded quotient is 24.96, and 59.94 kg / (1.8 m)²
        = 18.4999999... in binary is 18.5, as on paper.
        """
        settled = float(f"{value:.{self.output.precision}f}")
        return next((b for b in self.bands if b.contains(settled)), None)


ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str) -> date:
    """Read ISO ``YYYY-MM-DD`` or US ``MM/DD/YYYY`` (the form MedCalc-Bench uses)."""
    text = text.strip()
    if ISO_DATE.match(text):
        return date.fromisoformat(text)
    us = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", text)
    if us:
        return date(int(us.group(3)), int(us.group(1)), int(us.group(2)))
    raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD)")
