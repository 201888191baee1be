"""Message catalogue of the pages (English, Simplified Chinese), loaded from package data."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from fastapi import Request

LANGUAGES = ("en", "zh-Hans")
LANG_COOKIE = "medagent_lang"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Every language's messages; each language must have every key of English."""
    text = (resources.files("medagent.service") / "messages.yaml").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = yaml.safe_load(text)
    keys = set(data["en"])
    for lang in LANGUAGES:
        missing = keys - set(data.get(lang, {}))
        if missing:
            raise ValueError(f"messages.yaml: {lang} lacks {sorted(missing)}")
    return data


def language_of(request: Request) -> str:
    """`?lang=`, then the language cookie, then Accept-Language; English by default."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LANGUAGES:
        return asked
    if asked == "zh" or (asked is None and "zh" in request.headers.get("accept-language", "")[:5]):
        return "zh-Hans"
    return "en"


def messages(lang: str) -> dict[str, str]:
    """The messages of one language."""
    return catalogue()[lang if lang in LANGUAGES else "en"]
