"""Errors of auto-population: a bad override, an unknown input, an unreadable defaults file."""

from __future__ import annotations

from medagent.errors import MedAgentError


class PopulateError(MedAgentError, ValueError):
    """Population could not run as asked (unknown input, malformed override or defaults)."""
