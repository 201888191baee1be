"""Tests of envelope encryption at rest, including KEK rotation in the middle of a workload."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medagent.secure.at_rest import (
    ENV_VAR,
    EncryptedStore,
    KeyringFile,
    LocalKeyProvider,
    decrypt_record,
    encrypt_record,
)
from medagent.secure.errors import AtRestError, RecordNotFoundError


def _resource(i: int) -> bytes:
    return json.dumps(
        {"resourceType": "Observation", "id": f"obs-{i}", "valueQuantity": {"value": i}}
    ).encode()


def test_round_trip_and_ciphertext_hides_plaintext(tmp_path: Path) -> None:
    store = EncryptedStore(tmp_path / "s.sqlite", LocalKeyProvider.generate())
    store.put("Observation/1", _resource(1))
    assert store.get("Observation/1") == _resource(1)
    raw = (tmp_path / "s.sqlite").read_bytes()
    assert b"valueQuantity" not in raw
    with pytest.raises(RecordNotFoundError):
        store.get("Observation/2")


def test_swapped_ciphertexts_are_refused() -> None:
    provider = LocalKeyProvider.generate()
    a = encrypt_record("Patient/a", b"alpha", provider)
    b = encrypt_record("Patient/b", b"beta", provider)
    moved = type(a)("Patient/a", b.kek_id, b.wrapped_key, b.nonce, b.ciphertext)
    with pytest.raises(AtRestError, match="does not unwrap"):
        decrypt_record(moved, provider)
    corrupt = type(a)(a.record_id, a.kek_id, a.wrapped_key, a.nonce, a.ciphertext[:-1] + b"\0")
    with pytest.raises(AtRestError, match="corrupt"):
        decrypt_record(corrupt, provider)
    with pytest.raises(AtRestError, match="unknown KEK"):
        decrypt_record(a, LocalKeyProvider.generate("other"))


def test_rotation_mid_workload_loses_nothing(tmp_path: Path) -> None:
    provider = LocalKeyProvider.generate("kek-2025")
    store = EncryptedStore(tmp_path / "s.sqlite", provider)
    expected: dict[str, bytes] = {}
    for i in range(300):
        expected[f"Observation/{i}"] = _resource(i)
        store.put(f"Observation/{i}", _resource(i))

    provider.add_key("kek-2026")  # rotation starts: new writes use the new KEK
    stop = threading.Event()
    errors: list[BaseException] = []

    def workload() -> None:
        """Keep writing new records and overwriting old ones while the re-wrap runs."""
        try:
            i = 300
            while not stop.is_set() or i < 600:
                # new records, and overwrites of records 0..99; 100..299 are left to the re-wrap
                rid = f"Observation/{i}" if i % 2 else f"Observation/{i % 100}"
                data = _resource(i)
                store.put(rid, data)
                expected[rid] = data
                assert store.get(rid) == data
                i += 1
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=workload)
    writer.start()
    rewrapped = store.rewrap(batch_size=37)
    stop.set()
    writer.join()
    assert not errors
    assert rewrapped >= 200  # records 100..299 can only have been re-wrapped
    store.rewrap()  # finish anything the workload left behind
    assert store.kek_usage() == {"kek-2026": len(expected)}

    provider.retire_key("kek-2025")
    for rid, data in expected.items():
        assert store.get(rid) == data
    assert sorted(store.ids()) == sorted(expected)


def test_interrupted_rotation_resumes(tmp_path: Path) -> None:
    provider = LocalKeyProvider.generate("a")
    store = EncryptedStore(tmp_path / "s.sqlite", provider)
    for i in range(50):
        store.put(f"r{i}", _resource(i))
    provider.add_key("b")
    assert store.rewrap(batch_size=4, limit=10) == 10  # the rotation stops (crash) here
    assert store.kek_usage() == {"a": 40, "b": 10}
    reopened = EncryptedStore(tmp_path / "s.sqlite", provider)
    assert all(reopened.get(f"r{i}") == _resource(i) for i in range(50))  # both KEKs still work
    assert reopened.rewrap(batch_size=7) == 40
    assert store.rewrap() == 0
    provider.retire_key("a")
    assert all(store.get(f"r{i}") == _resource(i) for i in range(50))


def test_keyring_text_file_and_env(tmp_path: Path) -> None:
    k1, k2 = bytes(range(32)), bytes(range(32, 64))
    text = f"# keyring\nnew:{base64.b64encode(k2).decode()}\nold:{base64.b64encode(k1).decode()}\n"
    path = tmp_path / "kek.txt"
    path.write_text(text)
    provider = LocalKeyProvider.from_file(path)
    assert provider.current_key_id() == "new"
    env = LocalKeyProvider.from_env({ENV_VAR: text.replace("\n", ",")})
    rec = encrypt_record("x", b"data", provider)
    assert decrypt_record(rec, env) == b"data"
    assert LocalKeyProvider.from_text(provider.to_text()).current_key_id() == "new"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "no key"),  # empty keyring
        ("nocolon", "KEY_ID:BASE64"),  # missing separator
        ("a:!!!", "base64"),  # not base64
        ("a:AAAA", "32 bytes"),  # too short a key
        (
            f"a:{base64.b64encode(bytes(32)).decode()},a:{base64.b64encode(bytes(32)).decode()}",
            "twice",
        ),
    ],
)
def test_bad_keyrings_are_refused(text: str, pattern: str) -> None:
    with pytest.raises(AtRestError, match=pattern):
        LocalKeyProvider.from_text(text)


def test_env_missing_and_current_retire_refused() -> None:
    with pytest.raises(AtRestError, match=ENV_VAR):
        LocalKeyProvider.from_env({})
    provider = LocalKeyProvider.generate("only")
    with pytest.raises(AtRestError, match="current"):
        provider.retire_key("only")
    with pytest.raises(AtRestError, match="already"):
        provider.add_key("only")


@settings(max_examples=100, deadline=None)
@given(record_id=st.text(min_size=1, max_size=64), data=st.binary(max_size=4096))
def test_envelope_round_trip_any_record(record_id: str, data: bytes) -> None:
    provider = _PROVIDER
    sealed = encrypt_record(record_id, data, provider)
    assert decrypt_record(sealed, provider) == data
    assert sealed.ciphertext[:-16] != data or not data  # encrypted, plus a 16-byte tag


_PROVIDER = LocalKeyProvider.generate()


def test_keyring_file_follows_changes_made_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    path.write_text(LocalKeyProvider.generate("a").to_text())
    service = KeyringFile(path)  # e.g. a running service
    operator = KeyringFile(path)  # e.g. `medagent store keys add` in another process
    assert operator.add_key("b") == "b"
    sealed = encrypt_record("Patient/1", b"data", operator)
    assert sealed.kek_id == "b"
    # a data key under a KEK the service has not loaded yet makes it re-read the file at once
    assert decrypt_record(sealed, service) == b"data"
    assert service.current_key_id() == "b"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    operator.retire_key("a")
    with pytest.raises(AtRestError, match="not in"):
        operator.retire_key("a")
    assert LocalKeyProvider.from_file(path).key_ids() == ["b"]
