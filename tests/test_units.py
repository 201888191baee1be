"""The unit registry: UCUM codes, spellings people use, analyte-aware conversions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medagent.errors import UnitError
from medagent.units import convert, normalize_unit, parse_quantity

CONVERSIONS = [
    # value, from, to, analyte, expected
    (1.0, "mg/dL", "umol/L", "creatinine", 88.4017),  # molar mass 113.12 g/mol
    (100.0, "mg/dL", "mmol/L", "glucose", 5.5507),
    (28.014, "mg/dL", "mmol/L", "urea_nitrogen", 10.0),  # BUN is reported as nitrogen
    (10.0, "mg/dL", "mmol/L", "calcium", 2.4951),
    (5.0, "meq/L", "mmol/L", "calcium", 2.5),  # divalent: 2 mEq per mmol
    (140.0, "meq/L", "mmol/L", "sodium", 140.0),
    (1.0, "mg/dL", "umol/L", "bilirubin", 17.1038),
    (200.0, "mg/dL", "mmol/L", "cholesterol", 5.1726),
    (4.0, "g/dL", "g/L", None, 40.0),
    (98.6, "[degF]", "Cel", None, 37.0),
    (154.0, "[lb_av]", "kg", None, 69.8532),
    (70.0, "[in_i]", "cm", None, 177.8),
    (400.0, "ms", "s", None, 0.4),
    (1.0, "mL/min/{1.73_m2}", "mL/min", None, 1.0),
    (250.0, "10*3/uL", "10*9/L", None, 250.0),
]


@pytest.mark.parametrize(("value", "src", "dst", "analyte", "expected"), CONVERSIONS)
def test_conversion(value: float, src: str, dst: str, analyte: str | None, expected: float) -> None:
    assert convert(value, src, dst, analyte) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("mm Hg", "mm[Hg]"),
        ("mmhg", "mm[Hg]"),
        ("µmol/L", "umol/L"),
        ("beats per minute", "/min"),
        ("degrees celsius", "Cel"),
        ("lbs", "[lb_av]"),
        ("years", "a"),
        ("mEq/L", "meq/L"),
        ("kg/m^2", "kg/m2"),
        ("mcg/kg/min", "ug/kg/min"),
    ],
)
def test_spellings_normalise_to_ucum(written: str, code: str) -> None:
    assert normalize_unit(written) == code


def test_mass_to_moles_needs_an_analyte() -> None:
    with pytest.raises(UnitError, match="cannot convert"):
        convert(1.0, "mg/dL", "umol/L")


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(UnitError):
        normalize_unit("furlongs")


def test_parse_quantity() -> None:
    assert parse_quantity("1.2mg/dL") == (1.2, "mg/dL")
    assert parse_quantity(" 72 ") == (72.0, None)
    with pytest.raises(UnitError):
        parse_quantity("about seventy")


def test_conversions_are_cached_on_disk_for_new_processes(tmp_path: Path) -> None:
    env = {**os.environ, "MEDAGENT_CACHE_DIR": str(tmp_path)}
    code = (
        "from medagent.units import convert; print(convert(1.0, 'mg/dL', 'umol/L', 'creatinine'))"
    )
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert first.returncode == 0, first.stderr
    files = list(tmp_path.glob("unit-conversions-*.json"))
    assert len(files) == 1
    assert "mg/dL|umol/L|creatinine" in json.loads(files[0].read_text())
    # A second process answers from the file without building pint's registry.
    probe = code + "; import sys; print('pint' in sys.modules)"
    second = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert second.stdout.split() == [first.stdout.strip(), "False"]


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    env = {**os.environ, "MEDAGENT_CACHE_DIR": str(tmp_path)}
    code = "from medagent.units import convert; print(convert(1.0, 'g/dL', 'g/L'))"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    (cache_file,) = tmp_path.glob("unit-conversions-*.json")
    cache_file.write_text("{not json")
    again = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert again.stdout.strip() == "10.0"


# Regression: slope measured between 0 and 1 lost digits to cancellation (98.6 °F gave
# 36.999999999998785 °C); it is now measured over a wide span.
def test_temperature_conversion_keeps_its_digits() -> None:
    assert abs(convert(98.6, "[degF]", "Cel") - 37.0) < 1e-12


# Regression: UCUM's [pH] (used by Synthea and by LOINC for pH) was not a unit medagent knew.
def test_ph_is_a_known_unit() -> None:
    assert normalize_unit("[pH]") == "[pH]"
