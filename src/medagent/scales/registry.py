"""The scale library: scale files shipped as package data, loaded on demand, one registry."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from medagent.errors import Problem, ScaleDefinitionError, UnknownScaleError
from medagent.scales.loader import parse_scale
from medagent.scales.model import Scale

_PACKAGE = "medagent.scales.library"
_SUFFIX = ".yaml"


def _files() -> dict[str, Traversable]:
    root = resources.files(_PACKAGE)
    return {
        entry.name[: -len(_SUFFIX)]: entry
        for entry in root.iterdir()
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith("_")
    }


@cache
def _index() -> dict[str, Traversable]:
    return _files()


def scale_ids() -> list[str]:
    """Ids of every scale in the library, sorted."""
    return sorted(_index())


@cache
def get_scale(scale_id: str) -> Scale:
    """Load one scale by id (only its own file is read)."""
    entry = _index().get(scale_id)
    if entry is None:
        raise UnknownScaleError(f"no scale {scale_id!r} in the library")
    scale = parse_scale(entry.read_text(encoding="utf-8"), source=f"{scale_id}{_SUFFIX}")
    if scale.id != scale_id:
        raise ScaleDefinitionError(
            f"{scale_id}{_SUFFIX}", [Problem("id", f"the file name says {scale_id!r}")]
        )
    return scale


def all_scales() -> list[Scale]:
    """Every scale of the library, loaded and validated."""
    return [get_scale(i) for i in scale_ids()]
