"""Drug names written in free text, read as WHO ATC codes (data in ``drugs.yaml``)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medagent.recommend.context import Code, RecommendError
from medagent.recommend.text import term_index

_ATC = r"^[A-Z](?:\d{2}(?:[A-Z](?:[A-Z](?:\d{2})?)?)?)?$"


class _Drug(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    atc: Annotated[str, Field(pattern=_ATC)]
    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()


class _Drugs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drugs: tuple[_Drug, ...]


def parse_drugs(text: str, *, source: str = "drugs.yaml") -> dict[str, str]:
    """Name (lower case) → ATC code; a name listed under two codes is an error."""
    raw: Any = yaml.safe_load(text)
    try:
        parsed = _Drugs.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise RecommendError(f"{source}: {problems}") from None
    names: dict[str, str] = {}
    for drug in parsed.drugs:
        for name in (*drug.en, *drug.zh):
            key = re.sub(r"\s+", " ", name.strip().lower())
            if not key:
                raise RecommendError(f"{source}: an empty name under {drug.atc}")
            if names.get(key, drug.atc) != drug.atc:
                raise RecommendError(
                    f"{source}: {name!r} is listed under {names[key]} and {drug.atc}"
                )
            names[key] = drug.atc
    return names


@cache
def drug_names() -> dict[str, str]:
    """The drug names shipped with medagent."""
    text = resources.files("medagent.recommend").joinpath("drugs.yaml").read_text("utf-8")
    return parse_drugs(text, source="medagent/recommend/drugs.yaml")


@cache
def _terms() -> tuple[str, ...]:
    return tuple(sorted(drug_names()))


def read_medications(text: str) -> tuple[Code, ...]:
    """The drugs the text says the patient takes or receives (negated and family mentions
    left out), one code per drug, in order of first mention."""
    names = drug_names()
    out: dict[str, Code] = {}
    covered = 0  # a name inside a longer one ("肝素" in "依诺肝素") is that longer drug
    for hit in term_index(_terms()).find(text):
        if hit.end <= covered:
            continue
        covered = hit.end
        if hit.negated or hit.family:
            continue
        atc = names[hit.term]
        if atc not in out:
            out[atc] = Code("atc", atc, hit.quote, source="text")
    return tuple(out.values())
