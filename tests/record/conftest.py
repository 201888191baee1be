"""Record-store fixtures: a store on SQLite and on a throwaway PostgreSQL server, data paths."""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from medagent.record import RecordStore
from medagent.record.pgtemp import TempPostgres
from medagent.secure.at_rest import ENV_FILE_VAR, ENV_VAR, LocalKeyProvider

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
RUBEN = FIXTURES / "synthea_ruben_labadie.json"
PRECIOUS = FIXTURES / "synthea_precious_stark.json"
SYNTHEA_40 = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-40.tar.xz"


@pytest.fixture(autouse=True)
def _test_keyring(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every record test encrypts under a keyring of its own, never the user's real keyring."""
    path = tmp_path_factory.mktemp("keyring") / "keyring"
    path.write_text(LocalKeyProvider.generate("test-kek").to_text())
    monkeypatch.setenv(ENV_FILE_VAR, str(path))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return path


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of the one long test (all 40 Synthea patients)."""
    config.addinivalue_line("markers", "synthea40: imports all 40 Synthea patients (slow, ~30 s)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty store, once on SQLite and once on PostgreSQL (fresh database per test)."""
    if request.param == "sqlite":
        with RecordStore.open(str(tmp_path / "record.db")) as opened:
            yield opened
        return
    server: TempPostgres = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    with RecordStore.open(url) as opened:
        yield opened
    server.drop_database(name)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[RecordStore]:
    """An empty SQLite store (for tests that do not depend on the database)."""
    with RecordStore.open(str(tmp_path / "record.db")) as opened:
        yield opened


@pytest.fixture(scope="session")
def synthea40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 40 Synthea bundles extracted, or a skip with the reason when the data is absent."""
    if not SYNTHEA_40.is_file():
        pytest.skip(f"Synthea data not found at {SYNTHEA_40} (see shared/data/README.md)")
    target = tmp_path_factory.mktemp("synthea40")
    with tarfile.open(SYNTHEA_40) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture
def ruben() -> Path:
    """A trimmed Synthea bundle: a man who died as an infant (small, ~200 resources)."""
    return RUBEN


@pytest.fixture
def precious() -> Path:
    """A trimmed Synthea bundle: conditions resolved and active, medications, notes."""
    return PRECIOUS
