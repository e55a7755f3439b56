"""The server's event loop: uvloop when it is installed (the server extras install it)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from workflowstate.server.ops import event_loop


def test_the_server_runs_on_uvloop_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert event_loop.run(loop_type()) is uvloop.Loop


def test_without_uvloop_the_server_runs_on_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import uvloop` raise ImportError, as on a platform without it.
    monkeypatch.setitem(sys.modules, "uvloop", None)

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert not event_loop.run(loop_type()).__module__.startswith("uvloop")
