"""OpenAI-compatible AI providers: the real client (OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio)
and an offline provider that answers from retrieved knowledge when no API key is configured."""

from integrations.ai.client import (
    AIError,
    ChatProvider,
    ChatResult,
    OfflineProvider,
    ToolCall,
    is_platform_server,
    provider_for,
)

__all__ = [
    "AIError",
    "ChatProvider",
    "ChatResult",
    "OfflineProvider",
    "ToolCall",
    "is_platform_server",
    "provider_for",
]
