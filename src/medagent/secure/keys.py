"""Post-quantum identities (ML-DSA-65 signing + ML-KEM-768/X25519 HPKE keys) and their PEM files.

File format (documented in docs/security.md):

* a private identity file is a PEM bundle of three PKCS#8 blocks, in any order: one ML-DSA-65
  key, one ML-KEM-768 key and one X25519 key; the blocks may be encrypted with a passphrase
  (``ENCRYPTED PRIVATE KEY``, PBES2 as chosen by ``cryptography``);
* a public identity file is a PEM bundle of the three matching SubjectPublicKeyInfo blocks.

Key ids are the first 16 bytes (hex) of SHA-256 over the raw public key bytes: for the signing
key over the ML-DSA-65 public key, for the KEM key over ML-KEM-768 || X25519 public keys.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem, x25519

from medagent.secure.errors import KeyFileError

_K = TypeVar("_K")

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n.+?\r?\n-----END \1-----", re.DOTALL)


def _key_id(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()[:16].hex()


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """The public half of an identity: verifies signatures and receives sealed packages."""

    signing_key: mldsa.MLDSA65PublicKey
    kem_mlkem: mlkem.MLKEM768PublicKey
    kem_x25519: x25519.X25519PublicKey

    @property
    def signing_key_id(self) -> str:
        """Key id of the ML-DSA-65 public key."""
        return _key_id(self.signing_key.public_bytes_raw())

    @property
    def kem_key_id(self) -> str:
        """Key id of the hybrid ML-KEM-768 + X25519 public key."""
        return _key_id(self.kem_mlkem.public_bytes_raw(), self.kem_x25519.public_bytes_raw())

    def hpke_public_key(self) -> hpke.MLKEM768X25519PublicKey:
        """The hybrid HPKE public key (KEM MLKEM768_X25519)."""
        return hpke.MLKEM768X25519PublicKey(self.kem_mlkem, self.kem_x25519)

    def to_pem(self) -> bytes:
        """Serialise as a bundle of three SubjectPublicKeyInfo PEM blocks."""
        enc, fmt = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        return b"".join(
            key.public_bytes(enc, fmt)
            for key in (self.signing_key, self.kem_mlkem, self.kem_x25519)
        )

    @classmethod
    def from_pem(cls, data: bytes) -> PublicIdentity:
        """Load a public identity bundle written by :meth:`to_pem`."""
        sign: mldsa.MLDSA65PublicKey | None = None
        kem: mlkem.MLKEM768PublicKey | None = None
        xk: x25519.X25519PublicKey | None = None
        for block in _blocks(data):
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError as exc:
                raise KeyFileError(f"unreadable public key block: {exc}") from exc
            if isinstance(key, mldsa.MLDSA65PublicKey):
                sign = _only_once(sign, key, "ML-DSA-65")
            elif isinstance(key, mlkem.MLKEM768PublicKey):
                kem = _only_once(kem, key, "ML-KEM-768")
            elif isinstance(key, x25519.X25519PublicKey):
                xk = _only_once(xk, key, "X25519")
            else:
                raise KeyFileError(f"unexpected public key type {type(key).__name__}")
        if sign is None or kem is None or xk is None:
            raise KeyFileError("public identity needs ML-DSA-65, ML-KEM-768 and X25519 keys")
        return cls(signing_key=sign, kem_mlkem=kem, kem_x25519=xk)


@dataclass(frozen=True, slots=True)
class Identity:
    """A private identity: signs with ML-DSA-65 and opens packages sealed to its hybrid KEM key."""

    signing_key: mldsa.MLDSA65PrivateKey
    kem_mlkem: mlkem.MLKEM768PrivateKey
    kem_x25519: x25519.X25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        """Generate a fresh identity from the OS random source."""
        return cls(
            signing_key=mldsa.MLDSA65PrivateKey.generate(),
            kem_mlkem=mlkem.MLKEM768PrivateKey.generate(),
            kem_x25519=x25519.X25519PrivateKey.generate(),
        )

    def public(self) -> PublicIdentity:
        """The public half."""
        return PublicIdentity(
            signing_key=self.signing_key.public_key(),
            kem_mlkem=self.kem_mlkem.public_key(),
            kem_x25519=self.kem_x25519.public_key(),
        )

    def hpke_private_key(self) -> hpke.MLKEM768X25519PrivateKey:
        """The hybrid HPKE private key (KEM MLKEM768_X25519)."""
        return hpke.MLKEM768X25519PrivateKey(self.kem_mlkem, self.kem_x25519)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """Serialise as a bundle of three PKCS#8 PEM blocks, encrypted if a passphrase is given."""
        protection: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return b"".join(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, protection
            )
            for key in (self.signing_key, self.kem_mlkem, self.kem_x25519)
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> Identity:
        """Load a private identity bundle written by :meth:`to_pem`."""
        sign: mldsa.MLDSA65PrivateKey | None = None
        kem: mlkem.MLKEM768PrivateKey | None = None
        xk: x25519.X25519PrivateKey | None = None
        for block in _blocks(data):
            try:
                key = serialization.load_pem_private_key(block, password=passphrase)
            except (ValueError, TypeError) as exc:
                raise KeyFileError(f"unreadable private key block: {exc}") from exc
            if isinstance(key, mldsa.MLDSA65PrivateKey):
                sign = _only_once(sign, key, "ML-DSA-65")
            elif isinstance(key, mlkem.MLKEM768PrivateKey):
                kem = _only_once(kem, key, "ML-KEM-768")
            elif isinstance(key, x25519.X25519PrivateKey):
                xk = _only_once(xk, key, "X25519")
            else:
                raise KeyFileError(f"unexpected private key type {type(key).__name__}")
        if sign is None or kem is None or xk is None:
            raise KeyFileError("private identity needs ML-DSA-65, ML-KEM-768 and X25519 keys")
        return cls(signing_key=sign, kem_mlkem=kem, kem_x25519=xk)


def _only_once(current: _K | None, key: _K, name: str) -> _K:
    if current is not None:
        raise KeyFileError(f"more than one {name} key in the bundle")
    return key


def _blocks(data: bytes) -> list[bytes]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data)]
    if not blocks:
        raise KeyFileError("no PEM block found")
    return blocks


def write_identity(
    identity: Identity, directory: Path, *, name: str, passphrase: bytes | None = None
) -> tuple[Path, Path]:
    """Write ``NAME.key.pem`` (mode 0600) and ``NAME.pub.pem`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{name}.key.pem"
    public_path = directory / f"{name}.pub.pem"
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(identity.to_pem(passphrase))
    public_path.write_bytes(identity.public().to_pem())
    return private_path, public_path


def read_identity(path: Path, passphrase: bytes | None = None) -> Identity:
    """Read a private identity file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from exc
    return Identity.from_pem(data, passphrase)


def read_public_identity(path: Path) -> PublicIdentity:
    """Read a public identity file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from exc
    return PublicIdentity.from_pem(data)
