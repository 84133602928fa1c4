"""Settings, from environment variables (``LATM_*``), an optional ``.env`` file, an optional
TOML config file (``LATM_CONFIG_FILE``) and, for API keys, a secrets folder.

Priority, highest first: constructor arguments, environment, ``.env``, the config file, the
secrets folder. API keys are read only from the environment (``.env`` included) or the secrets
folder (one file per key, named like its variable, e.g. ``OPENAI_API_KEY``; default
``/run/secrets``); a config file that holds one is refused, since config files get committed.

The kubernetes backend's settings are one group too, ``kubernetes`` (a
:class:`~orchestrator.sandboxes.kubernetes_options.KubernetesSettings`), named in the nested
form only (``LATM_KUBERNETES__NAMESPACE``).

The docker backend's settings are one group, ``docker`` (a
:class:`~orchestrator.sandboxes.docker_options.DockerSettings`, holding the ``limits`` and
``pool`` groups), which the backend takes as it is. A group's fields are named in the nested
form (``LATM_DOCKER__POOL__MIN_IDLE``, or ``[docker.pool]`` in the config file) or by their
flat names of old (``LATM_POOL_MIN_IDLE``, ``pool_min_idle``; see :data:`FLAT_NAMES`); where a
source gives both, the nested form wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from orchestrator.errors import InvalidRequest
from orchestrator.models.catalog import default_models_dir
from orchestrator.models.specs import ModelSpec
from orchestrator.sandboxes.docker_options import ContainerLimits, DockerSettings
from orchestrator.sandboxes.kubernetes_options import KubernetesSettings
from orchestrator.sandboxes.pool import PoolConfig
from orchestrator.sandboxes.values import IsolationLevel

SECRET_FIELDS = (
    "openai_api_key",
    "anthropic_api_key",
    "openai_compatible_api_key",
    "database_url",  # may carry a password
)
DEFAULT_SECRETS_DIR = Path("/run/secrets")
# The offline defaults: the larger model makes tools (once per task, verified), the smaller
# one answers every question with them, where its speed counts.
DEFAULT_MAKER_MODEL = "local:qwen2.5-coder-1.5b"
DEFAULT_USER_MODEL = "local:qwen2.5-coder-0.5b"
# The flat names of grouped settings, still read (``LATM_POOL_MIN_IDLE``): name -> path.
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    **{
        f"docker_{name}": ("docker", name)
        for name in ("image", "runtime", "tenant_runtimes", "transport", "socket_dir")
    },
    **{
        f"docker_{name}": ("docker", "limits", name)
        for name in ("memory_mb", "cpus", "pids", "tmpfs_mb")
    },
    **{
        f"pool_{name}": ("docker", "pool", name)
        for name in ("min_idle", "max_size", "max_uses", "max_idle_s", "acquire_timeout_s")
    },
}
_GROUPS: dict[str, type[BaseModel]] = {
    "docker": DockerSettings,
    "limits": ContainerLimits,
    "pool": PoolConfig,
}


def _key(name: str) -> Any:
    """An API key field: ``LATM_NAME`` or the provider's usual ``NAME``."""
    upper = name.upper()
    return Field(
        default=None,
        validation_alias=AliasChoices(f"LATM_{upper}", upper),
        description=f"API key (environment or secrets folder only): LATM_{upper} or {upper}",
        repr=False,
    )


def _fold(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (one source's) with each flat name of a grouped setting moved into its group;
    a value the nested form gives too is kept. ``data`` itself is left as it was."""
    folded = dict(data)
    for name, path in FLAT_NAMES.items():
        if name not in folded:
            continue
        value = folded.pop(name)
        node = folded
        for key in path[:-1]:
            group = node.get(key)
            node[key] = dict(group) if isinstance(group, (dict, BaseModel)) else {}
            node = node[key]
        node.setdefault(path[-1], value)
    return folded


def _field(path: tuple[str, ...]) -> FieldInfo:
    """The field a path of :data:`FLAT_NAMES` ends at."""
    return _GROUPS[path[-2]].model_fields[path[-1]]


class _FlatNames(PydanticBaseSettingsSource):
    """The flat names of grouped settings (``LATM_POOL_MIN_IDLE``) in the variables of an
    environment source (the environment or ``.env``), in their groups."""

    def __init__(self, source: EnvSettingsSource) -> None:
        super().__init__(source.settings_cls)
        self.source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the values are all read in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, path in FLAT_NAMES.items():
            variable = f"{self.source.env_prefix}{name}"
            value = self.source.env_vars.get(variable.lower())  # the names are case-insensitive
            if value is None:
                continue
            field = _field(path)
            if self.source.field_is_complex(field):
                try:
                    value = self.source.decode_complex_value(name, field, value)
                except ValueError as exc:
                    raise SettingsError(f"{variable.upper()} is not valid JSON: {exc}") from exc
            found[name] = value
        return _fold(found)


class _ConfigFile(TomlConfigSettingsSource):
    """The TOML config file, refusing API keys in it."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        names = {n for f in SECRET_FIELDS for n in (f, f"latm_{f}")}
        found = sorted(key for key in self.toml_data if key.lower() in names)
        if found:
            raise InvalidRequest(
                f"the config file holds {', '.join(found)}; API keys are read only from the "
                "environment or the secrets folder"
            )
        return _fold(data)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LATM_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if isinstance(init_settings, InitSettingsSource):  # Settings(pool_min_idle=0) still works
            init_settings = InitSettingsSource(settings_cls, _fold(init_settings.init_kwargs))
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        for source in (env_settings, dotenv_settings):
            sources.append(source)
            if isinstance(source, EnvSettingsSource):  # .env's source is one too
                sources.append(_FlatNames(source))
        config_file = os.environ.get("LATM_CONFIG_FILE")
        if config_file:
            if not Path(config_file).is_file():
                raise InvalidRequest(f"LATM_CONFIG_FILE={config_file} is not a file")
            sources.append(_ConfigFile(settings_cls, toml_file=config_file))
        secrets_dir = Path(os.environ.get("LATM_SECRETS_DIR") or DEFAULT_SECRETS_DIR)
        if secrets_dir.is_dir():
            sources.append(
                SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, case_sensitive=False)
            )
        return tuple(sources)

    backend: str = Field(
        default="process", description="sandbox backend: process, docker or kubernetes"
    )
    process_isolation: str = Field(
        default="auto", description="process backend wrapper: auto, bwrap, unshare or none"
    )
    min_isolation: IsolationLevel = Field(
        default=IsolationLevel.RLIMITS,
        description="refuse to run below this: rlimits, namespaces, container or gvisor",
    )
    prefork: int = Field(default=2, ge=0, le=64, description="spare workers per sandbox")
    allow_modules: list[str] = Field(
        default_factory=list, description="extra importable modules (operator's choice)"
    )

    docker: DockerSettings = Field(
        default_factory=DockerSettings,
        description="the docker backend: image, runtimes, container limits, warm pools",
    )
    kubernetes: KubernetesSettings = Field(
        default_factory=KubernetesSettings,
        description="the kubernetes backend: namespace, runtime class, image, port, API access",
    )

    # --- models ---
    maker_model: str = Field(
        default=DEFAULT_MAKER_MODEL, description="model spec of the tool maker"
    )
    user_model: str = Field(default=DEFAULT_USER_MODEL, description="model spec of the tool user")
    user_stronger_model: str | None = Field(
        default=None,
        description="model spec of the stronger user: a tool the user model fails its check "
        "on is used by it, and doubtful answers escalate to it; unset: the maker model (a "
        "deployment with a costly cloud maker can keep it off the answer path)",
    )
    maker_candidates: int = Field(
        default=8,
        ge=1,
        le=16,
        description="candidate tools the maker samples; the first that passes every held-out "
        "case is kept (a scripted, non-sampling maker makes one)",
    )
    maker_repairs: int = Field(
        default=0,
        ge=0,
        le=5,
        description="replies with feedback a sampled candidate gets while proposing, after "
        "its first fails on the demos; 0 by measurement: small makers' repairs fixed nothing, "
        "fresh candidates did (a scripted maker has --attempts per stage)",
    )
    maker_varied_demos: bool = Field(
        default=False,
        description="show the maker demos whose answers differ where the task's spare examples "
        "allow (neither validation nor test): demos sharing one answer let a constant function "
        "solve them",
    )
    repair_after_failures: int = Field(
        default=0,
        ge=0,
        description="repair a tool by itself once this many cases (reported or failed) are "
        "open against its latest version; 0: never (repair with latm repair / RepairTool)",
    )
    user_retries: int = Field(
        default=2, ge=0, le=5, description="tool-user replies after the first, with feedback"
    )
    user_feedback: bool = Field(
        default=True,
        description="a tool-user retry gets the problem back; false: it is a fresh call "
        "sampled from the same prompt",
    )
    user_grounding: bool = Field(
        # False by measurement: the 0.5B user's second call, told a string is not in the
        # question, was worse than its first (bench/results/cheap_user_limit50.json).
        default=False,
        description="send back call strings not copied from the question",
    )
    user_snap: bool = Field(
        default=True,
        description="replace a string that nearly copies the question with the exact stretch",
    )
    user_samples: int = Field(
        # 0 by measurement: sampled calls agreeing never beat the greedy call of the 0.5B
        # user on the paper's tasks and cost 1.6x its tokens (bench/results/cheap_user.json).
        default=0,
        ge=0,
        le=10,
        description="extra sampled tool calls; the answer is agreed",
    )
    user_agree: int = Field(
        default=2, ge=1, le=10, description="stop sampling once this many calls agree"
    )
    user_escalate: bool = Field(
        default=False,
        description="ask the stronger model (LATM_USER_STRONGER_MODEL, else the maker model) "
        "again, with the same tool, when the user model answers with doubt (no answer, a "
        "corrected reply, sampled calls that disagree)",
    )
    user_check: bool = Field(
        # True by measurement: the 0.5B user answered 0 of 3 held-out tracking cases, and
        # the 1.5B maker model then answered 96.7 % of its test questions against the
        # 0.5B's 33.3 %, while tools it passed kept the light model
        # (bench/results/cheap_user_stronger.json).
        default=True,
        description="at publishing, the user model answers the tool's held-out cases; a tool "
        "it misses any of is used by the stronger model (LATM_USER_STRONGER_MODEL, else the "
        "maker model)",
    )
    user_temperature: float = Field(
        default=0.7, gt=0, le=2, description="temperature of the sampled tool calls"
    )
    model_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="per-attempt timeout of a completion"
    )
    model_max_retries: int = Field(
        default=2, ge=0, le=10, description="retries (with backoff) on rate limits and 5xx"
    )
    model_prices_file: Path | None = Field(
        default=None, description="JSON or TOML file of prices per million tokens"
    )
    openai_base_url: str | None = Field(
        default=None, description="base URL for openai: specs (default: OpenAI's)"
    )
    anthropic_base_url: str | None = Field(
        default=None, description="base URL for anthropic: specs (default: Anthropic's)"
    )
    openai_api_key: SecretStr | None = _key("openai_api_key")
    anthropic_api_key: SecretStr | None = _key("anthropic_api_key")
    openai_compatible_api_key: SecretStr | None = _key("openai_compatible_api_key")
    # --- the registry ---
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LATM_DATABASE_URL"),
        description="SQLAlchemy URL of the registry (default: SQLite in the user data folder); "
        "environment or secrets folder only, as it may carry a password",
        repr=False,
    )
    models_dir: Path = Field(
        default_factory=default_models_dir, description="cache folder of local GGUF models"
    )
    local_threads: int = Field(
        default=0, ge=0, le=256, description="threads of the local model server (0: all cores)"
    )
    local_ctx: int = Field(
        # 8192 by measurement: the 0.5B maker's logical-deduction conversation asked for
        # 5,747 tokens (4,211 of messages, 1,536 of reply) and 4,096 refused it; Qwen2.5
        # and SmolLM2 take 8,192 and more, at a larger KV cache only.
        default=8192,
        ge=256,
        le=131072,
        description="context length of the local model",
    )
    local_lookup_tokens: int = Field(
        default=0,
        ge=0,
        le=64,
        description="speculative decoding from the prompt (llama.cpp's prompt lookup): tokens "
        "drafted per step from the conversation's own text, checked by the model (0: off)",
    )
    local_start_timeout_s: float = Field(
        default=120.0, gt=0, description="wait for the local model server to be ready"
    )

    # --- the public gRPC API (latm serve) ---
    listen: str = Field(
        default="127.0.0.1:50051", description="HOST:PORT or unix:PATH the API listens on"
    )
    tls_cert_file: Path | None = Field(default=None, description="server certificate (PEM)")
    tls_key_file: Path | None = Field(default=None, description="server private key (PEM)")
    tls_client_ca_file: Path | None = Field(
        default=None, description="CA bundle of client certificates; set: mutual TLS required"
    )
    allow_insecure: bool = Field(
        default=False, description="allow plaintext on an address other than loopback"
    )
    metrics_listen: str = Field(
        default="", description="HOST:PORT of the Prometheus metrics endpoint ('' : off)"
    )
    http_listen: str = Field(
        default="",
        description="HOST:PORT of the HTTP listener serving MCP at /mcp ('' : off); it takes "
        "the TLS settings above and refuses plaintext beyond loopback the same way",
    )
    mcp_allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser Origins allowed to call /mcp besides loopback ones "
        "(e.g. https://agent.example.com); requests with another Origin get 403",
    )
    mcp_call_timeout_s: float = Field(
        default=900.0,
        ge=0,
        le=86400,
        description="deadline of each MCP tools/call, making included (0: none); the "
        "sandbox and model calls under it are cut to what is left, as for a gRPC deadline",
    )
    log_format: str = Field(default="json", description="server logs: json or text")
    log_level: str = Field(default="INFO", description="server log level")
    tracing: str = Field(default="off", description="OpenTelemetry tracing: off, console or otlp")
    otlp_endpoint: str = Field(default="", description="OTLP/gRPC collector for tracing=otlp")
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, le=3600, description="time in-flight calls get to finish on stop"
    )
    api_key_cache_s: float = Field(
        default=5.0, ge=0, le=300, description="how long a checked API key is trusted"
    )
    max_message_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="gRPC message cap"
    )
    quota_lease_s: float = Field(
        default=15.0,
        ge=1,
        le=3600,
        description="replicas on PostgreSQL: how long a concurrency slot of a replica that "
        "died stays taken (a live replica renews its slots every third of this)",
    )
    # Default quotas of a new tenant (each tenant's own are stored with it).
    quota_requests_per_minute: int = Field(default=600, ge=1, description="requests a minute")
    quota_concurrent_executions: int = Field(
        default=8, ge=1, description="Solve and ExecuteTool calls at once"
    )
    quota_concurrent_makes: int = Field(default=1, ge=1, description="MakeTool jobs at once")
    quota_max_timeout_ms: int = Field(
        default=30_000, ge=1, description="largest sandbox timeout a request may ask for"
    )
    quota_max_memory_mb: int = Field(
        default=512, ge=1, description="largest sandbox memory a request may ask for"
    )
    quota_max_tools: int = Field(default=1000, ge=1, description="tools a tenant may keep")
    quota_max_versions: int = Field(default=100, ge=1, description="versions of one tool")
    quota_max_stored_mb: int = Field(
        default=256, ge=1, description="MiB of tool cards a tenant may keep in all"
    )
    quota_max_card_kb: int = Field(
        default=2048, ge=1, le=2048, description="KiB of one tool card's JSON"
    )
    quota_max_demos: int = Field(default=32, ge=1, le=32, description="usage demos per card")
    quota_max_cases: int = Field(
        default=256, ge=1, le=256, description="verification cases per card"
    )
    quota_max_make_examples: int = Field(
        default=1000, ge=1, le=10_000, description="solved examples per MakeTool request"
    )
    quota_max_make_kb: int = Field(
        default=1024, ge=1, le=3072, description="KiB of a MakeTool request's examples"
    )
    quota_max_question_chars: int = Field(
        default=20_000, ge=1, le=1_000_000, description="characters of a Solve question"
    )
    quota_max_prompt_tokens: int = Field(
        default=32_000, ge=1, description="prompt tokens of one model call (estimated)"
    )

    @field_validator("maker_model", "user_model", "user_stronger_model")
    @classmethod
    def _valid_spec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ModelSpec.parse(value)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("json", "text"):
            raise ValueError(f"unknown log format {value!r}; one of: json, text")
        return value

    @field_validator("tracing")
    @classmethod
    def _known_tracing(cls, value: str) -> str:
        if value not in ("off", "console", "otlp"):
            raise ValueError(f"unknown tracing mode {value!r}; one of: off, console, otlp")
        return value

    @field_validator("min_isolation", mode="before")
    @classmethod
    def _level_by_name(cls, value: object) -> object:
        return IsolationLevel.parse(value) if isinstance(value, str) else value
