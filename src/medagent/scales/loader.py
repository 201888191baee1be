"""Read scale files into validated :class:`Scale` models, collecting every problem with its path."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import ValidationError

from medagent.errors import Problem, ScaleDefinitionError, UnitError
from medagent.scales.formulas import get_formula
from medagent.scales.model import Condition, InputDef, InputType, Interval, Scale
from medagent.units import normalize_unit
from medagent.units.registry import analytes

try:  # the C loader is several times faster; fall back when PyYAML was built without it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


def parse_scale(text: str, *, source: str = "<text>") -> Scale:
    """Parse and validate one scale file's text."""
    return scale_from_dict(yaml_document(text, source=source), source=source)


def yaml_document(text: str, *, source: str = "<text>") -> dict[str, Any]:
    """The mapping a scale file holds (a safe loader; JSON-compatible values only)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader (C or pure)
    except yaml.YAMLError as exc:
        raise ScaleDefinitionError(source, [Problem("", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ScaleDefinitionError(source, [Problem("", "a scale file must be a mapping")])
    return data


def scale_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> Scale:
    """Build a Scale from plain data and check every rule of the scale format."""
    try:
        scale = Scale.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
        ]
        raise ScaleDefinitionError(source, problems) from None
    problems = list(check_scale(scale))
    if problems:
        raise ScaleDefinitionError(source, problems)
    return scale


def check_scale(scale: Scale) -> Iterable[Problem]:
    """Every rule of the format that a schema alone cannot express."""
    yield from _check_unique("inputs", [i.id for i in scale.inputs])
    yield from _check_unique("derived", [d.id for d in scale.derived])
    yield from _check_unique("scoring.items", [i.id for i in scale.scoring.items])
    yield from _check_unique("bands", [b.id for b in scale.bands])
    yield from _check_unique("references", [r.key for r in scale.references])
    yield from _check_unique("examples", [e.id for e in scale.examples])
    yield from _check_unique("alerts", [a.id for a in scale.alerts])
    yield from _check_inputs(scale)
    yield from _check_scoring(scale)
    yield from _check_output(scale)
    yield from _check_references(scale)
    yield from _check_examples(scale)
    yield from _check_guidance(scale)
    yield from _check_alerts(scale)
    yield from _check_indications(scale)


def _check_unique(path: str, ids: list[str]) -> Iterable[Problem]:
    seen: set[str] = set()
    for n, i in enumerate(ids):
        if i in seen:
            yield Problem(f"{path}.{n}.id", f"duplicate id {i!r}")
        seen.add(i)


def _check_inputs(scale: Scale) -> Iterable[Problem]:
    known_analytes = analytes()
    for n, spec in enumerate(scale.inputs):
        path = f"inputs.{n}({spec.id})"
        numeric = spec.type in (InputType.QUANTITY, InputType.INTEGER)
        if spec.type is InputType.QUANTITY:
            if spec.unit is None:
                yield Problem(f"{path}.unit", "a quantity needs a UCUM unit")
            if spec.range is None:
                yield Problem(f"{path}.range", "a quantity needs an allowed range")
        if spec.type is InputType.INTEGER and spec.range is None:
            yield Problem(f"{path}.range", "an integer input needs an allowed range")
        if spec.unit is not None:
            try:
                normalize_unit(spec.unit)
            except UnitError as exc:
                yield Problem(f"{path}.unit", str(exc))
        if spec.range is not None and spec.range[0] > spec.range[1]:
            yield Problem(f"{path}.range", "lower bound above upper bound")
        if spec.type is InputType.CHOICE:
            if len(spec.options) < 2:
                yield Problem(f"{path}.options", "a choice needs at least two options")
            yield from _check_unique(f"{path}.options", [o.code for o in spec.options])
            with_points = [o.points is not None for o in spec.options]
            if any(with_points) and not all(with_points):
                yield Problem(f"{path}.options", "either every option has points or none has")
        elif spec.options:
            yield Problem(f"{path}.options", "only a choice input has options")
        if (spec.brackets or spec.per_unit is not None) and not numeric:
            yield Problem(f"{path}.brackets", "brackets and per_unit need a numeric input")
        if spec.points is not None and spec.type is not InputType.BOOLEAN:
            yield Problem(f"{path}.points", "fixed points go on a boolean input")
        if spec.brackets and spec.range is not None:
            yield from _check_cover(
                f"{path}.brackets", spec.brackets, spec.range, spec.type is InputType.INTEGER
            )
        if spec.analyte is not None and spec.analyte not in known_analytes:
            yield Problem(f"{path}.analyte", f"unknown analyte {spec.analyte!r}")


def _check_scoring(scale: Scale) -> Iterable[Problem]:
    inputs = {i.id: i for i in scale.inputs}
    derived = {d.id for d in scale.derived}
    groups = {g.id for g in scale.scoring.groups}
    for n, d in enumerate(scale.derived):
        if get_formula(d.formula) is None:
            yield Problem(f"derived.{n}.formula", f"no formula registered as {d.formula!r}")
        for dep in d.inputs:
            if dep not in inputs:
                yield Problem(f"derived.{n}.inputs", f"unknown input {dep!r}")
    for n, spec in enumerate(scale.inputs):
        if spec.group is not None and spec.group not in groups:
            yield Problem(f"inputs.{n}({spec.id}).group", f"unknown group {spec.group!r}")
    for n, item in enumerate(scale.scoring.items):
        path = f"scoring.items.{n}({item.id})"
        if item.id in inputs:
            yield Problem(f"{path}.id", "an item id may not repeat an input id")
        if item.source not in inputs and item.source not in derived:
            yield Problem(f"{path}.source", f"unknown input or derived value {item.source!r}")
        src = inputs.get(item.source)
        if src is not None and src.type is InputType.CHOICE:
            codes = {o.code for o in src.options}
            for code in item.option_points:
                if code not in codes:
                    yield Problem(f"{path}.option_points", f"{code!r} is not an option")
        has_rule = (
            item.points is not None
            or item.brackets
            or item.per_unit is not None
            or item.option_points
        )
        if not has_rule:
            yield Problem(path, "an item needs points, brackets, per_unit or option_points")
        yield from _check_conditions(f"{path}.when", item.when, inputs)
        if item.group is not None and item.group not in groups:
            yield Problem(f"{path}.group", f"unknown group {item.group!r}")
        rng = src.range if src is not None else None
        if item.brackets and rng is not None and not item.when:
            is_int = src is not None and src.type is InputType.INTEGER
            yield from _check_cover(f"{path}.brackets", item.brackets, rng, is_int)
    if scale.scoring.method == "formula":
        if not scale.scoring.formula:
            yield Problem("scoring.formula", "method formula needs a formula name")
        elif get_formula(scale.scoring.formula) is None:
            yield Problem("scoring.formula", f"no formula registered as {scale.scoring.formula!r}")
    else:
        if scale.scoring.formula:
            yield Problem("scoring.formula", "method sum takes no formula")
        if not scale.scoring.items and not any(i.scores for i in scale.inputs):
            yield Problem("scoring", "method sum needs inputs or items with points")
        for n, spec in enumerate(scale.inputs):
            if spec.type is InputType.CHOICE and spec.options and spec.scores:
                continue
            if spec.type is InputType.DATE:
                yield Problem(f"inputs.{n}.type", "a points scale cannot score a date")


def _check_conditions(
    path: str, conditions: Iterable[Condition], inputs: dict[str, InputDef]
) -> Iterable[Problem]:
    """A condition names an input and tests it in a way that input's values can meet."""
    for m, cond in enumerate(conditions):
        here = f"{path}.{m}"
        spec = inputs.get(cond.input)
        if spec is None:
            yield Problem(f"{here}.input", f"unknown input {cond.input!r}")
            continue
        bounds = (cond.ge, cond.gt, cond.le, cond.lt)
        if cond.eq is None and cond.in_ is None and all(b is None for b in bounds):
            yield Problem(here, "a condition needs eq, in, ge, gt, le or lt")
        kind = spec.type
        if kind is InputType.CHOICE:
            codes = {o.code for o in spec.options}
            if cond.eq is not None and cond.eq not in codes:
                yield Problem(f"{here}.eq", f"{cond.eq!r} is not an option of {spec.id}")
            for value in cond.in_ or ():
                if value not in codes:
                    yield Problem(f"{here}.in", f"{value!r} is not an option of {spec.id}")
        else:
            if cond.in_ is not None:
                yield Problem(f"{here}.in", f"in needs a choice input; {spec.id} is {kind.value}")
            if kind is InputType.BOOLEAN and cond.eq is not None and not isinstance(cond.eq, bool):
                yield Problem(f"{here}.eq", f"{spec.id} is boolean: eq takes true or false")
            numeric = kind in (InputType.QUANTITY, InputType.INTEGER)
            if numeric and cond.eq is not None and not _is_number(cond.eq):
                yield Problem(f"{here}.eq", f"{spec.id} is numeric: eq takes a number")
            if kind is InputType.DATE and cond.eq is not None:
                yield Problem(f"{here}.eq", f"{spec.id} is a date: a condition cannot test it")
        given = [k for k, b in zip(("ge", "gt", "le", "lt"), bounds, strict=True) if b is not None]
        if given and kind not in (InputType.QUANTITY, InputType.INTEGER):
            yield Problem(
                f"{here}.{given[0]}", f"{given[0]} needs a numeric input; {spec.id} is {kind.value}"
            )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_output(scale: Scale) -> Iterable[Problem]:
    from medagent.scales.engine import score_range

    out = scale.output
    if out.type == "date":
        if scale.bands:
            yield Problem("bands", "a date output has no bands")
        if scale.scoring.method != "formula":
            yield Problem("output.type", "a date output needs a formula")
    if not scale.bands:
        if not scale.bands_note and out.type != "date":
            yield Problem("bands", "give interpretation bands, or a bands_note saying why none")
        return
    try:
        lo, hi = score_range(scale)
    except Exception as exc:  # a broken item table shows up here first
        yield Problem("scoring", f"cannot find the score range: {exc}")
        return
    if lo is None or hi is None:
        yield Problem("output.range", "bands need the score range: declare output.range")
        return
    yield from _check_cover("bands", scale.bands, (lo, hi), out.type == "integer")


def _check_cover(
    path: str, intervals: Iterable[Interval], span: tuple[float, float], integer: bool
) -> Iterable[Problem]:
    """Intervals must cover ``span`` with no gap and no overlap."""
    ordered = sorted(intervals, key=lambda b: (b.lower, not b.lower_closed))
    if not ordered:
        return
    lo, hi = span
    if integer and hi - lo <= 100000:
        for x in range(math.ceil(lo), math.floor(hi) + 1):
            hits = [b for b in ordered if b.contains(x)]
            if not hits:
                yield Problem(path, f"no interval covers {x}")
                return
            if len(hits) > 1:
                yield Problem(path, f"{x} is covered {len(hits)} times")
                return
        return
    first, last = ordered[0], ordered[-1]
    if not first.contains(lo):
        yield Problem(path, f"the lowest value {lo:g} is not covered")
    if not last.contains(hi):
        yield Problem(path, f"the highest value {hi:g} is not covered")
    for a, b in itertools.pairwise(ordered):
        if a.upper < b.lower or (a.upper == b.lower and not a.upper_closed and not b.lower_closed):
            yield Problem(path, f"gap between {a.describe('x')} and {b.describe('x')}")
        elif a.upper > b.lower or (a.upper == b.lower and a.upper_closed and b.lower_closed):
            yield Problem(path, f"overlap between {a.describe('x')} and {b.describe('x')}")


def _check_references(scale: Scale) -> Iterable[Problem]:
    if not scale.references:
        yield Problem("references", "at least one reference is needed")
        return
    if not any(r.doi or r.pmid for r in scale.references):
        yield Problem("references", "at least one reference needs a DOI or a PMID")
    if sum(r.primary for r in scale.references) > 1:
        yield Problem("references", "only one reference can be primary")


_CJK = re.compile(r"[\u3400-\u9fff]")
_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


def _check_guidance(scale: Scale) -> Iterable[Problem]:
    refs = {r.key for r in scale.references}
    for n, band in enumerate(scale.bands):
        for m, advice in enumerate(band.guidance):
            path = f"bands.{n}({band.id}).guidance.{m}"
            if advice.reference not in refs:
                yield Problem(f"{path}.reference", f"{advice.reference!r} is not a reference key")
            if not _recommends(advice.text):
                yield Problem(
                    f"{path}.text", "phrase it as what the guideline recommends or suggests"
                )


def _check_alerts(scale: Scale) -> Iterable[Problem]:
    refs = {r.key for r in scale.references}
    inputs = {i.id: i for i in scale.inputs}
    for n, alert in enumerate(scale.alerts):
        path = f"alerts.{n}({alert.id})"
        yield from _check_conditions(f"{path}.when", alert.when, inputs)
        if alert.reference not in refs:
            yield Problem(f"{path}.reference", f"{alert.reference!r} is not a reference key")
        if not _recommends(alert.text):
            yield Problem(f"{path}.text", "phrase it as what the source recommends or suggests")


def _recommends(text: str) -> bool:
    folded = text.casefold()
    return "recommend" in folded or "suggest" in folded


def _check_indications(scale: Scale) -> Iterable[Problem]:
    ind = scale.indications
    if ind is None:
        return
    for lang, terms in (
        ("en", ind.complaints.en + ind.findings.en),
        ("zh", ind.complaints.zh + ind.findings.zh),
    ):
        for term in terms:
            if not term.strip():
                yield Problem(f"indications.{lang}", "empty term")
            if lang == "zh" and not _CJK.search(term):
                yield Problem("indications.zh", f"{term!r} has no Chinese characters")
    if ind.age.min is not None and ind.age.max is not None and ind.age.min > ind.age.max:
        yield Problem("indications.age", "min above max")
    for n, trigger in enumerate(ind.triggers):
        try:
            normalize_unit(trigger.unit)
        except UnitError as exc:
            yield Problem(f"indications.triggers.{n}.unit", str(exc))
        if trigger.analyte is not None and trigger.analyte not in analytes():
            yield Problem(
                f"indications.triggers.{n}.analyte", f"unknown analyte {trigger.analyte!r}"
            )
        if not trigger.loinc:
            yield Problem(f"indications.triggers.{n}.loinc", "a trigger needs LOINC codes")
    if ind.refresh is not None and not _DURATION.match(ind.refresh):
        yield Problem("indications.refresh", f"{ind.refresh!r} is not an ISO 8601 duration")
    cues = (
        ind.settings
        or ind.conditions.icd10
        or ind.conditions.snomed
        or ind.medications.atc
        or ind.medications.rxnorm
        or ind.complaints.en
        or ind.findings.en
        or ind.triggers
    )
    if not cues:
        yield Problem("indications", "give at least one cue: settings, codes, terms or triggers")


def _check_examples(scale: Scale) -> Iterable[Problem]:
    if len(scale.examples) < 3:
        yield Problem(
            "examples", f"at least three worked examples are needed, found {len(scale.examples)}"
        )
    refs = {r.key for r in scale.references}
    inputs = set(scale.input_ids)
    bands = {b.id for b in scale.bands}
    alert_ids = {a.id for a in scale.alerts}
    for n, ex in enumerate(scale.examples):
        path = f"examples.{n}({ex.id})"
        if ex.source not in refs:
            yield Problem(f"{path}.source", f"{ex.source!r} is not a reference key")
        for key in ex.inputs:
            if key not in inputs:
                yield Problem(f"{path}.inputs", f"{key!r} is not an input")
        if ex.expect.band is not None and ex.expect.band not in bands:
            yield Problem(f"{path}.expect.band", f"{ex.expect.band!r} is not a band id")
        if ex.expect.complete and ex.expect.value is None:
            yield Problem(f"{path}.expect", "a complete example needs a value")
        if not ex.expect.complete and not ex.expect.missing:
            yield Problem(f"{path}.expect", "an incomplete example lists what is missing")
        for alert_id in ex.expect.alerts or ():
            if alert_id not in alert_ids:
                yield Problem(f"{path}.expect.alerts", f"{alert_id!r} is not an alert id")
