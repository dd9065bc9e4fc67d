"""The API's routes, one module per area."""

from __future__ import annotations

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from parkstream.api.routes import ops, queries, registry, reservations

    app.include_router(ops.router)
    app.include_router(registry.router)
    app.include_router(queries.router)
    app.include_router(reservations.router)

    from parkstream.api import dashboard

    app.include_router(dashboard.router)
