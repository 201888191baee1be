"""The one OpenAI-compatible chat client of medagent (DeepSeek, Qwen on vLLM or Ollama, hosted).

The endpoint must pass the outbound policy (:mod:`medagent.secure.outbound`): the hospital
gateway's local address or a host declared on-site. Callers de-identify what they send
(:mod:`medagent.notes.llm` does, with :mod:`medagent.secure.deid`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from medagent.errors import MedAgentError
from medagent.secure.outbound import OutboundPolicy, guarded_client

URL_SETTING = "MEDAGENT_LLM_URL"


class LLMError(MedAgentError, RuntimeError):
    """The endpoint failed, or answered something that is not the JSON asked for."""


@dataclass(frozen=True, slots=True)
class ChatClient:
    """Configured by base URL (…/v1), model name and API key; temperature 0 by default.

    The base URL is checked against ``policy`` (by default the policy of the environment) when
    the client is made, and every request again when it is sent; redirects are not followed.
    """

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0
    policy: OutboundPolicy | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        policy = self.policy if self.policy is not None else OutboundPolicy.from_env()
        policy.check(self.base_url.rstrip("/") + "/chat/completions", setting=URL_SETTING)
        object.__setattr__(self, "policy", policy)

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
        policy = self.policy if self.policy is not None else OutboundPolicy.from_env()
        try:
            with guarded_client(policy, setting=URL_SETTING, timeout=self.timeout) as http:
                response = http.post(url, json=body, headers=headers)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            why = "redirects are not followed" if exc.response.is_redirect else exc
            raise LLMError(f"LLM endpoint {url} answered {code}: {why}") from None
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
