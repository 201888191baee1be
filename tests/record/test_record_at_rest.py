"""Encryption at rest of the record store: format, legacy rows, rotation under load, bad keys."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medagent.cli import app
from medagent.record import RecordStore
from medagent.record.db import resources_table
from medagent.record.store import RESOURCE_SEALING
from medagent.secure.at_rest import (
    ENV_FILE_VAR,
    ENV_VAR,
    TOKEN_PREFIX,
    KeyringFile,
    LocalKeyProvider,
    MissingKeyError,
    configured_keys,
    forget_configured_keys,
)
from medagent.secure.errors import AtRestError

R = resources_table.c
runner = CliRunner()


def _observation(i: int, value: float, patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": f"2024-01-{1 + i % 28:02d}T08:00:00Z",
        "valueQuantity": {"value": value, "unit": "mg/dL"},
    }


def _patient(pid: str = "p1", name: str = "Ada") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"given": [name], "family": "Lovelace"}]}


def _canonical(resource: dict[str, Any]) -> str:
    """The resource without server meta, as canonical JSON (for byte-identical comparison)."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _everything(store: RecordStore) -> dict[str, str]:
    out = {}
    for rtype in store.resource_types():
        page, total = store.search(rtype, count=100_000)
        assert len(page) == total
        out.update({f"{rtype}/{r['id']}": _canonical(r) for r in page})
    return out


def _raw(store: RecordStore) -> list[Any]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(R.resource_type, R.id, R.kek_id, R.body)).all()


def test_bodies_are_encrypted_and_read_back(store: RecordStore, precious: Path) -> None:
    store.import_file(precious)
    raw = _raw(store)
    assert raw and all(row.kek_id == "test-kek" for row in raw)
    assert all(row.body.startswith(TOKEN_PREFIX) for row in raw)
    assert not any("Precious" in row.body or "valueQuantity" in row.body for row in raw)
    (patient,) = store.patients()
    assert patient.name.startswith("Precious")
    assert len(store.observations(patient.id, codes=["8302-2"])) > 0  # body height
    assert store.key_usage() == {"test-kek": len(raw)}


def test_sqlite_file_holds_no_plaintext(tmp_path: Path, precious: Path) -> None:
    with RecordStore.open(str(tmp_path / "f.db")) as store:
        store.import_file(precious)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("f.db*"))
    assert b"Precious" not in data and b"Chief Complaint" not in data


def test_legacy_plaintext_rows_are_read_then_encrypted_in_place(
    store: RecordStore, precious: Path
) -> None:
    url = store.engine.url
    legacy = RecordStore(store.engine, encrypt=False)
    legacy.import_file(precious)
    assert store.key_usage() == {None: len(_raw(store))}
    before = _everything(store)  # plaintext rows are readable as they are
    legacy.put([_observation(1, 1.0)])  # a plaintext write after the upgrade is kept too
    before["Observation/obs-1"] = _canonical(store.get("Observation", "obs-1"))
    versions = {(r.resource_type, r.id): r for r in _raw(store)}
    done = store.encrypt_plaintext(batch_size=33, limit=100)  # stopped part-way, then resumed
    assert done == 100
    assert store.encrypt_plaintext(batch_size=33) == len(versions) - 100
    assert store.key_usage() == {"test-kek": len(versions)}
    assert _everything(store) == before
    assert str(url) == str(store.engine.url)
    assert store.get("Observation", "obs-1")["meta"]["versionId"] == "1"  # not a new version


def test_encrypt_never_overwrites_a_newer_write(sqlite_store: RecordStore) -> None:
    legacy = RecordStore(sqlite_store.engine, encrypt=False)
    legacy.put([_observation(1, 1.0)])
    page = RESOURCE_SEALING._page([R.kek_id.is_(None)], None, 10)
    with sqlite_store.engine.connect() as conn:
        (row,) = conn.execute(page).all()  # what `encrypt` read in its batch
    legacy.put([_observation(1, 2.0)])  # written before `encrypt` writes that batch
    values = RESOURCE_SEALING._encrypted_values(sqlite_store.keys, row)
    with sqlite_store.engine.begin() as conn:
        stmt = (
            sa.update(resources_table)
            .where(*RESOURCE_SEALING._key_match(row), *RESOURCE_SEALING._plain_guard(row))
            .values(**values)
        )
        assert conn.execute(stmt).rowcount == 0  # the version guard refuses the stale row
    assert sqlite_store.get("Observation", "obs-1")["valueQuantity"]["value"] == 2.0
    assert sqlite_store.encrypt_plaintext() == 1
    assert sqlite_store.get("Observation", "obs-1")["valueQuantity"]["value"] == 2.0


def test_rotation_mid_workload_then_retire_old_kek(
    store: RecordStore, precious: Path, _test_keyring: Path
) -> None:
    store.import_file(precious)
    store.put([_observation(i, float(i)) for i in range(300)])
    keyring = KeyringFile(_test_keyring)
    configured = configured_keys().file
    assert configured is not None
    keyring.add_key("kek-2")  # rotation starts: another process adds a KEK and makes it current
    configured._checked = 0.0  # the store's keyring notices the change on its next use

    expected = _everything(store)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def workload(worker: int) -> None:
        """Import new resources and overwrite old ones while the re-wrap runs."""
        try:
            i = 0
            while not stop.is_set() or i < 60:
                fresh = _observation(10_000 * (worker + 1) + i, float(i))
                overwrite = _observation((i * 7 + worker) % 300, 1000.0 + i)
                store.put([fresh, overwrite])
                with lock:
                    for resource in (fresh, overwrite):
                        expected[f"Observation/{resource['id']}"] = _canonical(resource)
                assert store.get("Observation", fresh["id"])["valueQuantity"]["value"] == i
                i += 1
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=workload, args=(w,)) for w in range(2)]
    for writer in writers:
        writer.start()
    rewrapped = store.rewrap(batch_size=37)
    stop.set()
    for writer in writers:
        writer.join()
    assert not errors, errors
    assert rewrapped > 0
    store.rewrap()  # anything a writer wrapped before it saw the new KEK
    assert set(store.key_usage()) == {"kek-2"}
    assert _everything(store) == expected

    keyring.retire_key("test-kek")
    configured._checked = 0.0
    assert configured.key_ids() == ["kek-2"]
    assert _everything(store) == expected  # every row reads without the old KEK


def test_swapped_ciphertext_between_rows_is_refused(store: RecordStore) -> None:
    store.put([_patient("a", "Alice"), _patient("b", "Bob")])
    with store.engine.begin() as conn:
        a = conn.execute(sa.select(R.kek_id, R.wrapped_key, R.body).where(R.id == "a")).one()
        b_body = conn.execute(sa.select(R.body).where(R.id == "b")).scalar_one()
        conn.execute(sa.update(resources_table).where(R.id == "b").values(body=a.body))
    with pytest.raises(AtRestError, match="Patient/b: column body is corrupt or was moved"):
        store.get("Patient", "b")
    with store.engine.begin() as conn:  # move the whole envelope (key and body) instead
        conn.execute(
            sa.update(resources_table)
            .where(R.id == "b")
            .values(kek_id=a.kek_id, wrapped_key=a.wrapped_key, body=a.body)
        )
    with pytest.raises(AtRestError, match=r"Patient/b: .*does not unwrap"):
        store.get("Patient", "b")
    with store.engine.begin() as conn:  # and the other way round: b's body in row a
        conn.execute(sa.update(resources_table).where(R.id == "a").values(body=b_body))
    with pytest.raises(AtRestError):
        store.get("Patient", "a")


def test_missing_kek_is_a_clear_error(store: RecordStore) -> None:
    store.put([_patient()])
    other = RecordStore(store.engine, keys=LocalKeyProvider.generate("elsewhere"))
    with pytest.raises(MissingKeyError) as caught:
        other.get("Patient", "p1")
    message = str(caught.value)
    assert "Patient/p1 is encrypted under KEK 'test-kek'" in message
    assert ENV_VAR in message and ENV_FILE_VAR in message
    with pytest.raises(MissingKeyError):
        other.patients()
    with pytest.raises(MissingKeyError):
        other.rewrap()  # rotation cannot proceed without the old KEK either


def test_wrong_key_under_the_same_id_is_refused(store: RecordStore) -> None:
    store.put([_patient()])
    impostor = LocalKeyProvider.generate("test-kek")  # same id, different key material
    with pytest.raises(AtRestError, match="does not unwrap under KEK 'test-kek'"):
        RecordStore(store.engine, keys=impostor).get("Patient", "p1")


def test_explicit_keys_win_over_the_environment(tmp_path: Path) -> None:
    keys = LocalKeyProvider.generate("explicit")
    with RecordStore.open(str(tmp_path / "e.db"), keys=keys) as store:
        store.put([_patient()])
        assert store.key_usage() == {"explicit": 1}


# ---- keyring configuration ---------------------------------------------------------------------


def test_key_configuration_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(ENV_FILE_VAR)
    forget_configured_keys()
    try:
        with caplog.at_level("WARNING"):
            default = configured_keys()
        path = tmp_path / "config" / "medagent" / "keyring"
        assert default.origin == str(path)
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert [r.getMessage() for r in caplog.records] == [
            f"medagent: created the key-encryption keyring {path}; back it up "
            "(without it the encrypted patient data cannot be read)"
        ]
        forget_configured_keys()
        caplog.clear()
        assert configured_keys().provider.current_key_id() == default.provider.current_key_id()
        assert not caplog.records  # created once, then reused silently

        file = tmp_path / "other"
        file.write_text(LocalKeyProvider.generate("from-file").to_text())
        monkeypatch.setenv(ENV_FILE_VAR, str(file))
        assert configured_keys().provider.current_key_id() == "from-file"
        monkeypatch.setenv(ENV_VAR, LocalKeyProvider.generate("from-env").to_text())
        assert configured_keys().provider.current_key_id() == "from-env"
        assert configured_keys().origin == ENV_VAR
    finally:
        forget_configured_keys()


def test_keyring_creation_race_has_one_winner(tmp_path: Path) -> None:
    """Processes opening a store for the first time at once must end up with one keyring."""
    from medagent.secure import at_rest

    path = tmp_path / "config" / "keyring"
    barrier = threading.Barrier(8)
    won: dict[int, bool] = {}

    def create(i: int) -> None:
        barrier.wait()
        won[i] = at_rest._write_private(path, f"entry-{i}\n", exclusive=True)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (winner,) = [i for i, ok in won.items() if ok]
    assert path.read_text() == f"entry-{winner}\n"
    assert [p.name for p in path.parent.iterdir()] == ["keyring"]  # no temporary file left
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_missing_keyring_file_is_an_error_not_a_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_FILE_VAR, str(tmp_path / "lost-keyring"))
    with pytest.raises(AtRestError, match="lost-keyring: No such file"):
        RecordStore.open(str(tmp_path / "x.db"))
    assert not (tmp_path / "lost-keyring").exists()


# ---- the `medagent store` commands -------------------------------------------------------------


def test_store_commands_encrypt_rotate_retire(
    tmp_path: Path, precious: Path, _test_keyring: Path
) -> None:
    db = str(tmp_path / "cli.db")
    with RecordStore.open(db, encrypt=False) as legacy:
        legacy.import_file(precious)
        before = _everything(legacy)
    status = json.loads(runner.invoke(app, ["store", "status", "--db", db, "--json"]).stdout)
    assert status["plaintext"] == len(before)
    assert status["tables"]["fhir_resource"]["by_kek"] == {}

    done = runner.invoke(app, ["store", "encrypt", "--db", db, "--batch", "40", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["encrypted"] == {"fhir_resource": len(before)}

    added = runner.invoke(app, ["store", "keys", "add", "--id", "kek-b"])
    assert added.exit_code == 0 and "added KEK kek-b (current)" in added.stdout
    status = json.loads(runner.invoke(app, ["store", "status", "--db", db, "--json"]).stdout)
    assert status["current_kek"] == "kek-b" and status["to_rewrap"] == len(before)

    refused = runner.invoke(app, ["store", "keys", "retire", "test-kek", "--db", db])
    assert refused.exit_code == 2 and "still wrapped under test-kek" in refused.stderr

    rewrapped = runner.invoke(app, ["store", "rewrap", "--db", db, "--batch", "64"])
    assert rewrapped.exit_code == 0, rewrapped.output
    assert f"rewrapped: {len(before)} row(s) of fhir_resource" in rewrapped.stdout
    retired = runner.invoke(app, ["store", "keys", "retire", "test-kek", "--db", db])
    assert retired.exit_code == 0, retired.output
    assert LocalKeyProvider.from_file(_test_keyring).key_ids() == ["kek-b"]
    listed = runner.invoke(app, ["store", "keys", "list"])
    assert "kek-b (current)" in listed.stdout and "test-kek" not in listed.stdout
    current = runner.invoke(app, ["store", "keys", "retire", "kek-b", "--db", db])
    assert current.exit_code == 2 and "is the current KEK" in current.stderr

    forget_configured_keys()
    with RecordStore.open(db) as store:
        assert _everything(store) == before


def test_store_commands_with_a_missing_kek(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "m.db")
    with RecordStore.open(db) as store:
        store.put([_patient()])
    monkeypatch.setenv(ENV_VAR, LocalKeyProvider.generate("stranger").to_text())
    status = runner.invoke(app, ["store", "status", "--db", db, "--json"])
    assert status.exit_code == 1
    assert json.loads(status.stdout)["missing_keks"] == ["test-kek"]
    rewrap = runner.invoke(app, ["store", "rewrap", "--db", db])
    assert rewrap.exit_code == 1
    assert rewrap.exception is None or isinstance(rewrap.exception, SystemExit)
    assert "error: fhir_resource/Patient/p1 is encrypted under KEK 'test-kek'" in rewrap.stderr
    added = runner.invoke(app, ["store", "keys", "add"])
    assert added.exit_code == 2 and "comes from MEDAGENT_KEK" in added.stderr


def test_keys_init_creates_a_private_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new-keyring"
    monkeypatch.setenv(ENV_FILE_VAR, str(path))
    made = runner.invoke(app, ["store", "keys", "init"])
    assert made.exit_code == 0, made.output
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert "back up" in made.stderr
    again = runner.invoke(app, ["store", "keys", "init"])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_keyring_created_where_hard_links_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medagent.secure import at_rest

    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(at_rest.os, "link", no_links)
    path = tmp_path / "keyring"
    assert at_rest._write_private(path, "a:entry\n", exclusive=True)
    assert not at_rest._write_private(path, "b:entry\n", exclusive=True)
    assert path.read_text() == "a:entry\n"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keyring"]
