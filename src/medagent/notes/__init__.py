"""Free-text clinical notes -> scale inputs with evidence spans (rules by default; optional LLM)."""

from medagent.notes.model import Candidate, Extraction, Filled, Flag, NoteError, Span
from medagent.notes.rules import extract_rules

__all__ = ["Candidate", "Extraction", "Filled", "Flag", "NoteError", "Span", "extract_rules"]
