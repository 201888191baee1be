"""Errors of the monitor: a message that cannot be accepted, with the reason it was refused."""

from __future__ import annotations

from medagent.errors import MedAgentError


class MonitorError(MedAgentError):
    """Base of the monitor's errors."""


class IngestError(MonitorError, ValueError):
    """A message or observation cannot be accepted; ``reason`` says why, ``reject`` whether the
    message itself is unusable (HL7 AR) rather than its content (HL7 AE)."""

    def __init__(self, reason: str, *, reject: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reject = reject


class MonitorConfigError(MonitorError, ValueError):
    """The monitor's configuration file is invalid."""


class UnknownAlertError(MonitorError, KeyError):
    """No alert with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown alert"
