"""UCUM unit codes, their spelling variants, and conversions between them.

Every conversion in medagent goes through :func:`converter`. Units are written as UCUM codes
(``mg/dL``, ``umol/L``, ``mm[Hg]``, ``Cel``, ``/min``). A conversion between a mass and an amount
of substance (mg/dL to umol/L) needs the analyte's molar mass, and one between equivalents and
moles needs its valence; both come from ``analytes.yaml``, never from code.

pint does the arithmetic. Building its registry costs a few hundred milliseconds, so it is built
only when a conversion between two different units is first asked for, and each conversion is
reduced once to an affine map ``y = a*x + b`` and cached.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medagent.cache import cache_dir, read_json, write_json
from medagent.errors import UnitError

# UCUM atoms whose pint spelling differs. Anything else is an SI prefix + SI atom that pint
# already spells the UCUM way (mg, dL, umol, mL, ms, kg, ...).
_ATOM_TO_PINT: dict[str, str] = {
    "a": "year",
    "mo": "month",
    "wk": "week",
    "d": "day",
    "h": "hour",
    "min": "minute",
    "s": "second",
    "mm[Hg]": "mmHg",
    "cm[H2O]": "cmH2O",
    "Cel": "degC",
    "[degF]": "degF",
    "[lb_av]": "pound",
    "[oz_av]": "ounce",
    "[in_i]": "inch",
    "[ft_i]": "foot",
    "[iU]": "iu",
    "[IU]": "iu",
    "m[iU]": "milliiu",
    "m[IU]": "milliiu",
    "u[iU]": "microiu",
    "u[IU]": "microiu",
    "U": "enzyme_unit",
    "%": "percent",
    "1": "dimensionless",
    "[pH]": "dimensionless",  # pH is a number; medagent never converts it to another unit
    "ug": "microgram",
    "umol": "micromole",
    "uL": "microliter",
    "meq": "millieq",
    "eq": "eq",
    "mEq": "millieq",
}

_PINT_EXTRA_DEFINITIONS = (
    "iu = [international_unit]",
    "milliiu = 1e-3 * iu",
    "microiu = 1e-6 * iu",
    # Equivalents are kept as their own dimension; the analyte's valence bridges them to moles.
    "eq = [equivalent]",
    "millieq = 1e-3 * eq",
)

# SI-style atoms that take metric prefixes in UCUM, and those prefixes (pint spellings).
_BASE_TO_PINT = {
    "g": "gram",
    "L": "liter",
    "l": "liter",
    "m": "meter",
    "mol": "mole",
    "s": "second",
    "eq": "eq",
    "U": "enzyme_unit",
    "Pa": "pascal",
    "K": "kelvin",
    "bar": "bar",
}
_PREFIX_TO_PINT = {
    "": "",
    "k": "kilo",
    "h": "hecto",
    "da": "deca",
    "d": "deci",
    "c": "centi",
    "m": "milli",
    "u": "micro",
    "n": "nano",
    "p": "pico",
    "f": "femto",
    "M": "mega",
    "G": "giga",
}


def _si_base(term: str) -> str:
    for base in sorted(_BASE_TO_PINT, key=len, reverse=True):
        if term.endswith(base) and term[: -len(base)] in _PREFIX_TO_PINT:
            return base
    return ""


def _is_prefixed_si(term: str) -> bool:
    return bool(_si_base(term))


_ANNOTATION = re.compile(r"\{[^}]*\}")
_POWER_OF_TEN = re.compile(r"^10\*(-?\d+)$")
_ATOM_EXPONENT = re.compile(r"^(.*?[^\d-])(-?\d+)$")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with its UCUM unit."""

    value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True, slots=True)
class Analyte:
    """What a substance needs for conversions between mass, moles and equivalents."""

    name: str
    molar_mass: float | None  # g/mol
    valence: int | None


@cache
def _aliases() -> dict[str, str]:
    text = resources.files("medagent.units").joinpath("aliases.yaml").read_text(encoding="utf-8")
    raw: dict[str, list[str]] = yaml.safe_load(text)
    table: dict[str, str] = {}
    for code, spellings in raw.items():
        table[code.casefold()] = code
        for spelling in spellings:
            key = spelling.casefold()
            if key in table and table[key] != code:
                raise UnitError(f"unit spelling {spelling!r} is claimed by {table[key]} and {code}")
            table[key] = code
    return table


@cache
def analytes() -> dict[str, Analyte]:
    """Molar masses and valences of the analytes that scales convert, by analyte name."""
    text = resources.files("medagent.units").joinpath("analytes.yaml").read_text(encoding="utf-8")
    raw: dict[str, dict[str, Any]] = yaml.safe_load(text)
    out: dict[str, Analyte] = {}
    for name, fields in raw.items():
        unknown = set(fields) - {"molar_mass", "valence", "note"}
        if unknown:
            raise UnitError(f"analytes.yaml: {name}: unknown keys {sorted(unknown)}")
        out[name] = Analyte(name, fields.get("molar_mass"), fields.get("valence"))
    return out


@cache
def normalize_unit(text: str) -> str:
    """Return the UCUM code for a unit as written by people (``mm Hg``, ``µmol/L``, ``bpm``)."""
    cleaned = text.strip().replace("µ", "u").replace("μ", "u")
    known = _aliases().get(cleaned.casefold())
    if known is not None:
        return known
    _to_pint_expression(cleaned)  # raises UnitError when it is not UCUM either
    return cleaned


def _to_pint_expression(ucum: str) -> str:
    """Translate a UCUM code into a pint expression (a small subset: ., /, exponents, 10*n)."""
    body = _ANNOTATION.sub("", ucum).strip()
    if not body:
        return "dimensionless"
    if body.startswith("/"):
        body = "1" + body
    parts = re.split(r"([./])", body)
    out: list[str] = []
    for part in parts:
        if part == "" and parts:
            out.append("1")  # a term that was only an annotation, such as /{1.73_m2}
        elif part == ".":
            out.append("*")
        elif part == "/":
            out.append("/")
        else:
            out.append(_atom_to_pint(part, ucum))
    return " ".join(out)


def _atom_to_pint(term: str, whole: str) -> str:
    if not term:
        raise UnitError(f"unit {whole!r}: empty term")
    power = _POWER_OF_TEN.match(term)
    if power:
        return f"(1e{power.group(1)})"
    if term in _ATOM_TO_PINT:
        return _ATOM_TO_PINT[term]
    exponent = _ATOM_EXPONENT.match(term)
    if exponent and exponent.group(1) not in ("10*",):
        base = exponent.group(1)
        return f"({_ATOM_TO_PINT.get(base, base)})**{exponent.group(2)}"
    if _is_prefixed_si(term):
        return _PREFIX_TO_PINT[term[: -len(_si_base(term))]] + _BASE_TO_PINT[_si_base(term)]
    raise UnitError(f"unit {whole!r}: {term!r} is not a UCUM term medagent knows")


@cache
def _registry() -> Any:
    import pint  # imported here: building the registry is the slow part of start-up

    ureg: Any = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    for line in _PINT_EXTRA_DEFINITIONS:
        ureg.define(line)
    return ureg


def _pint_unit(ucum: str) -> tuple[float, Any]:
    """The pint units of a UCUM code and the pure number it carries (10*9/L carries 1e9)."""
    ureg = _registry()
    expression = _to_pint_expression(ucum)
    try:
        parsed = ureg.parse_expression(expression)
    except Exception as exc:  # pint raises several unrelated types for bad expressions
        raise UnitError(f"unit {ucum!r} is not understood ({exc})") from exc
    if not hasattr(parsed, "units"):
        return float(parsed), ureg.dimensionless
    return float(parsed.magnitude), parsed.units


@cache
def converter(source: str, target: str, analyte: str | None = None) -> Callable[[float], float]:
    """A function converting a number in ``source`` to ``target`` (UCUM codes).

    Every unit change medagent makes is affine (temperatures have an offset), so each conversion
    is measured once with pint and then applied as ``a*x + b``. The coefficients are kept in a
    small on-disk cache, so a new process converts without building pint's registry.
    """
    src = normalize_unit(source)
    dst = normalize_unit(target)
    if src == dst:
        return _identity
    key = f"{src}|{dst}|{analyte or ''}"
    cache = _disk_cache()
    known = cache.get(key)
    if known is None:
        known = _measure(src, dst, analyte)
        cache[key] = known
        _save_disk_cache(cache)
    slope, offset = known
    if offset == 0.0:
        return lambda x: x * slope
    return lambda x: x * slope + offset


def _measure(src: str, dst: str, analyte: str | None) -> tuple[float, float]:
    """Slope and offset of the conversion, measured with pint (far apart, against cancellation)."""
    ureg = _registry()
    src_factor, src_unit = _pint_unit(src)
    dst_factor, dst_unit = _pint_unit(dst)
    bridge = _analyte_bridge(src_unit, dst_unit, analyte, ureg)

    def through(x: float) -> float:
        q = bridge(ureg.Quantity(x * src_factor, src_unit))
        return float(q.to(dst_unit).magnitude) / dst_factor

    try:
        zero = through(0.0)
        slope = (through(1000.0) - zero) / 1000.0 if zero != 0.0 else through(1.0)
    except Exception as exc:
        why = f" for analyte {analyte}" if analyte else ""
        raise UnitError(f"cannot convert {src} to {dst}{why}: {exc}") from exc
    return slope, zero


def _cache_path() -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    # The file name changes with anything that could change a coefficient.
    data = resources.files("medagent.units")
    digest = hashlib.sha256()
    for name in ("aliases.yaml", "analytes.yaml"):
        digest.update(data.joinpath(name).read_bytes())
    digest.update("|".join(_PINT_EXTRA_DEFINITIONS).encode())
    digest.update(_pint_version().encode())
    return base / f"unit-conversions-{digest.hexdigest()[:16]}.json"


def _pint_version() -> str:
    from importlib.metadata import version

    return version("pint")


@cache
def _disk_cache() -> dict[str, tuple[float, float]]:
    path = _cache_path()
    raw = read_json(path) if path is not None else None
    if not isinstance(raw, dict):
        return {}
    try:
        return {k: (float(v[0]), float(v[1])) for k, v in raw.items()}
    except (ValueError, TypeError, IndexError):
        return {}  # a damaged cache is rebuilt, never trusted


def _save_disk_cache(table: dict[str, tuple[float, float]]) -> None:
    path = _cache_path()
    if path is not None:
        write_json(path, table)


def _identity(x: float) -> float:
    return x


def _analyte_bridge(src_unit: Any, dst_unit: Any, analyte: str | None, ureg: Any) -> Any:
    """Rewrite a quantity between mass, moles and equivalents using the analyte's data."""
    src_dim = dict(src_unit.dimensionality)
    dst_dim = dict(dst_unit.dimensionality)
    if src_dim == dst_dim:
        return lambda q: q
    info = analytes().get(analyte) if analyte else None

    def bridge(q: Any) -> Any:
        kinds = {"[mass]", "[substance]", "[equivalent]"}
        src_kind = next((k for k in kinds if k in src_dim), None)
        dst_kind = next((k for k in kinds if k in dst_dim), None)
        if src_kind is None or dst_kind is None or info is None:
            return q
        q = _to_substance(q, src_kind, info, ureg)
        return _from_substance(q, dst_kind, info, ureg)

    return bridge


def _to_substance(q: Any, kind: str, info: Analyte, ureg: Any) -> Any:
    if kind == "[mass]":
        if info.molar_mass is None:
            raise UnitError(f"{info.name} has no molar mass for a mass/substance conversion")
        return q / ureg.Quantity(info.molar_mass, "g/mol")
    if kind == "[equivalent]":
        if info.valence is None:
            raise UnitError(f"{info.name} has no valence for an equivalent/mole conversion")
        return q * ureg.Quantity(1.0 / info.valence, "mol/eq")
    return q


def _from_substance(q: Any, kind: str, info: Analyte, ureg: Any) -> Any:
    if kind == "[mass]":
        if info.molar_mass is None:
            raise UnitError(f"{info.name} has no molar mass for a mass/substance conversion")
        return q * ureg.Quantity(info.molar_mass, "g/mol")
    if kind == "[equivalent]":
        if info.valence is None:
            raise UnitError(f"{info.name} has no valence for an equivalent/mole conversion")
        return q * ureg.Quantity(float(info.valence), "eq/mol")
    return q


def convert(value: float, source: str, target: str, analyte: str | None = None) -> float:
    """Convert ``value`` from ``source`` to ``target`` (UCUM codes or known spellings)."""
    return converter(source, target, analyte)(value)


@cache
def same_dimension(a: str, b: str) -> bool:
    """Whether two units measure the same kind of thing (without analyte bridges)."""
    try:
        converter(a, b)
        return True
    except UnitError:
        return False


_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*(.*?)\s*$")


def parse_quantity(text: str) -> tuple[float, str | None]:
    """Split ``"72 kg"`` or ``"1.2mg/dL"`` into a number and a unit code (None when absent)."""
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"{text!r} is not a number with an optional unit")
    unit = match.group(2)
    return float(match.group(1)), (normalize_unit(unit) if unit else None)
