"""The simulator's ASGI application: all 55 Pixxel operations plus the signed file downloads.

``create_app(state)`` builds it around a :class:`~.state.SimulatorState`. Layers, outermost first:
request recording (so tests see every request, faulted ones included), fault injection
(``state.faults``), then the routes. FastAPI's own request validation (its 422 answers) is never
reached: routes read the raw request and check it against the spec's rules, answering 400 with the
Pixxel error envelope; unknown paths and methods get the envelope too.

``uvicorn airflow_provider_pixxel.simulator.app:app`` serves a default state built on first use.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from airflow_provider_pixxel import __version__
from airflow_provider_pixxel.simulator import (
    routes_aois,
    routes_catalogs,
    routes_dexter,
    routes_orders,
    routes_visualizations,
    routes_workspace,
)
from airflow_provider_pixxel.simulator.faults import FaultMiddleware
from airflow_provider_pixxel.simulator.routing import RECORDED_BODY_KEY
from airflow_provider_pixxel.simulator.signed_urls import files_router
from airflow_provider_pixxel.simulator.state import RecordedRequest, SimulatorError, SimulatorState

_ROUTE_MODULES = (
    routes_workspace,
    routes_aois,
    routes_visualizations,
    routes_dexter,
    routes_orders,
    routes_catalogs,
)


#: Per-request figures (``SimulatorState.request_stats``) for benchmarks, whose simulator runs in a
#: process of its own; ``?since=<epoch seconds>`` keeps the later ones. Not an API operation: never
#: recorded, never faulted, no key needed (it lists methods and paths, no query strings or bodies).
STATS_PATH = "/_simulator/requests"


class RecordingMiddleware:
    """Records method, path, query, final status, time, client and JSON body of every HTTP request."""

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = {}
        for pair in scope.get("query_string", b"").decode("latin-1").split("&"):
            if pair:
                name, _, value = pair.partition("=")
                query[_unquote(name)] = _unquote(value)
        if scope["path"] == STATS_PATH:
            await self._send_stats(query, send)
            return
        client = scope.get("client")
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=query,
            status=None,
            time=self.state.now(),
            client=f"{client[0]}:{client[1]}" if client else None,
            received_at=time.time(),
        )
        # Recorded before the app runs: a reset or a cut answer (faults) must not make a request
        # that reached the server look unsent to a test checking right after the client saw it fail.
        self.state.record_request(record)

        async def send_and_note(message: Any) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                record.body = scope.get(RECORDED_BODY_KEY)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            record.body = scope.get(RECORDED_BODY_KEY)

    async def _send_stats(self, query: dict[str, str], send: Any) -> None:
        try:
            since = float(query.get("since") or 0.0)
        except ValueError:
            since = -1.0
        if not since >= 0:  # also refuses nan
            problem = SimulatorError(400, "since: a number of epoch seconds, 0 or more")
            status, answer = 400, problem.envelope()
        else:
            status, answer = 200, self.state.request_stats(since)
        content = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _unquote(text: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(text)


def create_app(state: SimulatorState) -> FastAPI:
    """The simulator application serving ``state``."""
    app = FastAPI(
        title="Pixxel API simulator",
        version=__version__,
        description="Local stand-in for api.pixxel.space (airflow-provider-pixxel)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.simulator = state

    for module in _ROUTE_MODULES:
        module.register(app.router, state)  # type: ignore[attr-defined]
    app.include_router(files_router(state.files, state.signer))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(error, "headers", None) or {})
        code = None
        if error.status_code == 405:
            allowed = _methods_of_path(app, request)
            message = f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)}"
            # Starlette stops at the first route of the path, which holds one of its methods.
            headers["Allow"] = ", ".join(allowed)
            code = "method_not_allowed"
        elif error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        else:
            message = str(error.detail)
        return JSONResponse(
            SimulatorError(error.status_code, message, code=code).envelope(),
            status_code=error.status_code,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return JSONResponse(
            SimulatorError(400, "; ".join(problems), details={"problems": problems}).envelope(),
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            SimulatorError(500, f"simulator error: {type(error).__name__}: {error}").envelope(),
            status_code=500,
        )

    app.add_middleware(FaultMiddleware, injector=state.faults)
    app.add_middleware(RecordingMiddleware, state=state)
    return app


def _methods_of_path(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves on the request's path (what a 405's ``Allow`` must list)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


_default_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``app``: a simulator with default settings, built on first access (for ``uvicorn ...:app``)."""
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = create_app(SimulatorState())
        return _default_app
    raise AttributeError(name)


__all__ = ["STATS_PATH", "RecordingMiddleware", "create_app"]
