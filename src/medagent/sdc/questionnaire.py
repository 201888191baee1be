"""Export a scale as a FHIR R4 Questionnaire following the SDC profiles, scoring included."""

from __future__ import annotations

import re
from typing import Any

from medagent.scales.model import Condition, InputDef, InputType, Scale
from medagent.sdc.codes import (
    CALCULATED_EXPRESSION,
    CANONICAL_BASE,
    ITEM_CONTROL_SYSTEM,
    ITEM_WEIGHT,
    LOINC,
    MAX_VALUE,
    MIN_VALUE,
    OBSERVATION_EXTRACT,
    OBSERVATION_LINK_PERIOD,
    ORDINAL_VALUE,
    QUESTIONNAIRE_HIDDEN,
    QUESTIONNAIRE_ITEM_CONTROL,
    QUESTIONNAIRE_UNIT,
    RELATED_ARTIFACT,
    SDC_QUESTIONNAIRE,
    SDC_QUESTIONNAIRE_BEHAVE,
    UCUM,
    fhir_id,
    option_coding,
    questionnaire_url,
    score_not_calculated_url,
)
from medagent.sdc.fhirpath import Calculation, scored_items, total_expression

TOTAL_LINK_ID = "total-score"  # hyphenated, so it can never clash with a snake_case input id
HELP_SUFFIX = "-help"

Json = dict[str, Any]


def questionnaire(scale: Scale, *, base: str = CANONICAL_BASE) -> Json:
    """The Questionnaire of one scale as a JSON-ready dict (FHIR R4, SDC profiles)."""
    calc = total_expression(scale, base=base)
    profiles = [SDC_QUESTIONNAIRE]
    if calc.expression is not None:
        profiles.append(SDC_QUESTIONNAIRE_BEHAVE)
    resource: Json = {
        "resourceType": "Questionnaire",
        "id": fhir_id(scale.id),
        "meta": {"profile": profiles},
        "url": questionnaire_url(scale, base),
        "version": scale.version,
        "name": _computable_name(scale.id),
        "title": scale.title,
        "status": "active",
        "publisher": "medagent",
        "description": _description(scale, calc),
        "purpose": f"{scale.purpose}\n\nPopulation: {scale.population}",
        "subjectType": ["Patient"],
    }
    extensions = [_related_artifact(scale, r.key) for r in scale.references]
    if scale.scoring.method == "sum" and calc.expression is None:
        extensions.append({"url": score_not_calculated_url(base), "valueString": calc.reason})
    resource["extension"] = extensions
    copyright_text = _copyright(scale)
    if copyright_text:
        resource["copyright"] = copyright_text
    if scale.loinc:
        resource["code"] = [{"system": LOINC, "code": scale.loinc, "display": scale.title}]
    items = [_item(scale, spec, base=base) for spec in scale.inputs]
    if scale.scoring.method == "sum":
        items.append(_total_item(scale, calc))
    resource["item"] = items
    return resource


def all_questionnaires(*, base: str = CANONICAL_BASE) -> list[Json]:
    """The Questionnaire of every scale of the library, in id order."""
    from medagent.scales import all_scales

    return [questionnaire(s, base=base) for s in all_scales()]


# --------------------------------------------------------------------------- header


def _computable_name(scale_id: str) -> str:
    name = "".join(part[:1].upper() + part[1:] for part in scale_id.split("_"))
    return name if name[:1].isalpha() else f"Scale{name}"


def _description(scale: Scale, calc: Calculation) -> str:
    lines = [f"{scale.title} (medagent scale `{scale.id}` version {scale.version})."]
    if scale.scoring.method == "formula":
        lines.append(
            "The result is computed by medagent (registered formula "
            f"`{scale.scoring.formula}`); this Questionnaire only collects its items and carries "
            "no calculatedExpression."
        )
    elif calc.expression is not None:
        lines.append(
            f"The hidden item `{TOTAL_LINK_ID}` computes the total with a FHIRPath "
            "calculatedExpression that follows medagent's engine exactly; it stays empty while an "
            "answer it needs is missing (nothing is assumed)."
        )
    else:
        lines.append(
            "The total is computed by medagent only: no calculatedExpression is given because "
            f"{calc.reason}."
        )
    if not scale.licence.item_wording:
        lines.append(
            "Item texts are medagent's paraphrases; the instrument's original wording is not "
            "reproduced."
        )
    lines.extend(scale.notes)
    return "\n\n".join(lines)


def _copyright(scale: Scale) -> str:
    licence = scale.licence
    parts = [f"Licence status: {licence.status}."]
    if licence.holder:
        parts.append(f"Holder: {licence.holder}.")
    if licence.note:
        parts.append(licence.note)
    return " ".join(parts)


def _related_artifact(scale: Scale, key: str) -> Json:
    ref = next(r for r in scale.references if r.key == key)
    artifact: Json = {
        "type": "derived-from" if ref is scale.primary_reference else "citation",
        "label": ref.key,
        "citation": ref.citation,
    }
    if ref.link:
        artifact["url"] = ref.link
    return {"url": RELATED_ARTIFACT, "valueRelatedArtifact": artifact}


# --------------------------------------------------------------------------- items


def _item(scale: Scale, spec: InputDef, *, base: str) -> Json:
    item: Json = {"linkId": spec.id, "text": spec.label}
    codes = [spec.loinc] if spec.loinc else []
    codes.extend(c for c in spec.codes.loinc if c not in codes)
    if codes:
        item["code"] = [{"system": LOINC, "code": c} for c in codes]
    extensions: list[Json] = []
    kind = spec.type
    if kind is InputType.BOOLEAN:
        item["type"] = "boolean"
    elif kind is InputType.CHOICE:
        item["type"] = "choice"
        item["answerOption"] = [
            _answer_option(scale, spec, o.code, base=base) for o in spec.options
        ]
    elif kind is InputType.DATE:
        item["type"] = "date"
    else:
        item["type"] = "integer" if kind is InputType.INTEGER else "decimal"
        if spec.unit:
            extensions.append({"url": QUESTIONNAIRE_UNIT, "valueCoding": _ucum(spec.unit)})
        if spec.range is not None:
            value_key = "valueInteger" if kind is InputType.INTEGER else "valueDecimal"
            lo, hi = spec.range
            cast = int if kind is InputType.INTEGER else float
            extensions.append({"url": MIN_VALUE, value_key: cast(lo)})
            extensions.append({"url": MAX_VALUE, value_key: cast(hi)})
    period = _link_period(spec.lookback)
    if period is not None and codes:
        extensions.append({"url": OBSERVATION_LINK_PERIOD, "valueDuration": period})
    if extensions:
        item["extension"] = extensions
    item["required"] = spec.required
    enable = _enable_when(scale, spec, base=base)
    if enable is not None:
        item["enableWhen"], behaviour = enable
        if len(item["enableWhen"]) > 1:
            item["enableBehavior"] = behaviour
    if spec.help:
        item["item"] = [
            {
                "linkId": f"{spec.id}{HELP_SUFFIX}",
                "text": spec.help,
                "type": "display",
                "extension": [
                    {
                        "url": QUESTIONNAIRE_ITEM_CONTROL,
                        "valueCodeableConcept": {
                            "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "help"}]
                        },
                    }
                ],
            }
        ]
    return item


def _answer_option(scale: Scale, spec: InputDef, code: str, *, base: str) -> Json:
    option = spec.option(code)
    assert option is not None
    answer: Json = {"valueCoding": option_coding(option, scale=scale, spec=spec, base=base)}
    if option.points is not None:
        answer["extension"] = [
            {"url": ITEM_WEIGHT, "valueDecimal": option.points},
            {"url": ORDINAL_VALUE, "valueDecimal": option.points},
        ]
    return answer


def _ucum(unit: str) -> Json:
    return {"system": UCUM, "code": unit, "display": unit}


_DURATION = re.compile(r"^P(?:(\d+)([YMWD]))?(?:T(\d+)([HMS]))?$")
_UCUM_TIME = {"Y": "a", "M": "mo", "W": "wk", "D": "d", "H": "h", "S": "s"}


def _link_period(lookback: str | None) -> Json | None:
    """An ISO 8601 lookback with one component (P1Y, PT24H) as a UCUM Duration."""
    if not lookback:
        return None
    match = _DURATION.match(lookback)
    if match is None or (match.group(1) and match.group(3)):
        return None
    if match.group(1):
        value, unit = int(match.group(1)), _UCUM_TIME[match.group(2)]
    elif match.group(3):
        value = int(match.group(3))
        unit = "min" if match.group(4) == "M" else _UCUM_TIME[match.group(4)]
    else:
        return None
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


# --------------------------------------------------------------------------- enableWhen


def _enable_when(scale: Scale, spec: InputDef, *, base: str) -> tuple[list[Json], str] | None:
    """When an input only matters under a condition: the items that use it all have `when`.

    An input that scores by itself, feeds a derived value or a condition, or is used by an
    unconditional item is always enabled. Conditions become enableWhen only when FHIR can say the
    same thing (one item with all its conditions, or several items with one condition each).
    """
    if spec.scores or scale.scoring.method != "sum":
        return None
    if any(spec.id in d.inputs for d in scale.derived):
        return None
    if any(spec.id == c.input for i in scale.scoring.items for c in i.when):
        return None
    users = [i for i in scored_items(scale) if i.source == spec.id]
    if not users or any(not u.when for u in users):
        return None
    if len(users) == 1:
        parts = [_enable(scale, c, base=base) for c in users[0].when]
        if any(part is None for part in parts):
            return None
        return [p for part in parts if part is not None for p in part], "all"
    if any(len(u.when) != 1 for u in users):
        return None
    singles = [_enable(scale, u.when[0], base=base) for u in users]
    if any(s is None or len(s) != 1 for s in singles):
        return None
    return [s[0] for s in singles if s is not None], "any"


def _enable(scale: Scale, cond: Condition, *, base: str) -> list[Json] | None:
    """One condition as enableWhen entries (None when it needs more than one)."""
    spec = next((i for i in scale.inputs if i.id == cond.input), None)
    if spec is None:
        return None
    entries: list[Json] = []
    if cond.eq is not None:
        if spec.type is InputType.BOOLEAN and isinstance(cond.eq, bool):
            entries.append({"question": spec.id, "operator": "=", "answerBoolean": cond.eq})
        elif spec.type is InputType.CHOICE and isinstance(cond.eq, str):
            option = spec.option(cond.eq)
            if option is None:
                return None
            coding = option_coding(option, scale=scale, spec=spec, base=base)
            entries.append({"question": spec.id, "operator": "=", "answerCoding": coding})
        else:
            return None
    if cond.in_ is not None:
        return None
    for op, bound in ((">=", cond.ge), (">", cond.gt), ("<=", cond.le), ("<", cond.lt)):
        if bound is None:
            continue
        if spec.type is InputType.INTEGER and float(bound).is_integer():
            entries.append({"question": spec.id, "operator": op, "answerInteger": int(bound)})
        elif spec.type is InputType.QUANTITY:
            entries.append({"question": spec.id, "operator": op, "answerDecimal": float(bound)})
        else:
            return None
    return entries or None


# --------------------------------------------------------------------------- total


def _total_item(scale: Scale, calc: Calculation) -> Json:
    item: Json = {
        "linkId": TOTAL_LINK_ID,
        "text": scale.output.label,
        "type": calc.result_type,
        "readOnly": True,
    }
    if scale.loinc:
        item["code"] = [{"system": LOINC, "code": scale.loinc, "display": scale.title}]
    extensions: list[Json] = [{"url": QUESTIONNAIRE_HIDDEN, "valueBoolean": True}]
    if scale.output.unit:
        extensions.append({"url": QUESTIONNAIRE_UNIT, "valueCoding": _ucum(scale.output.unit)})
    if calc.expression is not None:
        extensions.append(
            {
                "url": CALCULATED_EXPRESSION,
                "valueExpression": {
                    "description": f"Total of {scale.id} v{scale.version}, as medagent computes it",
                    "language": "text/fhirpath",
                    "expression": calc.expression,
                },
            }
        )
    if scale.loinc:
        extensions.append({"url": OBSERVATION_EXTRACT, "valueBoolean": True})
    item["extension"] = extensions
    return item
