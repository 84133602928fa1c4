"""Model adapters: the maker's and user's models, outside the sandbox trust boundary.

A spec string picks the adapter (:func:`open_model`): ``openai:MODEL``, ``anthropic:MODEL``,
``openai-compatible:BASE_URL#MODEL``, ``local:NAME_OR_GGUF_PATH`` or ``scripted:FILE``.
"""

from orchestrator.models.base import (
    ChatParams,
    Completion,
    Message,
    ModelAdapter,
    Price,
    RawCompletion,
    TokenUsage,
)
from orchestrator.models.factory import open_model, resolve_local
from orchestrator.models.ledger import (
    MeteredModel,
    UsageLedger,
    UsageScope,
    UsageTotals,
    current_scope,
    usage_scope,
)
from orchestrator.models.pricing import PriceTable
from orchestrator.models.specs import ModelSpec, Provider

__all__ = [
    "ChatParams",
    "Completion",
    "Message",
    "MeteredModel",
    "ModelAdapter",
    "ModelSpec",
    "Price",
    "PriceTable",
    "Provider",
    "RawCompletion",
    "TokenUsage",
    "UsageLedger",
    "UsageScope",
    "UsageTotals",
    "current_scope",
    "open_model",
    "resolve_local",
    "usage_scope",
]
