"""The HTTP application: REST API under /v1, OpenAPI at /docs, and (by default) the Graph API sandbox.

The app is a thin layer: routes validate input, call the service, and shape the answer. Delivery runs
in a worker thread started with the app (``metabridge serve``) or in separate ``metabridge worker``
processes (``serve --no-worker``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from metabridge import __version__
from metabridge.api.auth import require_api_key
from metabridge.api.errors import JSONBytesResponse, install_error_handlers
from metabridge.api.routes import ad_accounts, audiences, catalogs, connections, events, jobs
from metabridge.sandbox import create_sandbox_app
from metabridge.sandbox.state import SandboxState
from metabridge.service import SANDBOX_MOUNT, Service

log = logging.getLogger("metabridge.api")


def create_app(service: Service, *, run_worker: bool = False, sandbox: SandboxState | None = None) -> FastAPI:
    """The API around ``service``; ``sandbox`` mounts a Graph API sandbox at ``/graph``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if run_worker:
            from metabridge.delivery.runner import start_worker_thread

            thread = start_worker_thread(service, stop)
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=service.settings.lease_seconds)

    app = FastAPI(
        title="metabridge",
        version=__version__,
        description="Deliver first-party events, audiences and catalogs to Meta. Every /v1 call needs "
        "`Authorization: Bearer <api key>`.",
        lifespan=lifespan,
        default_response_class=JSONBytesResponse,
    )
    app.state.service = service
    install_error_handlers(app)
    guarded = [Depends(require_api_key)]
    app.include_router(connections.router, dependencies=guarded)
    app.include_router(events.router, dependencies=guarded)
    app.include_router(audiences.router, dependencies=guarded)
    app.include_router(ad_accounts.router, dependencies=guarded)
    app.include_router(catalogs.router, dependencies=guarded)
    app.include_router(jobs.router, dependencies=guarded)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: no key needed."""
        return {"status": "ok", "version": __version__}

    if sandbox is not None:
        app.mount(SANDBOX_MOUNT, create_sandbox_app(sandbox))
    return app
