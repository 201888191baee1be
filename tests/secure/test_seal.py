"""Tests of sealed packages: round trip, key files, and every way open_package must refuse."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medagent.errors import MedAgentError
from medagent.secure import seal as sealmod
from medagent.secure.errors import (
    KeyFileError,
    MalformedPackageError,
    ReplayError,
    SealError,
    StaleError,
    TamperedError,
    UnknownSenderError,
    WrongRecipientError,
)
from medagent.secure.keys import (
    Identity,
    PublicIdentity,
    read_identity,
    read_public_identity,
    write_identity,
)
from medagent.secure.seal import (
    MemoryReplayStore,
    SQLiteReplayStore,
    inspect,
    open_package,
    seal,
    trusted_senders,
)

NOW = 1_800_000_000
PAYLOAD = b'{"resourceType":"Bundle","type":"collection","entry":[]}'


@pytest.fixture(scope="module")
def hospital() -> Identity:
    return Identity.generate()


@pytest.fixture(scope="module")
def compute() -> Identity:
    return Identity.generate()


@pytest.fixture(scope="module")
def package(hospital: Identity, compute: Identity) -> bytes:
    return seal(
        PAYLOAD,
        sender=hospital,
        recipient=compute.public(),
        content_type="application/fhir+json",
        now=NOW,
    )


def _open(pkg: bytes, hospital: Identity, compute: Identity, **kw: object) -> bytes:
    opened = open_package(
        pkg,
        recipient=compute,
        senders=trusted_senders(hospital.public()),
        replay_store=MemoryReplayStore(),
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )
    return opened.payload


def test_round_trip_binds_header(package: bytes, hospital: Identity, compute: Identity) -> None:
    opened = open_package(
        package,
        recipient=compute,
        senders=trusted_senders(hospital.public()),
        replay_store=MemoryReplayStore(),
        now=NOW + 10,
    )
    assert opened.payload == PAYLOAD
    assert opened.header.sender == hospital.public().signing_key_id
    assert opened.header.recipient == compute.public().kem_key_id
    assert opened.header.content_type == "application/fhir+json"
    assert opened.header.created == NOW
    assert len(opened.header.package_id) == 32
    assert PAYLOAD not in package  # the payload really is encrypted


def test_package_ids_are_unique(hospital: Identity, compute: Identity) -> None:
    ids = {
        inspect(seal(b"x", sender=hospital, recipient=compute.public())).package_id
        for _ in range(20)
    }
    assert len(ids) == 20


def test_wrong_recipient_key_is_refused(package: bytes, hospital: Identity) -> None:
    stranger = Identity.generate()
    with pytest.raises(WrongRecipientError, match="sealed for key"):
        _open(package, hospital, stranger)


def test_untrusted_sender_is_refused(package: bytes, compute: Identity) -> None:
    with pytest.raises(UnknownSenderError, match="untrusted key"):
        open_package(
            package,
            recipient=compute,
            senders=trusted_senders(Identity.generate().public()),
            replay_store=MemoryReplayStore(),
            now=NOW,
        )


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda n: 10, id="header-byte"),
        pytest.param(lambda n: n - 3400, id="ciphertext-byte"),
        pytest.param(lambda n: n - 100, id="signature-byte"),
    ],
)
def test_flipped_byte_is_refused(
    package: bytes, hospital: Identity, compute: Identity, where: object
) -> None:
    pos = where(len(package))  # type: ignore[operator]
    tampered = bytearray(package)
    tampered[pos] ^= 0x01
    with pytest.raises(SealError):
        _open(bytes(tampered), hospital, compute)


def test_ciphertext_tamper_reports_signature(
    package: bytes, hospital: Identity, compute: Identity
) -> None:
    tampered = bytearray(package)
    tampered[len(package) - 3400] ^= 0x80
    with pytest.raises(TamperedError, match="signature does not verify"):
        _open(bytes(tampered), hospital, compute)


def test_resigned_by_attacker_with_new_header_fails_decryption(
    package: bytes, hospital: Identity, compute: Identity
) -> None:
    """An attacker who strips the signature and re-signs as themselves cannot re-attribute."""
    attacker = Identity.generate()
    _body, header, ciphertext, _sig = sealmod._split(package)
    forged_header = sealmod.PackageHeader(
        sender=attacker.public().signing_key_id,
        recipient=header.recipient,
        package_id=header.package_id,
        created=header.created,
        content_type=header.content_type,
    ).to_bytes()
    forged = b"".join(
        (
            sealmod.MAGIC,
            struct.pack(">BH", sealmod.VERSION, len(forged_header)),
            forged_header,
            struct.pack(">I", len(ciphertext)),
            ciphertext,
        )
    )
    sig = attacker.signing_key.sign(forged, sealmod.SIGNATURE_CONTEXT)
    forged += struct.pack(">H", len(sig)) + sig
    with pytest.raises(TamperedError, match="HPKE decryption failed"):
        open_package(
            forged,
            recipient=compute,
            senders=trusted_senders(hospital.public(), attacker.public()),
            replay_store=MemoryReplayStore(),
            now=NOW,
        )


@pytest.mark.parametrize("cut", [0, 5, 9, 200, 1500, -3309, -1])
def test_truncated_package_is_refused(
    package: bytes, hospital: Identity, compute: Identity, cut: int
) -> None:
    with pytest.raises(MalformedPackageError, match=r"truncated|length|JSON|canonical"):
        _open(package[:cut], hospital, compute)


def test_trailing_bytes_are_refused(package: bytes, hospital: Identity, compute: Identity) -> None:
    with pytest.raises(MalformedPackageError, match="trailing"):
        _open(package + b"\x00", hospital, compute)


def test_replay_is_refused_sqlite(
    package: bytes, hospital: Identity, compute: Identity, tmp_path: Path
) -> None:
    store_path = tmp_path / "replay.sqlite"
    kwargs = {"recipient": compute, "senders": trusted_senders(hospital.public()), "now": NOW}
    open_package(package, replay_store=SQLiteReplayStore(store_path), **kwargs)  # type: ignore[arg-type]
    # a new store object on the same file, as another process would open it
    with pytest.raises(ReplayError, match="already opened"):
        open_package(package, replay_store=SQLiteReplayStore(store_path), **kwargs)  # type: ignore[arg-type]


def test_forged_package_does_not_poison_replay_store(
    package: bytes, hospital: Identity, compute: Identity
) -> None:
    store = MemoryReplayStore()
    tampered = bytearray(package)
    tampered[-1] ^= 0xFF
    kwargs = {"recipient": compute, "senders": trusted_senders(hospital.public()), "now": NOW}
    with pytest.raises(TamperedError):
        open_package(bytes(tampered), replay_store=store, **kwargs)  # type: ignore[arg-type]
    assert open_package(package, replay_store=store, **kwargs).payload == PAYLOAD  # type: ignore[arg-type]


def test_replay_store_prune(tmp_path: Path) -> None:
    store = SQLiteReplayStore(tmp_path / "r.sqlite")
    assert store.record("a", sender="s", created=10)
    assert store.record("b", sender="s", created=20)
    assert not store.record("a", sender="s", created=10)
    assert store.prune(15) == 1
    assert store.record("a", sender="s", created=10)


@pytest.mark.parametrize(
    ("now", "pattern"),
    [
        pytest.param(NOW - 3600, "future", id="from-the-future"),
        pytest.param(NOW + 8 * 24 * 3600, "older than", id="too-old"),
    ],
)
def test_stale_package_is_refused(
    package: bytes, hospital: Identity, compute: Identity, now: int, pattern: str
) -> None:
    with pytest.raises(StaleError, match=pattern):
        open_package(
            package,
            recipient=compute,
            senders=trusted_senders(hospital.public()),
            replay_store=MemoryReplayStore(),
            now=now,
        )


def test_errors_share_the_base(package: bytes, hospital: Identity) -> None:
    with pytest.raises(MedAgentError):
        _open(package, hospital, Identity.generate())
    assert issubclass(SealError, ValueError)


def test_key_files_round_trip(
    tmp_path: Path, package: bytes, hospital: Identity, compute: Identity
) -> None:
    priv, pub = write_identity(compute, tmp_path, name="compute", passphrase=b"s3cret")
    assert priv.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in priv.read_bytes()
    loaded = read_identity(priv, b"s3cret")
    assert loaded.public().kem_key_id == compute.public().kem_key_id
    assert read_public_identity(pub).signing_key_id == compute.public().signing_key_id
    assert _open(package, hospital, loaded) == PAYLOAD
    with pytest.raises(KeyFileError):
        read_identity(priv, b"wrong")
    with pytest.raises(KeyFileError, match="no PEM block"):
        PublicIdentity.from_pem(b"garbage")
    with pytest.raises(KeyFileError, match="needs"):
        PublicIdentity.from_pem(
            pub.read_bytes().split(b"-----END PUBLIC KEY-----")[0] + b"-----END PUBLIC KEY-----\n"
        )
    with pytest.raises(KeyFileError, match="more than one"):
        PublicIdentity.from_pem(pub.read_bytes() * 2)
    with pytest.raises(KeyFileError):
        read_identity(tmp_path / "missing.pem")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=6000))
def test_random_bytes_give_a_clear_error(
    data: bytes, hospital: Identity, compute: Identity
) -> None:
    with pytest.raises(SealError):
        _open(data, hospital, compute)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=4,
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_mutated_packages_give_a_clear_error(
    edits: list[tuple[int, int]],
    cut: int | None,
    package: bytes,
    hospital: Identity,
    compute: Identity,
) -> None:
    mutated = bytearray(package)
    for pos, value in edits:
        mutated[pos % len(mutated)] = value
    if cut is not None:
        mutated = mutated[: cut % len(mutated)]
    if bytes(mutated) == package:
        return
    with pytest.raises(SealError):
        _open(bytes(mutated), hospital, compute)
