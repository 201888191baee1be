"""Errors raised by medagent.secure, all under MedAgentError and the matching built-in."""

from __future__ import annotations

from medagent.errors import MedAgentError


class KeyFileError(MedAgentError, ValueError):
    """A key file is missing a key, holds a key of the wrong kind, or cannot be read."""


class SealError(MedAgentError, ValueError):
    """A sealed package was refused; the subclass and message say why."""


class MalformedPackageError(SealError):
    """The bytes are not a well-formed sealed package (truncated, trailing data, bad header)."""


class WrongRecipientError(SealError):
    """The package was sealed for another recipient key than the one given."""


class UnknownSenderError(SealError):
    """The package was signed by a key that is not in the trusted sender set."""


class TamperedError(SealError):
    """The signature or the HPKE ciphertext does not verify: the package was altered."""


class StaleError(SealError):
    """The package timestamp is outside the accepted window (too old or in the future)."""


class ReplayError(SealError):
    """A package with this package id was already opened."""


class AuditError(MedAgentError, ValueError):
    """The audit log cannot be written or read as asked."""


class AtRestError(MedAgentError, ValueError):
    """An encrypted record cannot be stored or read back (unknown key, corrupt record)."""


class RecordNotFoundError(MedAgentError, KeyError):
    """No encrypted record with that id exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "record not found"


class LinkError(MedAgentError, ConnectionError):
    """The quantum-safe link refused a peer or failed (downgrade, unpinned key, bad handshake)."""
