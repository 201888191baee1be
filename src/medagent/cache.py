"""Where medagent keeps derived files that only save time (never the source of any truth)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is switched off (``MEDAGENT_NO_CACHE``)."""
    if os.environ.get("MEDAGENT_NO_CACHE") or os.environ.get("MEDAGENT_NO_UNIT_CACHE"):
        return None
    explicit = os.environ.get("MEDAGENT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medagent"


def read_json(path: Path) -> Any | None:
    """A cached JSON document, or None when it is missing or damaged (then it is rebuilt)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write atomically; a read-only or full disk only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:
        pass
