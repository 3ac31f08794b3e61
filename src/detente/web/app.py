"""The node's ASGI application: operator API, federation API, stream, and their lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from detente import __version__
from detente.node.runtime import Node, own_ratification
from detente.web import api, api_translations, api_workflow, console, errors, federation, record, record_api, stream
from detente.web.limits import RequestLimits
from detente.web.stack import TELEMETRY_OFF


def create_app(node: Node, *, start_background: bool = True) -> FastAPI:
    """Build the application serving `node`; its lifespan starts and stops the node's work."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        node.serve_writes()
        if start_background:
            await node.start()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(
        title=f"Détente node {node.ctx.party}",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
        telemetry=TELEMETRY_OFF,
    )
    app.state.node = node
    node.ratification = own_ratification(node.ctx)
    errors.install(app)
    app.include_router(api.router)
    app.include_router(api_translations.router)  # certified translations and their reviews
    app.include_router(federation.router)
    app.include_router(record.router)
    app.include_router(record_api.router)
    app.include_router(stream.router)
    api_workflow.install(app)  # cases, actions, consultations, codebook, evidence; body schemas in OpenAPI
    console.install(app, node)  # the web console at / (its session cookie also works on the API)
    app.add_middleware(RequestLimits)
    app.add_middleware(federation.RatificationHeader, signature=node.ratification)
    return app
