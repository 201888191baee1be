"""The notes lexicon: concepts (synonyms, units) joined to scale inputs by code or binding."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medagent.errors import Problem, ScaleDefinitionError
from medagent.scales.model import InputDef, Scale


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Concept(_Frozen):
    """One thing a note can say: a measurement, a finding, a date, a medication or a choice."""

    kind: Literal["quantity", "bp", "finding", "date", "medication", "choice", "age", "sex"]
    synonyms: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    bare_units: tuple[str, ...] = ()  # units tried, in order, when the note gives none
    before: bool = False  # the value may also precede the name ("57 % FiO2", "weighs 70 kg")
    part: int | None = None  # bp: 0 systolic, 1 diastolic
    analyte: str | None = None
    loinc: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    experiencer: Literal["patient", "family"] = "patient"
    recent: bool = False  # only a current or recent mention counts (historical ones do not)
    options: dict[str, tuple[str, ...]] = {}
    constants: dict[str, float] = {}
    # A number with one of the units, named nowhere, is read only next to a body-size context
    # ("He was 170 cm and 70 kg"), and never after a word such as "lost" or "lesion".
    unit_only_near: str | None = None
    unit_only_not_after: tuple[
        str, ...
    ] = ()  # phrases that state a value ("on room air": FiO2 21 %)


class Binding(_Frozen):
    """An explicit link from one scale input to concepts."""

    concept: str | tuple[str, ...]
    part: Literal["value", "name", "dose", "frequency"] = "value"
    invert: bool = False  # the input is the absence of the concept ("cough absent")


class Context(_Frozen):
    """ConText trigger phrases."""

    negation_pre: tuple[str, ...]
    negation_post: tuple[str, ...]
    uncertain_pre: tuple[str, ...]
    family_pre: tuple[str, ...]
    historical_pre: tuple[str, ...]
    historical_post: tuple[str, ...] = ()  # regular expressions
    presentation_cues: tuple[str, ...] = ()  # regular expressions
    later_cues: tuple[str, ...] = ()
    past_cues: tuple[str, ...] = ()
    terminate: tuple[str, ...]


class Lexicon(_Frozen):
    """The whole lexicon file."""

    unit_spellings: dict[str, str]
    context: Context
    concepts: dict[str, Concept]
    bindings: dict[str, str | list[str] | Binding] = Field(default_factory=dict)


class Link(_Frozen):
    """How one scale input is read: which concepts, which part, inverted or not, and why."""

    input_id: str
    concepts: tuple[str, ...]
    part: Literal["value", "name", "dose", "frequency"] = "value"
    invert: bool = False
    via: str  # binding | loinc | icd10 | snomed | analyte


@cache
def lexicon() -> Lexicon:
    """The lexicon shipped with medagent, validated (unknown keys and bad patterns rejected)."""
    text = resources.files("medagent.notes").joinpath("lexicon.yaml").read_text(encoding="utf-8")
    raw: Any = yaml.safe_load(text)
    try:
        lex = Lexicon.model_validate(raw)
    except ValidationError as exc:
        problems = [Problem(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
        raise ScaleDefinitionError("notes/lexicon.yaml", problems) from None
    problems = []
    for cid, concept in lex.concepts.items():
        for i, pattern in enumerate(concept.synonyms):
            try:
                re.compile(pattern)
            except re.error as err:
                problems.append(Problem(f"concepts.{cid}.synonyms.{i}", str(err)))
    for key, target in lex.bindings.items():
        names = _binding(target).concept
        for name in (names,) if isinstance(names, str) else names:
            if name not in lex.concepts:
                problems.append(Problem(f"bindings.{key}", f"unknown concept {name!r}"))
    if problems:
        raise ScaleDefinitionError("notes/lexicon.yaml", problems)
    return lex


def _binding(target: str | list[str] | Binding) -> Binding:
    if isinstance(target, Binding):
        return target
    return Binding(concept=target if isinstance(target, str) else tuple(target))


def _code_hits(codes: tuple[str, ...], system: str, spec: InputDef) -> tuple[str, ...]:
    """Concepts whose codes fall under the input's codes; failing that, the concepts with the
    most specific code above them (an input coded C77 is not answered by every cancer)."""
    narrower: list[str] = []
    broader: list[tuple[int, str]] = []
    for cid, c in lexicon().concepts.items():
        if not _kind_fits(spec, c):
            continue
        theirs: tuple[str, ...] = getattr(c, system)
        if any(y.startswith(x) for x in codes for y in theirs):
            narrower.append(cid)
        else:
            depth = max((len(y) for x in codes for y in theirs if x.startswith(y)), default=0)
            if depth:
                broader.append((depth, cid))
    if narrower:
        return tuple(narrower)
    best = max((d for d, _ in broader), default=0)
    return tuple(cid for d, cid in broader if d == best)


def link_input(scale: Scale, spec: InputDef) -> Link | None:
    """Which concepts answer one input: explicit binding, then codes, then analyte."""
    lex = lexicon()
    target = lex.bindings.get(f"{scale.id}.{spec.id}") or lex.bindings.get(f"*.{spec.id}")
    if target is not None:
        b = _binding(target)
        names = (b.concept,) if isinstance(b.concept, str) else b.concept
        return Link(input_id=spec.id, concepts=names, part=b.part, invert=b.invert, via="binding")
    for system in ("loinc", "icd10", "snomed"):
        codes: tuple[str, ...] = getattr(spec.codes, system)
        if system == "loinc" and spec.loinc:
            codes = (*codes, spec.loinc)
        if not codes:
            continue
        hits = _code_hits(codes, system, spec)
        if hits:
            return Link(
                input_id=spec.id, concepts=hits[:1] if system == "loinc" else hits, via=system
            )
    if spec.analyte:
        hits = tuple(cid for cid, c in lex.concepts.items() if c.analyte == spec.analyte)
        if hits:
            return Link(input_id=spec.id, concepts=hits[:1], via="analyte")
    return None


def _kind_fits(spec: InputDef, concept: Concept) -> bool:
    if spec.type.value == "boolean":
        return concept.kind == "finding"
    if spec.type.value == "choice":
        return concept.kind in ("choice", "sex")
    if spec.type.value == "date":
        return concept.kind == "date"
    return concept.kind in ("quantity", "bp", "age")


def links(scale: Scale) -> dict[str, Link]:
    """Every input of a scale that the lexicon can read, by input id."""
    out: dict[str, Link] = {}
    for spec in scale.inputs:
        link = link_input(scale, spec)
        if link is not None:
            out[spec.id] = link
    return out
