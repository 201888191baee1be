"""One small client for OpenAI-compatible chat endpoints with JSON-schema outputs."""

from medagent.llm.client import ChatClient, LLMError

__all__ = ["ChatClient", "LLMError"]
