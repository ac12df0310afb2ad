"""The API gateway application: conda-store's REST API over the event store and read models.

``create_app`` wires the lifespan (event store pool, artifact store, auth config) and mounts one
router per resource. Tests pass an existing ``EventStore`` to share the fixture's database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    local_signing_key,
    open_artifact_store,
)
from shared.auth import DummyAuthenticator, TokenCodec
from shared.auth_store import jwt_secret
from shared.deployment_settings import load_deployment_defaults
from shared.eventstore import STORE_UNAVAILABLE, EventStore, EventTooLarge
from shared.http_edge import EdgeGuard
from shared.projections.store import ensure_read_model
from shared.public_url import PublicUrlMiddleware
from shared.settings import Settings
from shared.webhooks import RetryPolicy

from .envelopes import (
    APIError,
    api_error_handler,
    http_error_handler,
    store_unavailable_handler,
    too_large_handler,
)
from .middleware import QuerySlashMiddleware
from .names import refuse_long_path_names
from .queries.namespaces import default_namespace
from .routes import (
    artifacts,
    auth,
    builds,
    diff,
    environments,
    events,
    meta,
    metrics,
    namespaces,
    packages,
    specification,
    ui_proxy,
    updates,
    webhooks,
)
from .routes import (
    settings as setting_routes,
)
from .startup import ensure_namespace
from .state import ApiState, oauth_from_settings
from .update_schedule import UpdateSchedule
from .watcher import PathWatcher
from .webhooks.dispatcher import Dispatcher

VERSION = meta.VERSION
POOL_SIZE = 20


def _start_watching(
    settings: Settings, store: EventStore, runtime_defaults: Mapping[str, Any]
) -> asyncio.Task[None] | None:
    """conda-store's watch_paths scanner, when paths are set (it leads in one process)."""
    paths = settings.watch_path_list
    if not paths:
        return None
    watcher = PathWatcher(store, paths, runtime_defaults)
    return asyncio.create_task(
        watcher.run(settings.watch_interval_s, settings.leader_lease_s), name="watch-paths"
    )


def _start_schedule(settings: Settings, store: EventStore) -> asyncio.Task[None] | None:
    """The daily update check (it leads in one process); off with an interval of 0."""
    if settings.update_check_interval_s <= 0:
        return None
    schedule = UpdateSchedule(store, settings.update_check_interval_s)
    return asyncio.create_task(schedule.run(settings.leader_lease_s), name="update-check")


def _start_webhooks(settings: Settings, store: EventStore) -> asyncio.Task[None] | None:
    """The webhook dispatcher (it leads in one API process; the others stand by)."""
    if not settings.webhooks_enabled:
        return None
    policy = RetryPolicy(
        settings.webhook_retry_base_s,
        settings.webhook_retry_cap_s,
        settings.webhook_failing_after,
    )
    dispatcher = Dispatcher(
        store, jwt_secret(settings.secret, settings.data_dir), policy, settings.leader_lease_s
    )
    return asyncio.create_task(dispatcher.run(), name="webhooks")


def create_app(
    settings: Settings,
    *,
    store: EventStore | None = None,
    artifact_store: ArtifactStore | None = None,
    runtime_defaults: Mapping[str, Any] | None = None,
) -> FastAPI:
    """``runtime_defaults`` are the runtime settings' deploy-time defaults; None reads them
    from the environment now, so a bad one stops the service before it serves anything."""
    if runtime_defaults is None:
        runtime_defaults = load_deployment_defaults(os.environ)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        if store is None:
            if not settings.database_url:
                raise RuntimeError("CONDA_STORE_DATABASE_URL is not set")
            # every connection opened before the first request: opening one (and its type
            # introspection) inside a request was the slowest read under load
            es = await EventStore.connect(
                settings.database_url, min_size=POOL_SIZE, max_size=POOL_SIZE
            )
        else:
            es = store
        await ensure_read_model(es.pool)
        await ensure_namespace(
            es, await default_namespace(es.pool, runtime_defaults.get("default_namespace"))
        )
        signing = (
            None
            if settings.artifact_backend == "s3"
            else local_signing_key(settings.secret, settings.data_dir)
        )
        arts = artifact_store or await open_artifact_store(settings, secret=signing)
        if isinstance(arts, LocalArtifactStore):
            signing = arts._secret
        app.state.api = ApiState(
            settings=settings,
            store=es,
            artifacts=arts,
            codec=TokenCodec(
                jwt_secret(settings.secret, settings.data_dir),
                settings.jwt_algorithm,
                dict(settings.predefined_tokens),
            ),
            dummy=DummyAuthenticator(settings.dummy_password),
            oauth=oauth_from_settings(settings),
            signing_key=signing,
            runtime_defaults=dict(runtime_defaults),
        )
        background = [
            task
            for task in (
                _start_watching(settings, es, runtime_defaults),
                _start_schedule(settings, es),
                _start_webhooks(settings, es),
            )
            if task is not None
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await app.state.api.close()
            if own_store:
                await es.close()

    app = FastAPI(
        title="conda-store",
        version=VERSION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_long_path_names)],
    )
    app.add_exception_handler(APIError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(EventTooLarge, too_large_handler)
    for unavailable in STORE_UNAVAILABLE:
        app.add_exception_handler(unavailable, store_unavailable_handler)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "api"}

    for module in (
        meta,
        auth,
        namespaces,
        environments,
        updates,
        specification,
        builds,
        diff,
        artifacts,
        setting_routes,
        packages,
        events,
        webhooks,
        metrics,
        ui_proxy,  # last: every path the API does not answer is a ui page
    ):
        app.include_router(module.router)
    app.add_middleware(QuerySlashMiddleware)
    # everything inside sees the visitor's URL (scheme, host, prefix)
    app.add_middleware(
        PublicUrlMiddleware, url_prefix=settings.url_prefix, external_url=settings.external_url
    )
    # outermost: refuses on the request as sent, before the URL prefix is rewritten
    app.add_middleware(EdgeGuard, max_body_bytes=settings.max_body_bytes)
    return app
