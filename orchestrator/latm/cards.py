"""The tool card: the JSON form of a tool (``latm.tool/v1``) for export, import and storage.

The shape is a contract (see DESIGN.md); fields beyond it (``version``, ``signature``,
``task``, ``scorer``, ``input_schema``) are optional extensions: a card without them loads.
Cards are plain JSON, validated by pydantic, never pickled. Everything in a card that a
model wrote (name, description, source, demos) is untrusted text: it is stored and shown,
and its code only ever runs inside a sandbox.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.errors import InvalidRequest
from orchestrator.latm.schemas import checked_schema

CARD_FORMAT = "latm.tool/v1"
# Matched whole (``fullmatch``): with ``match`` and ``$``, "add\n" passed as a name
# distinct from "add".
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_SOURCE = 512 * 1024
# Every card is bounded, field by field and as a whole: a card is stored, cached, sent in
# ListTools and GetTool, and its demos go into the user model's prompt.
MAX_CARD_BYTES = 2 * 1024 * 1024
MAX_TEXT = 16 * 1024  # a question, a solution snippet, an answer
MAX_NOTE = 8 * 1024  # what the sandbox gave or said, a signature, a task's name
MAX_DEMOS = 32
MAX_CASES = 256


class UsageDemo(BaseModel):
    """A worked use of the tool: the question, the call snippet, and its answer."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(max_length=MAX_TEXT, description="the request, as a user would send it")
    solution: str = Field(
        max_length=MAX_TEXT, description="the snippet that calls the tool and sets `ans`"
    )
    answer: str = Field(
        max_length=MAX_TEXT, description="the answer the snippet produced in the sandbox"
    )


class VerificationCase(BaseModel):
    """One held-out case: what was expected, what the tool gave, and whether it matched."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(max_length=MAX_TEXT)
    expected: str = Field(max_length=MAX_TEXT)
    got: str | None = Field(default=None, max_length=MAX_NOTE)
    passed: bool
    error: str | None = Field(
        default=None, max_length=MAX_NOTE, description="the sandbox's error, if any"
    )


class UserCheck(BaseModel):
    """How the tool user model answered the held-out cases the tool passed, asked as
    questions when the tool was published. A tool whose user check missed any is used by
    the stronger (maker) model: its calls need more than the light model writes."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(max_length=MAX_NOTE, description="the user model's spec")
    correct: int = Field(ge=0)
    questions: int = Field(ge=0)

    @property
    def passed(self) -> bool:
        return self.correct >= self.questions


class Verification(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: int = Field(ge=0)
    total: int = Field(ge=0)
    cases: list[VerificationCase] = Field(default_factory=list, max_length=MAX_CASES)
    user: UserCheck | None = Field(
        default=None, description="the user model on the held-out cases, at publishing"
    )


class Provenance(BaseModel):
    """Who made the tool, at what cost, and the digest of its source."""

    model_config = ConfigDict(frozen=True, extra="allow")

    maker: str = Field(description="the maker's model spec")
    attempts: int = Field(default=1, ge=0)
    tokens: dict[str, int] = Field(default_factory=dict, description="prompt/completion")
    cost_usd: float = Field(default=0.0, ge=0)
    created_at: str = Field(description="ISO 8601, UTC")
    sha256: str = Field(description="sha256 of the source")
    wall_s: float | None = Field(default=None, ge=0, description="time spent making it")
    candidates: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=MAX_DEMOS,
        description="each candidate tool the maker sampled: signature, held-out cases "
        "passed, the problem that stopped it, whether it was kept",
    )


class ToolCard(BaseModel):
    """A verified tool with its usage demos, as stored, exported and imported."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["latm.tool/v1"] = "latm.tool/v1"
    name: str = Field(description="lower_snake_case, unique per tenant with the version")
    description: str = Field(max_length=4000)
    source: str = Field(max_length=MAX_SOURCE, description="the tool module's source")
    entrypoint: str = Field(description="the function the usage demos call")
    signature: str | None = Field(
        default=None, max_length=MAX_NOTE, description="e.g. sort_words(text: str) -> str"
    )
    usage_demos: list[UsageDemo] = Field(default_factory=list, max_length=MAX_DEMOS)
    verification: Verification
    provenance: Provenance
    version: int | None = Field(default=None, ge=1, description="set by the registry")
    task: str | None = Field(
        default=None, max_length=MAX_NOTE, description="the task it was made for"
    )
    scorer: str | None = Field(
        default=None, max_length=64, description="the scorer its answers need"
    )
    input_schema: dict[str, Any] | None = Field(
        default=None,
        description="the entrypoint's keyword parameters as a JSON Schema, read in the sandbox",
    )

    @field_validator("input_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return checked_schema(value)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from None

    @field_validator("name", "entrypoint")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a tool name: lower_snake_case, a letter first, 64 at most"
            )
        return value

    @property
    def sha256(self) -> str:
        return source_sha256(self.source)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ToolCard:
        """Parse and check a card; the source must match its recorded sha256."""
        size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        if size > MAX_CARD_BYTES:
            raise InvalidRequest(
                f"a tool card is limited to {MAX_CARD_BYTES} bytes; this one has {size}"
            )
        try:
            card = cls.model_validate_json(text)
        except ValidationError as exc:
            raise InvalidRequest(f"not a valid {CARD_FORMAT} tool card: {_first(exc)}") from None
        if card.provenance.sha256 != card.sha256:
            raise InvalidRequest(
                f"tool card {card.name!r}: the source does not match provenance.sha256"
            )
        return card


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _first(exc: ValidationError) -> str:
    error: dict[str, Any] = exc.errors()[0]  # type: ignore[assignment]
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))
