"""Models the agent loop talks to: the chat-model interface and the OpenAI-compatible client."""

from medbench.models.client import (
    ChatModel,
    ContextLimitError,
    ModelCallError,
    ModelError,
    ModelReply,
    OpenAIChatModel,
)

__all__ = ["ChatModel", "ContextLimitError", "ModelCallError", "ModelError", "ModelReply", "OpenAIChatModel"]
