"""The one place that picks adapters: settings -> database -> unit-of-work factory -> services.

Nothing is built at import time: a `Container` is fed `Settings` by its entrypoint and builds
each provider on first use. Tests override `settings` (`memory://`) to run the whole API in
memory.

With METRICS on (the default) the container also keeps the service's metrics: the database
tells them about its pool and failed statements, and units of work about what they commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.memory import MemoryBulkLoader, MemoryStore, MemoryUnitOfWork
from entrypoints.observed import watched, watched_awaited
from entrypoints.ports import AwaitedStore, BulkLoader, IdentityVerifier, SignInFlow
from entrypoints.settings import AuthMode, InvalidSetting, Settings
from expense_core.model import ApprovalStatus, CompanyId, ExpenseStatus
from expense_core.ports import Clock, UnitOfWork
from expense_core.services import (
    AccessService,
    AuditService,
    AwaitedAccessService,
    AwaitedExpenseService,
    DelegationService,
    EscalationService,
    ExpenseService,
    OrgService,
    Relay,
    SignOnService,
    WebhookService,
)
from expense_core.views import Backlog

if TYPE_CHECKING:
    from entrypoints.metrics import Metrics


@runtime_checkable
class Database(Protocol):
    """A store the services run on, and what operators do to it."""

    def unit_of_work(self) -> UnitOfWork:
        """Start a new unit of work (one transaction)."""
        ...

    def upgrade(self) -> None:
        """Bring the schema to the newest version."""
        ...

    def ping(self) -> None:
        """Raises: Unavailable when the store cannot be reached."""
        ...

    def dispose(self) -> None:
        """Close every connection."""
        ...

    def bulk_loader(self) -> BulkLoader:
        """What loads generated data in bulk into this store (see `entrypoints.ports`)."""
        ...

    def backlog(self) -> Backlog:
        """What waits for a decision, in every company (for the metrics).

        Raises:
            Unavailable: the store cannot be reached.
        """
        ...


@attrs.frozen
class MemoryDatabase:
    """The in-memory store behind the `Database` face; data lives as long as the process."""

    store: MemoryStore = attrs.Factory(MemoryStore)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return self.store.unit_of_work()

    def upgrade(self) -> None:
        """Nothing to migrate: the store has no schema."""

    def ping(self) -> None:
        """Always reachable: it is in this process."""

    def dispose(self) -> None:
        """Nothing to close."""

    def bulk_loader(self) -> MemoryBulkLoader:
        return MemoryBulkLoader(self.store)

    def backlog(self) -> Backlog:
        with self.store.lock:
            pending = [
                e for e in self.store.tables.expenses.values() if e.status is ExpenseStatus.PENDING
            ]
            steps = sum(
                1 for e in pending for a in e.approvals if a.status is ApprovalStatus.PENDING
            )
        since: datetime | None = min((e.submitted_at for e in pending), default=None)
        return Backlog(pending_steps=steps, oldest_pending_since=since)


def database_for(settings: Settings) -> Database:
    """Open the database DATABASE_URL names: `memory://`, or a SQLAlchemy URL (lazily: nothing
    connects until a unit of work or a ping needs to).

    Raises:
        InvalidSetting: DATABASE_URL names a database the SQL adapter does not support.
    """
    if settings.is_memory:
        return MemoryDatabase()
    # Imported here so that in-memory use never loads SQLAlchemy or a driver.
    from adapters.sql import SqlDatabase

    try:
        return SqlDatabase.connect(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout_s=settings.db_pool_timeout_ms / 1000,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
    except ValueError as exc:
        raise InvalidSetting(f"DATABASE_URL: {exc}") from None


def open_database(settings: Settings, metrics: Metrics | None = None) -> Iterator[Database]:
    """The database for these settings, disposed of when the container shuts down; watched by
    the metrics, if kept."""
    database = database_for(settings)
    if metrics is not None:
        observe_database(database, metrics.database)
    try:
        yield database
    finally:
        database.dispose()


def observe_database(database: Database, observer: Any) -> None:
    """Let `observer` (an `adapters.sql.observe.SqlObserver`) watch a SQL database's pool and
    statements; the memory store has neither."""
    if isinstance(database, MemoryDatabase):
        return  # and in-memory use never loads SQLAlchemy
    from adapters.sql import SqlDatabase

    if isinstance(database, SqlDatabase):
        database.observe(observer)


def trace_database(database: Database, tracer: Any) -> None:
    """Give each statement a SQL database runs a span of `tracer` (an OpenTelemetry tracer)."""
    if isinstance(database, MemoryDatabase):
        return
    from adapters.sql import SqlDatabase

    if isinstance(database, SqlDatabase):
        from adapters.sql.tracing import trace_statements

        trace_statements(database.engine, tracer)


def metrics_for(settings: Settings) -> Metrics | None:
    """The service's metrics; None with METRICS=false, and prometheus-client is not loaded."""
    if not settings.metrics:
        return None
    from entrypoints.metrics import Metrics

    return Metrics(by_company=settings.metrics_by_company)


def uow_factory_for(
    database: Database, metrics: Metrics | None = None, tracer: Any = None
) -> Callable[[], UnitOfWork]:
    """What the services call to start a unit of work: telling the metrics what it commits,
    and in a span of `tracer` (an OpenTelemetry tracer), if either is kept."""
    new_uow: Callable[[], UnitOfWork] = database.unit_of_work
    if metrics is not None:
        new_uow = watched(new_uow, metrics.domain.committed)
    if tracer is not None:
        from entrypoints.tracing import traced_units

        new_uow = traced_units(new_uow, tracer)
    return new_uow


def awaited_store_for(
    database: Database, settings: Settings, metrics: Metrics | None = None, tracer: Any = None
) -> AwaitedStore | None:
    """The store the API's busiest requests await (`services.awaited`): PostgreSQL's on a pool
    of asynchronous connections as large as the threads' (`DB_POOL_SIZE`), or memory's.

    None on SQLite (one writer at a time: its units of work keep their threads), and with
    tracing, whose spans are those of units of work: then every use case runs on a thread.
    """
    if tracer is not None:
        return None
    if isinstance(database, MemoryDatabase):
        from adapters.memory.awaited import MemoryAwaitedExpenses

        return MemoryAwaitedExpenses(database.store)
    from adapters.sql import SqlDatabase

    if not isinstance(database, SqlDatabase) or database.is_sqlite:
        return None
    from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses

    pool = AwaitedPool(
        database,
        size=settings.db_pool_size,
        timeout_s=settings.db_pool_timeout_ms / 1000,
        observer=None if metrics is None else metrics.database,
    )
    return PgAwaitedExpenses(pool)


def awaited_service_for(
    expenses: ExpenseService, store: AwaitedStore | None, metrics: Metrics | None = None
) -> AwaitedExpenseService:
    """The awaited use cases on `store`, telling the metrics what its writes commit; what they
    hand to the library runs on the loop's executor (the use-case threads), in the request's
    context (its log fields), as Litestar runs a synchronous handler."""
    from litestar.concurrency import sync_to_thread  # here: only the API awaits

    awaited: AwaitedStore | None = store
    if store is not None and metrics is not None:
        awaited = watched_awaited(store, metrics.domain.committed)
    return AwaitedExpenseService(expenses, awaited, sync_to_thread)


def awaited_access_for(access: AccessService, store: AwaitedStore | None) -> AwaitedAccessService:
    """Token mode's bearer check of every request, awaited on `store`; on a thread without one."""
    from litestar.concurrency import sync_to_thread  # here: only the API awaits

    return AwaitedAccessService(access, store, sync_to_thread)


def bulk_loader_for(database: Database) -> BulkLoader:
    """What `seed synthetic` loads its data with: the configured database's own bulk path."""
    return database.bulk_loader()


@attrs.frozen
class NetworkDestinations:
    """Where webhooks may point, as DNS says now (`adapters.webhooks.destinations`)."""

    allow_private: bool

    def refusal(self, url: str) -> str | None:
        from adapters.webhooks.destinations import refusal

        return refusal(url, allow_private=self.allow_private)


def destinations_for(settings: Settings) -> NetworkDestinations:
    return NetworkDestinations(allow_private=settings.webhook_allow_private)


def relay_for(new_uow: Callable[[], UnitOfWork], clock: Any, settings: Settings) -> Relay:
    """The worker's use cases: e-mail deliveries are made only when SMTP_URL is set."""
    return Relay(new_uow, clock, mail=settings.smtp_url is not None)


def open_verifier(settings: Settings, clock: Clock) -> Iterator[IdentityVerifier | None]:
    """What checks OpenID Connect bearer tokens with AUTH_MODE=oidc (None otherwise), closed
    when the container shuts down; no issuer is asked anything until a token arrives."""
    if settings.auth_mode is not AuthMode.OIDC:
        yield None
        return
    from adapters.oidc import OidcVerifier

    assert settings.oidc_audience is not None  # noqa: S101 -- Settings refuses oidc without one
    verifier = OidcVerifier(
        {url: CompanyId(company) for url, company in settings.oidc_companies.items()},
        settings.oidc_audience,
        clock,
        leeway_s=settings.oidc_leeway_s,
        cooldown_s=settings.oidc_jwks_cooldown_s,
        max_age_s=settings.oidc_jwks_max_age_s,
    )
    try:
        yield verifier
    finally:
        verifier.close()


def open_sign_in_flow(settings: Settings, clock: Clock) -> Iterator[SignInFlow | None]:
    """What signs people in to the pages at the OpenID Connect issuers with AUTH_MODE=oidc
    (None otherwise): its ID tokens are checked by a verifier of their own, whose audience is
    the client id; closed when the container shuts down."""
    if settings.auth_mode is not AuthMode.OIDC:
        yield None
        return
    from adapters.oidc import CodeFlow, OidcVerifier

    client_id = settings.oidc_client
    assert client_id is not None  # noqa: S101 -- Settings refuses oidc without an audience
    companies = {url: CompanyId(company) for url, company in settings.oidc_companies.items()}
    flow = CodeFlow(
        tuple(companies),
        OidcVerifier(
            companies,
            client_id,
            clock,
            leeway_s=settings.oidc_leeway_s,
            cooldown_s=settings.oidc_jwks_cooldown_s,
            max_age_s=settings.oidc_jwks_max_age_s,
        ),
        client_id=client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=settings.oidc_redirect_uri,
        max_age_s=settings.oidc_jwks_max_age_s,
    )
    try:
        yield flow
    finally:
        flow.close()


class Container(containers.DeclarativeContainer):
    """Settings in, services out; each provider is built on first use.

    `shutdown_resources()` disposes of the database if it was opened.
    """

    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    metrics = providers.Singleton(metrics_for, settings=settings)
    # An OpenTelemetry tracer once tracing is installed (`entrypoints.tracing.install`).
    tracer: providers.Provider[Any] = providers.Object(None)
    database = providers.Resource(open_database, settings=settings, metrics=metrics)
    new_uow = providers.Singleton(
        uow_factory_for, database=database, metrics=metrics, tracer=tracer
    )
    bulk_loader = providers.Singleton(bulk_loader_for, database=database)
    expenses = providers.Singleton(ExpenseService, new_uow=new_uow, clock=clock)
    # Opened and closed by the app on its event loop (`entrypoints.http.app`).
    awaited_store = providers.Singleton(
        awaited_store_for, database=database, settings=settings, metrics=metrics, tracer=tracer
    )
    awaited_expenses = providers.Singleton(
        awaited_service_for, expenses=expenses, store=awaited_store, metrics=metrics
    )
    org = providers.Singleton(OrgService, new_uow=new_uow, clock=clock)
    access = providers.Singleton(AccessService, new_uow=new_uow, clock=clock)
    awaited_access = providers.Singleton(awaited_access_for, access=access, store=awaited_store)
    escalation = providers.Singleton(EscalationService, new_uow=new_uow, clock=clock)
    delegations = providers.Singleton(DelegationService, new_uow=new_uow, clock=clock)
    destinations = providers.Singleton(destinations_for, settings=settings)
    webhooks = providers.Singleton(
        WebhookService, new_uow=new_uow, clock=clock, destinations=destinations
    )
    relay = providers.Singleton(relay_for, new_uow=new_uow, clock=clock, settings=settings)
    audit = providers.Singleton(AuditService, new_uow=new_uow)
    sign_on = providers.Singleton(SignOnService, new_uow=new_uow)
    verifier = providers.Resource(open_verifier, settings=settings, clock=clock)
    sign_in_flow = providers.Resource(open_sign_in_flow, settings=settings, clock=clock)


def container_for(settings: Settings) -> Container:
    """A container fed these settings."""
    return Container(settings=settings)
