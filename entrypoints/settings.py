"""Settings: everything an entrypoint may be told by its environment, typed and checked once.

`Settings.from_env()` is called by the entrypoint (the CLI, the uvicorn worker factory), never at
import time; the container takes the result as given.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final

import attrs

from entrypoints import logs

MEMORY_URL: Final = "memory://"
DEFAULT_DATABASE_URL: Final = "sqlite:///./expense_tracker.db"
LOG_LEVELS: Final = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
# Where the workers of one server share their metrics (prometheus-client's own variable).
METRICS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


# Where an OpenID Connect issuer sends a person back after they signed in to the pages; the
# redirect URI registered at the provider is PUBLIC_URL followed by this.
OIDC_CALLBACK_PATH: Final = "/app/sign-in/callback"


class AuthMode(StrEnum):
    """Who the API believes the caller is."""

    DEMO = "demo"  # the actor id in the body or query, as the seed: anyone can be anyone
    TOKEN = "token"  # noqa: S105 -- a mode name; the actor comes from a bearer token
    OIDC = "oidc"  # the actor comes from a bearer JWT of a trusted OpenID Connect issuer


class LogFormat(StrEnum):
    """How log records are written."""

    JSON = "json"  # one JSON object per line, for machines (the default off a terminal)
    CONSOLE = "console"  # one readable line per record, for people at a terminal


class InvalidSetting(ValueError):
    """An environment variable holds something the service cannot run with."""


def _within(low: int, high: int) -> list[Callable[[Any, Any, int], Any]]:
    return [attrs.validators.ge(low), attrs.validators.le(high)]


def _issuers(value: str | tuple[tuple[str, int | None], ...]) -> tuple[tuple[str, int | None], ...]:
    """OIDC_ISSUER: issuer URLs, comma-separated, each with `=<company id>` or without (then
    OIDC_COMPANY_ID applies); an issuer URL has no query, so `=` cannot be part of one."""
    if not isinstance(value, str):
        return value
    issuers: list[tuple[str, int | None]] = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        url, equals, company = entry.rpartition("=") if "=" in entry else (entry, "", "")
        url = url.strip()
        if equals and not (company.strip().isdigit() and int(company) >= 1):
            raise ValueError(f"OIDC_ISSUER: {entry!r} must end in '=<company id>'")
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"OIDC_ISSUER: {url!r} is not an http(s) URL")
        issuers.append((url, int(company) if equals else None))
    return tuple(issuers)


@attrs.frozen(kw_only=True)
class Settings:
    """How to run: where the data lives, where to listen, and who to trust."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = attrs.field(default=4000, validator=_within(1, 65535))
    workers: int = attrs.field(default=1, validator=_within(1, 64))
    auth_mode: AuthMode = AuthMode.DEMO
    log_level: str = attrs.field(default="INFO", validator=attrs.validators.in_(LOG_LEVELS))
    db_pool_size: int = attrs.field(default=10, validator=_within(1, 1000))
    max_body_bytes: int = attrs.field(default=65536, validator=_within(1024, 10 * 1024 * 1024))
    # How long a request waits for a pooled connection before it is answered 503.
    db_pool_timeout_ms: int = attrs.field(default=5000, validator=_within(1, 600_000))
    # PostgreSQL cancels a statement (lock waits included) that runs longer: 503, rolled back.
    # 0 turns it off.
    db_statement_timeout_ms: int = attrs.field(default=15_000, validator=_within(0, 3_600_000))
    # How long opening a new connection may take (an unreachable host; a refusal is at once).
    db_connect_timeout_s: int = attrs.field(default=5, validator=_within(2, 300))
    # After SIGTERM: requests in flight get this long to finish before the process exits.
    shutdown_grace_s: int = attrs.field(default=20, validator=_within(0, 3600))
    # Requests one worker process serves at once; past it a request is answered 503 at once.
    max_in_flight: int = attrs.field(default=64, validator=_within(1, 100_000))
    # A request body must have arrived whole within this long (else 408 and the connection
    # is closed): a slow client holds a connection, never a request slot, for ever.
    body_timeout_s: int = attrs.field(default=10, validator=_within(1, 3600))
    # The request line and headers together; past it 431 and the connection is closed.
    max_header_bytes: int = attrs.field(default=16384, validator=_within(1024, 1024 * 1024))
    log_format: LogFormat = LogFormat.JSON
    # One line per request (method, route, status, duration, bytes, request id).
    access_log: bool = True
    # Prometheus metrics at GET /metrics, and what the service counts for them.
    metrics: bool = True
    # Label the expense counters by company: one series per company, so off by default.
    metrics_by_company: bool = False
    # Where traces go (OTLP over HTTP); unset, nothing is traced and OpenTelemetry is not loaded.
    otel_endpoint: str | None = None
    # Signs the pages' session cookies; every worker must share it. Unset, `serve` draws one
    # for its workers, so sign-ins end when the server stops.
    session_secret: str | None = attrs.field(default=None, repr=False)
    # Notifications (docs/notifications.md). Webhooks to loopback, private or link-local
    # addresses are refused unless this is on (a receiver on this machine, in development).
    webhook_allow_private: bool = False
    # smtp://[user[:password]@]host[:port]; unset, nothing is e-mailed.
    smtp_url: str | None = attrs.field(default=None, repr=False)
    mail_from: str = "expense-tracker@localhost"
    # Where people reach the pages: the links in e-mails start with it.
    public_url: str = "http://127.0.0.1:4000"
    # How often the worker looks for overdue steps to escalate; 0 never.
    escalation_interval_s: int = attrs.field(default=60, validator=_within(0, 86_400))
    # How long the worker rests when it found nothing to do.
    worker_idle_ms: int = attrs.field(default=200, validator=_within(10, 60_000))
    # Attempts one worker makes at once (one thread each).
    worker_concurrency: int = attrs.field(default=8, validator=_within(1, 256))
    # AUTH_MODE=oidc (docs/security.md): the trusted issuers, each with the company whose users
    # it signs in (its own `=<id>`, else `oidc_company_id`), and the audience tokens must name.
    oidc_issuers: tuple[tuple[str, int | None], ...] = attrs.field(default=(), converter=_issuers)
    oidc_audience: str | None = None
    oidc_company_id: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    # Clock skew allowed on exp, nbf and iat.
    oidc_leeway_s: int = attrs.field(default=60, validator=_within(0, 600))
    # An issuer's keys are fetched again on an unknown kid, but at most once per this long.
    oidc_jwks_cooldown_s: int = attrs.field(default=10, validator=_within(0, 3600))
    # ... and in any case once they are this old.
    oidc_jwks_max_age_s: int = attrs.field(default=3600, validator=_within(0, 7 * 86_400))
    # The pages' sign-in (authorization code with PKCE): the client id registered at each
    # issuer (an ID token's `aud`; unset, `oidc_audience`) and its secret, when the provider
    # gave one (client_secret_basic; unset, a public client).
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.auth_mode is not AuthMode.OIDC:
            return
        if not self.oidc_issuers:
            raise ValueError("AUTH_MODE=oidc needs OIDC_ISSUER")
        if not self.oidc_audience:
            raise ValueError("AUTH_MODE=oidc needs OIDC_AUDIENCE")
        if self.oidc_company_id is None and any(c is None for _, c in self.oidc_issuers):
            raise ValueError(
                "AUTH_MODE=oidc: give each OIDC_ISSUER its company ('<url>=<company id>') "
                "or set OIDC_COMPANY_ID"
            )

    @property
    def oidc_companies(self) -> dict[str, int]:
        """Each trusted issuer and the company whose users it signs in."""
        return {
            url: company if company is not None else (self.oidc_company_id or 0)
            for url, company in self.oidc_issuers
        }

    @property
    def oidc_client(self) -> str | None:
        """The client id the pages sign in as at the issuers: OIDC_CLIENT_ID, else
        OIDC_AUDIENCE."""
        return self.oidc_client_id or self.oidc_audience

    @property
    def oidc_redirect_uri(self) -> str:
        """Where the issuers send people back to the pages: PUBLIC_URL + the callback's path."""
        return self.public_url.rstrip("/") + OIDC_CALLBACK_PATH

    @property
    def is_memory(self) -> bool:
        """The data lives in this process only (`memory://`): lost on exit, one worker."""
        return self.database_url == MEMORY_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the variables of `ENV_NAMES`; unset or blank variables keep their defaults.

        Raises:
            InvalidSetting: a variable that is not a number where one is due, or out of range.
        """
        env = os.environ if environ is None else environ

        def read(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str) -> int | None:
            raw = read(name)
            if raw is None:
                return None
            try:
                return int(raw)
            except ValueError:
                raise InvalidSetting(f"{name} must be a whole number, got {raw!r}") from None

        def flag(name: str) -> bool | None:
            raw = read(name)
            if raw is None:
                return None
            if raw.lower() in TRUE:
                return True
            if raw.lower() in FALSE:
                return False
            raise InvalidSetting(f"{name} must be true or false, got {raw!r}")

        given: dict[str, object] = {
            "database_url": read("DATABASE_URL"),
            "host": read("HOST"),
            "port": number("PORT"),
            "workers": number("WORKERS"),
            "log_level": (read("LOG_LEVEL") or "").upper() or None,
            "db_pool_size": number("DB_POOL_SIZE"),
            "max_body_bytes": number("MAX_BODY_BYTES"),
            **{field: number(ENV_NAMES[field]) for field in NUMBERS},
            **{field: flag(ENV_NAMES[field]) for field in FLAGS},
            "otel_endpoint": read("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "session_secret": read("SESSION_SECRET"),
            "smtp_url": read("SMTP_URL"),
            "mail_from": read("MAIL_FROM"),
            "public_url": read("PUBLIC_URL"),
            "oidc_issuers": read("OIDC_ISSUER"),
            "oidc_audience": read("OIDC_AUDIENCE"),
            "oidc_company_id": number("OIDC_COMPANY_ID"),
            "oidc_client_id": read("OIDC_CLIENT_ID"),
            "oidc_client_secret": read("OIDC_CLIENT_SECRET"),
        }
        log_format = read("LOG_FORMAT")
        if log_format is None:
            # People at a terminal read lines; anything else (a file, a collector) gets JSON.
            given["log_format"] = LogFormat.CONSOLE if sys.stderr.isatty() else LogFormat.JSON
        else:
            try:
                given["log_format"] = LogFormat(log_format.lower())
            except ValueError:
                raise InvalidSetting(
                    f"LOG_FORMAT must be 'json' or 'console', got {log_format!r}"
                ) from None
        mode = read("AUTH_MODE")
        if mode is not None:
            try:
                given["auth_mode"] = AuthMode(mode.lower())
            except ValueError:
                raise InvalidSetting(
                    f"AUTH_MODE must be 'demo', 'token' or 'oidc', got {mode!r}"
                ) from None
        return cls.build(**{k: v for k, v in given.items() if v is not None})

    @classmethod
    def build(cls, **values: Any) -> Settings:
        """Settings from keyword values, with range errors as `InvalidSetting`.

        Raises:
            InvalidSetting: a value out of range (a port above 65535, zero workers...).
        """
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise InvalidSetting(_explain(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """These settings with some values changed, checked like the originals.

        Raises:
            InvalidSetting: a changed value is out of range.
        """
        return self.build(**{**attrs.asdict(self, recurse=False), **changes})


ENV_NAMES: Final = {
    "database_url": "DATABASE_URL",
    "host": "HOST",
    "port": "PORT",
    "workers": "WORKERS",
    "auth_mode": "AUTH_MODE",
    "log_level": "LOG_LEVEL",
    "db_pool_size": "DB_POOL_SIZE",
    "max_body_bytes": "MAX_BODY_BYTES",
    "db_pool_timeout_ms": "DB_POOL_TIMEOUT_MS",
    "db_statement_timeout_ms": "DB_STATEMENT_TIMEOUT_MS",
    "db_connect_timeout_s": "DB_CONNECT_TIMEOUT_S",
    "shutdown_grace_s": "SHUTDOWN_GRACE_S",
    "max_in_flight": "MAX_IN_FLIGHT",
    "body_timeout_s": "BODY_TIMEOUT_S",
    "max_header_bytes": "MAX_HEADER_BYTES",
    "log_format": "LOG_FORMAT",
    "access_log": "ACCESS_LOG",
    "metrics": "METRICS",
    "metrics_by_company": "METRICS_BY_COMPANY",
    "otel_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "session_secret": "SESSION_SECRET",
    "webhook_allow_private": "WEBHOOK_ALLOW_PRIVATE",
    "smtp_url": "SMTP_URL",
    "mail_from": "MAIL_FROM",
    "public_url": "PUBLIC_URL",
    "escalation_interval_s": "ESCALATION_INTERVAL_S",
    "worker_idle_ms": "WORKER_IDLE_MS",
    "worker_concurrency": "WORKER_CONCURRENCY",
    "oidc_issuers": "OIDC_ISSUER",
    "oidc_audience": "OIDC_AUDIENCE",
    "oidc_company_id": "OIDC_COMPANY_ID",
    "oidc_leeway_s": "OIDC_LEEWAY_S",
    "oidc_jwks_cooldown_s": "OIDC_JWKS_COOLDOWN_S",
    "oidc_jwks_max_age_s": "OIDC_JWKS_MAX_AGE_S",
    "oidc_client_id": "OIDC_CLIENT_ID",
    "oidc_client_secret": "OIDC_CLIENT_SECRET",
}
# Whole numbers read the same way, by their variable's name.
NUMBERS: Final = (
    "db_pool_timeout_ms",
    "db_statement_timeout_ms",
    "db_connect_timeout_s",
    "shutdown_grace_s",
    "max_in_flight",
    "body_timeout_s",
    "max_header_bytes",
    "escalation_interval_s",
    "worker_idle_ms",
    "worker_concurrency",
    "oidc_leeway_s",
    "oidc_jwks_cooldown_s",
    "oidc_jwks_max_age_s",
)
# Switches read the same way: true/false, 1/0, yes/no, on/off.
FLAGS: Final = ("access_log", "metrics", "metrics_by_company", "webhook_allow_private")
TRUE: Final = frozenset({"true", "1", "yes", "on"})
FALSE: Final = frozenset({"false", "0", "no", "off"})


def _explain(exc: Exception) -> str:
    # attrs validators say "'port' must be <= 65535: 70000"; name the variable instead.
    message = str(exc.args[0]) if exc.args else str(exc)
    for field, variable in ENV_NAMES.items():
        message = message.replace(f"'{field}'", variable)
    return message


def configure_logging(settings: Settings) -> None:
    """Send log records to stderr at the configured level, one line each, as JSON or for a
    terminal (`entrypoints.logs`); each line written for a request carries its id."""
    logs.configure(settings.log_level, console=settings.log_format is LogFormat.CONSOLE)
    # Alembic announces each of its plugins at INFO on every start; only its migrations matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # The worker logs each attempt itself (`entrypoints.worker`), with what it came to.
    logging.getLogger("httpx").setLevel(logging.WARNING)
