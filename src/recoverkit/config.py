"""Service configuration: one TOML file plus ``RECOVERKIT_*`` environment variables.

Precedence, highest first: keyword arguments, environment, the TOML file, defaults. Nested values
use ``__`` in the environment (``RECOVERKIT_RETRY_RESULTS__API_KEY``). Secrets are never read from
the TOML file (it is usually committed): they come from the environment, or from a file named by a
``*_file`` setting (Docker/Kubernetes secrets); a secret found in the TOML file is an error.

Every decision ``docs/RECOVER_API.md`` takes where Butter's documents disagree is a setting here
with the project's default; ``docs/configuration.md`` says why each exists.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from recoverkit.client import DEFAULT_BASE_URL
from recoverkit.errors import ConfigurationError
from recoverkit.provider import EndOfDunningPolicy

__all__ = [
    "CONFIG_ENV",
    "EndpointAuth",
    "Settings",
    "load_settings",
    "provider_overrides",
]

#: Environment variable naming the TOML file (default: ``./recoverkit.toml`` when it exists).
CONFIG_ENV = "RECOVERKIT_CONFIG"
_SECRET_WORDS = ("secret", "password", "api_key", "private_key", "token")
_toml_path: ContextVar[Path | None] = ContextVar("recoverkit_toml_path", default=None)


def _read_secret_file(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {path}: {exc.strerror}") from None


class EndpointAuth(BaseModel):
    """Credentials Recover presents on one merchant endpoint (basic auth and/or ``x-api-key``).

    A request is accepted when it carries either configured credential. With none configured the
    endpoint refuses every call (401) — an open endpoint is never the default.
    """

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    #: Also require Butter's HMAC signature headers (Retry Results and End of Dunning).
    require_signature: bool = True

    @model_validator(mode="after")
    def _files(self) -> EndpointAuth:
        if self.password_file is not None and self.password is None:
            self.password = SecretStr(_read_secret_file(self.password_file, "password_file"))
        if self.api_key_file is not None and self.api_key is None:
            self.api_key = SecretStr(_read_secret_file(self.api_key_file, "api_key_file"))
        return self

    @property
    def configured(self) -> bool:
        """True when at least one credential is set."""
        return self.api_key is not None or (self.username is not None and self.password is not None)


class Settings(BaseSettings):
    """Everything ``recoverkit serve``, ``worker`` and ``doctor`` read."""

    model_config = SettingsConfigDict(
        env_prefix="RECOVERKIT_", env_nested_delimiter="__", extra="forbid"
    )

    # -- store --------------------------------------------------------------------------------
    database_url: str = "sqlite:///recoverkit.db"
    #: SQLite ``synchronous`` pragma: FULL survives power loss, NORMAL only process crashes.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    # -- Recover (outbound) -------------------------------------------------------------------
    recover_base_url: str = DEFAULT_BASE_URL
    recover_api_key: SecretStr | None = None
    recover_api_key_file: Path | None = None
    recover_timeout: float = Field(default=10.0, gt=0)
    recover_connect_timeout: float = Field(default=5.0, gt=0)
    #: Attempts within one send (quick retries); the outbox retries later on top of these.
    recover_max_attempts: int = Field(default=3, ge=1)
    #: Messages sent to Recover in parallel by one worker.
    recover_concurrency: int = Field(default=8, ge=1)
    #: Failed calls in a row (no answer, 5xx, 429) that open the worker's circuit breaker.
    recover_breaker_threshold: int = Field(default=5, ge=1)
    #: First cool-down of an open breaker before a probe; doubles per failed probe up to the cap.
    recover_breaker_cooldown: float = Field(default=1.0, gt=0)
    recover_breaker_cooldown_cap: float = Field(default=30.0, gt=0)
    #: PSP names to send in ``transactions[].psp`` besides Butter's list.
    extra_psp_names: list[str] = Field(default_factory=list)

    # -- Recover (inbound webhooks) -----------------------------------------------------------
    butter_signing_secrets: list[SecretStr] = Field(default_factory=list)
    #: A file with one signing secret per line (rotation: old and new at once).
    butter_signing_secret_file: Path | None = None
    #: Also accept a signature over the compact re-serialised body (Butter's older docs).
    butter_signature_fallback: bool = True
    #: Seconds a webhook may be past its expiry header and still be accepted.
    butter_clock_skew: float = Field(default=60.0, ge=0)
    retry_status: EndpointAuth = Field(
        default_factory=lambda: EndpointAuth(require_signature=False)
    )
    retry_results: EndpointAuth = Field(default_factory=EndpointAuth)
    end_of_dunning: EndpointAuth = Field(default_factory=EndpointAuth)
    end_of_dunning_policy: EndOfDunningPolicy = EndOfDunningPolicy.NONE

    # -- logging (docs/operations.md "What the logs say") --------------------------------------
    #: ``text``: one human-readable line per event; ``json``: one JSON object per line.
    log_format: Literal["text", "json"] = "text"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    #: One line per HTTP request the service answers (uvicorn's access log).
    access_log: bool = False

    # -- receiver -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: ``serve`` also runs a worker in the same process.
    serve_worker: bool = True
    #: Providers the receiver accepts (default: every installed one).
    enabled_providers: list[str] | None = None
    #: Per-provider settings, e.g. a ``[providers.stripe]`` table (no secrets here either).
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # -- worker -------------------------------------------------------------------------------
    worker_batch_size: int = Field(default=100, ge=1)
    worker_poll_interval: float = Field(default=0.5, gt=0)
    #: A claim's lease; a heartbeat renews it every quarter lease while the worker holds the row,
    #: so a crashed worker's rows are claimable again within this many seconds.
    worker_lease_seconds: float = Field(default=6.0, ge=0.2)
    inbox_max_attempts: int = Field(default=10, ge=1)
    outbox_backoff_base: float = Field(default=5.0, gt=0)
    outbox_backoff_cap: float = Field(default=900.0, gt=0)
    #: A message still not accepted after this many seconds is dead-lettered.
    outbox_dead_letter_after: float = Field(default=3 * 24 * 3600.0, gt=0)

    # -- data protection (docs/security.md) ---------------------------------------------------
    #: A Recover webhook whose expiry header is further ahead than this (seconds) is refused.
    butter_max_expiry_ahead: float = Field(default=24 * 3600.0, gt=0)
    #: A request body still arriving after this many seconds is cut (HTTP 408).
    body_read_timeout: float = Field(default=30.0, gt=0)
    #: Seconds an inbox event's raw payload is kept after receipt once translated; then only
    #: ids, digest, state and times remain.
    inbox_payload_retention: float = Field(default=7 * 24 * 3600.0, ge=0)
    #: Seconds sent or dead outbox rows are kept before deletion.
    outbox_retention: float = Field(default=30 * 24 * 3600.0, ge=0)
    #: Seconds a ledger row is kept after its last update (must outlive dunning).
    ledger_retention: float = Field(default=400 * 24 * 3600.0, ge=0)
    #: Seconds Retry Results / End of Dunning dedupe rows are kept (longer than
    #: ``butter_max_expiry_ahead``: an older replay is refused as expired anyway).
    butter_webhook_retention: float = Field(default=30 * 24 * 3600.0, ge=0)
    #: Seconds between the worker's retention purges (0: never purge automatically).
    retention_interval: float = Field(default=3600.0, ge=0)
    #: Fernet keys, newest first: stored PSP payloads are encrypted with the first, any one
    #: decrypts (rotation: add a key in front, ``recoverkit rotate-keys``, drop the old one).
    payload_encryption_keys: list[SecretStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _secret_files(self) -> Settings:
        if self.recover_api_key_file is not None and self.recover_api_key is None:
            self.recover_api_key = SecretStr(
                _read_secret_file(self.recover_api_key_file, "recover_api_key_file")
            )
        if self.butter_signing_secret_file is not None:
            text = _read_secret_file(self.butter_signing_secret_file, "butter_signing_secret_file")
            extra = [SecretStr(line.strip()) for line in text.splitlines() if line.strip()]
            self.butter_signing_secrets = [*self.butter_signing_secrets, *extra]
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the TOML file."""
        return (init_settings, env_settings, _TomlSource(settings_cls, _toml_path.get()))


def _secret_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found += _secret_keys(value, f"{path}.")
        elif any(w in key.lower() for w in _SECRET_WORDS) and not key.endswith("_file"):
            found.append(path)
    return found


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file and refuses secrets in it."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.data: dict[str, Any] = {}
        if path is None:
            return
        try:
            self.data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
        secrets = _secret_keys(self.data)
        if secrets:
            raise ConfigurationError(
                f"config file {path} holds secret(s) {', '.join(secrets)}: secrets come only "
                "from RECOVERKIT_* environment variables or *_file settings"
            )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` returns the whole table."""
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _default_config_path() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    local = Path("recoverkit.toml")
    return local if local.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (or ``$RECOVERKIT_CONFIG``, or ``./recoverkit.toml``) + env.

    Raises :class:`ConfigurationError` naming every invalid setting.
    """
    token = _toml_path.set(config_file if config_file is not None else _default_config_path())
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
    finally:
        _toml_path.reset(token)


def _is_list_field(settings_class: type[BaseModel] | None, key: str) -> bool | None:
    if settings_class is None or key not in settings_class.model_fields:
        return None
    annotation = settings_class.model_fields[key].annotation
    return get_origin(annotation) in (list, tuple, set, frozenset) or any(
        get_origin(arg) in (list, tuple, set, frozenset) for arg in get_args(annotation)
    )


def provider_overrides(
    settings: Settings, name: str, settings_class: type[BaseModel] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``ProviderClass.from_overrides(**…)`` from ``[providers.<name>]``.

    A ``<key>_file`` entry is read and passed as ``<key>`` (so a provider's secret can come from
    a mounted file): as a list of its non-empty lines when ``<key>`` is a list setting of
    ``settings_class`` (several secrets during a rotation), or — without ``settings_class`` —
    when the file has several lines; otherwise as one string. The provider's own
    ``RECOVERKIT_<NAME>_*`` environment still applies to everything not given here.
    """
    table = dict(settings.providers.get(name, {}))
    for key in [k for k in table if k.endswith("_file")]:
        path = Path(str(table.pop(key)))
        target = key.removesuffix("_file")
        text = _read_secret_file(path, f"providers.{name}.{key}")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        as_list = _is_list_field(settings_class, target)
        table[target] = lines if (as_list if as_list is not None else len(lines) > 1) else text
    return table
