"""Tell every open stream of a kind that the server is stopping."""

from __future__ import annotations

import asyncio


class ShutdownNotifier:
    """Lets every open stream of a kind hear that the server is stopping."""

    def __init__(self) -> None:
        self._shutdown_hooks: set[asyncio.Event] = set()

    def on_shutdown(self) -> asyncio.Event:
        """An event set when the server stops; forget it with forget_shutdown_hook when done."""
        event = asyncio.Event()
        self._shutdown_hooks.add(event)
        return event

    def forget_shutdown_hook(self, event: asyncio.Event) -> None:
        self._shutdown_hooks.discard(event)

    def shutdown(self) -> None:
        """Tell every stream the server is stopping."""
        for event in self._shutdown_hooks:
            event.set()
