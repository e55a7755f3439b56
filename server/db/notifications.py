"""One LISTEN connection per server, routing PostgreSQL notifications to whoever waits for them.

Lease releases, newly scheduled steps, runs finished under their workers and new events of followed runs are announced with NOTIFY on channels of the
schema; every server listens on one dedicated autocommit connection (not a pooled one) and calls
the handlers registered for each channel. When the connection drops, it reconnects with backoff
and calls every on_reconnect handler, since notifications may have been missed meanwhile: waiters
look again then, and poll at a bounded interval until the connection is back. Any other error
ends run(); the server runs it under its supervisor (core/supervisor.py), whose restart is a
reconnect like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger("workflowstate.server.notifications")


def lease_channel(schema: str) -> str:
    """The channel of a schema's lease releases (payload: the key)."""
    return "workflowstate_leases_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


def tasks_channel(schema: str) -> str:
    """The channel of a schema's newly scheduled steps (payload: the rpc_name)."""
    # Derived the same way by the trigger function announce_scheduled_step, from TG_TABLE_SCHEMA.
    return "workflowstate_tasks_" + hashlib.md5(schema.encode()).hexdigest()[:16]


def finished_runs_channel(schema: str) -> str:
    """The channel of a schema's runs that finished while workers held attempts of them (payload:
    the run_id)."""
    # Derived the same way by the trigger function announce_finished_run, from TG_TABLE_SCHEMA.
    return "workflowstate_finished_runs_" + hashlib.md5(schema.encode()).hexdigest()[:16]


def run_events_channel(schema: str) -> str:
    """The channel of a schema's new run events, for runs some server follows (payload: the run_id and
    the id of the transaction that wrote the events, separated by a space)."""
    # Derived the same way by the run-event trigger (record_run_event), from TG_TABLE_SCHEMA.
    return "workflowstate_run_events_" + hashlib.md5(schema.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Subscription:
    on_notice: Callable[[str], None]
    on_reconnect: Callable[[], None]


class Notifications:
    """The server's LISTEN connection."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._subscriptions: dict[str, _Subscription] = {}
        self.backend_pid: int | None = None
        """The PostgreSQL backend pid of the connection while it listens (None while it does not)."""

    def subscribe(self, channel: str, on_notice: Callable[[str], None], on_reconnect: Callable[[], None]) -> None:
        """Call on_notice(payload) for every notification on channel (register before run())."""
        self._subscriptions[channel] = _Subscription(on_notice, on_reconnect)

    async def run(self) -> None:
        """Listen forever; reconnect when the connection drops (raise on anything else)."""
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._database_url, autocommit=True) as conn:
                    for channel in self._subscriptions:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.backend_pid = conn.info.backend_pid
                    for subscription in self._subscriptions.values():
                        subscription.on_reconnect()
                    backoff = 0.1
                    # Closed explicitly: the generator holds the connection's lock until it
                    # ends, and closing the connection while it is suspended would wait forever.
                    notices = conn.notifies()
                    try:
                        async for notice in notices:
                            subscribed = self._subscriptions.get(notice.channel)
                            if subscribed:
                                subscribed.on_notice(notice.payload)
                    finally:
                        self.backend_pid = None
                        await notices.aclose()
            except (psycopg.OperationalError, OSError) as err:
                log.warning("lost the LISTEN connection; waiters poll until it is back", extra={"reason": str(err)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


__all__ = ["Notifications", "finished_runs_channel", "lease_channel", "run_events_channel", "tasks_channel"]
