"""The scale library: scale files shipped as package data, loaded on demand, one registry."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from medagent.cache import cache_dir, read_json, write_json
from medagent.errors import Problem, ScaleDefinitionError, UnknownScaleError
from medagent.scales.loader import parse_scale, scale_from_dict, yaml_document
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
    scale = _load(entry, scale_id)
    if scale.id != scale_id:
        raise ScaleDefinitionError(
            f"{scale_id}{_SUFFIX}", [Problem("id", f"the file name says {scale_id!r}")]
        )
    return scale


def _load(entry: Traversable, scale_id: str) -> Scale:
    """Parse a scale file; its YAML is parsed once and kept as JSON in the cache folder.

    YAML parsing is most of the cost of loading the library; the cached JSON is keyed by a
    hash of the file's bytes, and the model is validated in full either way.
    """
    raw = entry.read_bytes()
    source = f"{scale_id}{_SUFFIX}"
    base = cache_dir()
    if base is None:
        return parse_scale(raw.decode("utf-8"), source=source)
    path = base / "scales" / f"{scale_id}-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    data = read_json(path)
    if isinstance(data, dict):
        return scale_from_dict(data, source=source)
    text = raw.decode("utf-8")
    parsed = yaml_document(text, source=source)
    scale = scale_from_dict(parsed, source=source)
    write_json(path, parsed)
    return scale


def all_scales() -> list[Scale]:
    """Every scale of the library, loaded and validated."""
    return [get_scale(i) for i in scale_ids()]
