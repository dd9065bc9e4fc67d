"""The API's routes, one module per area."""

from __future__ import annotations

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from parkstream.api.routes import ops

    app.include_router(ops.router)
