"""Continuous monitoring: ingest, a digital twin per patient, early-warning scores, alerts."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medagent.monitor.core import IngestResult, Monitor
    from medagent.monitor.errors import IngestError, MonitorError
    from medagent.monitor.profile import patient_profile

# Imported on first use so that importing the package stays cheap (SQLAlchemy, statsmodels).
_EXPORTS = {
    "IngestResult": "core",
    "Monitor": "core",
    "IngestError": "errors",
    "MonitorError": "errors",
    "patient_profile": "profile",
}

__all__ = ["IngestError", "IngestResult", "Monitor", "MonitorError", "patient_profile"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medagent.monitor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"medagent.monitor.{module}"), name)
