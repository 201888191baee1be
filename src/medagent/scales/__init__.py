"""Clinical scales: the definition format, the library of scale files, and the engine."""

from medagent.scales.engine import Result, evaluate, format_value, score_range
from medagent.scales.loader import parse_scale
from medagent.scales.model import Scale
from medagent.scales.registry import all_scales, get_scale, scale_ids

__all__ = [
    "Result",
    "Scale",
    "all_scales",
    "evaluate",
    "format_value",
    "get_scale",
    "parse_scale",
    "scale_ids",
    "score_range",
]
