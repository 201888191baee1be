"""Shared fixtures: a small valid scale definition to break in loader tests, data paths."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the session (one per xdist worker);
    skipped when the Debian package is missing, but a failure under CI=true."""
    from medagent.record.pgtemp import PostgresUnavailableError, TempPostgres

    try:
        server = TempPostgres().start()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True, scope="session")
def _private_audit_log_and_keyring(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Tests never write to the user's own audit log or create the user's default keyring
    (the CLI and the stores default to both)."""
    from medagent.secure.at_rest import LocalKeyProvider

    private = tmp_path_factory.mktemp("private")
    keyring = private / "keyring"
    keyring.write_text(LocalKeyProvider.generate("test-kek").to_text(), encoding="utf-8")
    keyring.chmod(0o600)
    patch = pytest.MonkeyPatch()
    patch.setenv("MEDAGENT_AUDIT", str(private / "audit.db"))
    patch.setenv("MEDAGENT_KEK_FILE", str(keyring))
    patch.delenv("MEDAGENT_KEK", raising=False)
    yield
    patch.undo()


MEDCALC_DEV = SHARED_DATA / "medcalc-bench-v1.0-dev.csv"

_MINIMAL: dict[str, Any] = {
    "id": "demo_score",
    "version": "1.0.0",
    "title": "Demo score",
    "purpose": "Exercise the loader.",
    "population": "Nobody.",
    "category": "risk",
    "licence": {"status": "public-domain"},
    "inputs": [
        {
            "id": "age",
            "label": "Age",
            "type": "quantity",
            "unit": "a",
            "range": [0, 120],
            "brackets": [{"lt": 65, "points": 0}, {"ge": 65, "points": 1}],
        },
        {"id": "smoker", "label": "Smoker", "type": "boolean", "points": 2},
        {
            "id": "grade",
            "label": "Grade",
            "type": "choice",
            "options": [
                {"code": "low", "label": "Low", "points": 0},
                {"code": "high", "label": "High", "points": 3},
            ],
        },
    ],
    "scoring": {"method": "sum"},
    "output": {"type": "integer"},
    "bands": [
        {"id": "low", "ge": 0, "le": 2, "label": "Low"},
        {"id": "high", "ge": 3, "le": 6, "label": "High"},
    ],
    "references": [{"key": "ref", "citation": "A paper.", "pmid": "1"}],
    "examples": [
        {
            "id": "a",
            "source": "ref",
            "inputs": {"age": 50, "smoker": False, "grade": "low"},
            "expect": {"value": 0, "band": "low"},
        },
        {
            "id": "b",
            "source": "ref",
            "inputs": {"age": 70, "smoker": True, "grade": "low"},
            "expect": {"value": 3, "band": "high"},
        },
        {
            "id": "c",
            "source": "ref",
            "inputs": {"age": 70, "smoker": True, "grade": "high"},
            "expect": {"value": 6, "band": "high"},
        },
    ],
}


@pytest.fixture
def minimal_scale() -> dict[str, Any]:
    """A fresh copy of a small valid scale definition, to modify in a test."""
    return copy.deepcopy(_MINIMAL)


@pytest.fixture
def medcalc_dev() -> Path:
    """The MedCalc-Bench dev half, or a skip with the reason when it is not beside the repo."""
    if not MEDCALC_DEV.is_file():
        pytest.skip(f"MedCalc-Bench dev CSV not found at {MEDCALC_DEV} (see shared/data/README.md)")
    return MEDCALC_DEV
