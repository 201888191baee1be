"""The one OpenAI-compatible chat client of medagent (DeepSeek, Qwen on vLLM or Ollama, hosted)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import httpx

from medagent.errors import MedAgentError


class LLMError(MedAgentError, RuntimeError):
    """The endpoint failed, or answered something that is not the JSON asked for."""


@dataclass(frozen=True, slots=True)
class ChatClient:
    """Configured by base URL (…/v1), model name and API key; temperature 0 by default."""

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 60.0

    @classmethod
    def from_env(cls) -> ChatClient:
        """From MEDAGENT_LLM_URL, MEDAGENT_LLM_MODEL and MEDAGENT_LLM_KEY."""
        url = os.environ.get("MEDAGENT_LLM_URL")
        model = os.environ.get("MEDAGENT_LLM_MODEL")
        if not url or not model:
            raise LLMError("set MEDAGENT_LLM_URL and MEDAGENT_LLM_MODEL to use an LLM extractor")
        return cls(url, model, os.environ.get("MEDAGENT_LLM_KEY", ""))

    def chat_json(
        self, messages: list[dict[str, str]], *, schema: dict[str, Any], name: str = "answer"
    ) -> dict[str, Any]:
        """One chat completion constrained to a JSON schema; the parsed object, or LLMError."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/chat/completions"
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise LLMError(f"LLM endpoint {url}: {exc}") from None
        try:
            parsed = json.loads(_strip_fence(str(content)))
        except json.JSONDecodeError as exc:
            raise LLMError(f"LLM answer is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise LLMError("LLM answer is not a JSON object")
        return parsed


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
