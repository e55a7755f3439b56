"""The dashboard's way into the gRPC API: a client of the server's own address, with the user's token,
so the API's checks (roles, validation) are the only ones and apply to the dashboard as to anyone."""

from __future__ import annotations

from aiohttp import web

from workflowstate.client import AsyncWorkflowStateClient

from .settings import WebSettings

CLIENT = web.RequestKey("client", AsyncWorkflowStateClient)
"""The client a request acts with, set by the session middleware (app.py): its login's, or the one
of a dashboard without logins."""


def client_for(settings: WebSettings, token: str | None) -> AsyncWorkflowStateClient:
    """A client of the server's own API, with the user's token (or, without logins, the internal
    socket's secret, if any). Batching off: a page's few calls gain nothing from it."""
    return AsyncWorkflowStateClient(settings.grpc_target, token=token or settings.internal_token, batching=False)
