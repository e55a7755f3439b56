"""``AsyncWorker``: runs async step handlers as tasks of the event loop, fed by StreamStepTasks.

:meth:`AsyncWorker.run` opens the streams and reads them; each task runs in
its own asyncio task; one more task sends heartbeats and resends when the
protocol asks. Every decision is ``WorkerProtocol``'s.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from workflowstate import v1 as pb

from ._identity import host_and_pid
from ._lease_async import _is_set_within
from ._reconnect import Backoff, OutageLog
from ._request_queue import until_none_merged_async
from ._signals import signals_to_loop
from ._types import StepTask
from ._worker_protocol import (
    CANCEL_WAIT,
    RECONNECT_POLICY,
    RUNNING_WHILE_AWAY,
    NonRetryableError,
    TaskCancelled,
    WorkerProtocol,
    WorkerSettings,
    log,
    merge_requests,
    resubscribe_delay,
)

if TYPE_CHECKING:
    from ._async import AsyncWorkflowStateClient


class AsyncWorker:
    """Runs the steps scheduled for its async handlers, with the asyncio client::

        async def charge(task: StepTask) -> dict:
            return {"charged": task.data["amount"]}

        worker = AsyncWorker(client, {"chargeCard": charge}, max_in_flight=4)
        runner = asyncio.create_task(worker.run())
        ...
        await worker.stop()

    The same behaviour as :class:`Worker`: each handler gets a
    :class:`StepTask` and returns the step's result; an exception fails the
    attempt (retried while retries remain), :class:`NonRetryableError` fails
    the step at once; at most ``max_in_flight`` handlers run at a time, each
    as an asyncio task; heartbeats every third of ``task_lease``; reconnects
    with backoff, keeping the results of tasks that finished in between.
    """

    def __init__(
        self,
        client: AsyncWorkflowStateClient,
        handlers: Mapping[str, Callable[[StepTask], Awaitable[Any]]],
        *,
        max_in_flight: int = 10,
        task_lease: timedelta = timedelta(seconds=30),
        worker_id: str | None = None,
    ) -> None:
        """Prepare a worker; nothing is sent before :meth:`run`. The arguments are :class:`Worker`'s."""
        self._stub = client._stub
        self._handlers = dict(handlers)
        settings = WorkerSettings(
            worker_id or host_and_pid(), tuple(self._handlers), max_in_flight, task_lease
        )
        self._protocol = WorkerProtocol(settings, on_cancel=self._cancel_handler)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._changed = asyncio.Event()  # set after every protocol change
        self._requests: asyncio.Queue[pb.StreamStepTasksRequest | None] | None = None
        self._call: grpc.aio.StreamStreamCall[Any, Any] | None = None
        self._half_closed = False
        self._abandoned = False
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._handler_of: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._started = False
        self.stopping = asyncio.Event()
        """Set once :meth:`stop` was called (handlers may check it to cut long work short)."""
        self._finished = asyncio.Event()

    @property
    def worker_id(self) -> str:
        """The name the worker subscribes with."""
        return self._protocol.settings.worker_id

    async def run(self) -> None:
        """Take and run tasks until :meth:`stop`; raise the client's error if the server refuses the worker.

        A worker runs once. UNAVAILABLE and DEADLINE_EXCEEDED make it
        subscribe again, as :meth:`Worker.run`. Cancelling it cancels the
        stream and the running handlers (their attempts are failed as lost).
        In the main thread, SIGINT and SIGTERM stop it as they stop
        :meth:`Worker.run`; a third ends the process, even while a
        handler blocks the event loop.
        """
        if self._started:
            raise RuntimeError("an AsyncWorker runs once; make a new one")
        self._started = True
        with signals_to_loop(f"worker {self.worker_id}", self.stopping.is_set, self._ask_to_stop, self._abandon):
            await self._run()

    async def _run(self) -> None:
        ticker = asyncio.create_task(self._tick(), name=f"worker-heartbeat {self.worker_id}")
        try:
            await self._serve()
            # Stopping: let the handlers finish (stop() cancels them after its timeout).
            if self._handler_tasks:
                await asyncio.wait(set(self._handler_tasks))
        finally:
            ticker.cancel()
            for task in self._handler_tasks:
                task.cancel()
            self._protocol.stream_abandoned()
            self._finished.set()

    async def _serve(self) -> None:
        backoff = Backoff(RECONNECT_POLICY)
        outage = OutageLog(log, f"worker {self.worker_id}", RUNNING_WHILE_AWAY)
        while not self._protocol.stopping:
            requests: asyncio.Queue[pb.StreamStepTasksRequest | None] = asyncio.Queue()
            for message in self._protocol.connect():
                requests.put_nowait(message)
            self._requests, self._half_closed = requests, False
            call = self._call = self._stub.StreamStepTasks(until_none_merged_async(requests, self._merge))
            self._changed.set()
            started = time.monotonic()
            error: grpc.RpcError | None = None
            try:
                async for response in call:
                    backoff.progress()
                    outage.connected()
                    tasks, messages = self._protocol.on_response(response)
                    self._send(messages)
                    for task in tasks:
                        handler_task = asyncio.create_task(self._execute(task), name=f"step {task.step_id}")
                        self._handler_tasks.add(handler_task)
                        handler_task.add_done_callback(self._handler_tasks.discard)
                        key = (task.step_id, task.attempt)
                        self._handler_of[key] = handler_task
                        handler_task.add_done_callback(functools.partial(self._forget_handler, key))
            except grpc.RpcError as err:
                error = err
            except asyncio.CancelledError:
                # grpc.aio raises it for a call cancelled by stop() as well as for our own cancellation.
                if not self._abandoned:
                    raise
            finally:
                self._protocol.disconnected()
                self._requests = self._call = None
                requests.put_nowait(None)
                call.cancel()
                self._changed.set()
            if self._protocol.stopping:
                return
            delay = resubscribe_delay(error, backoff, outage, time.monotonic() - started)
            await _is_set_within(self.stopping, delay)

    async def _execute(self, task: StepTask) -> None:
        handler = self._handlers.get(task.rpc_name)
        try:
            async with self._slots:
                if handler is None:
                    raise NonRetryableError(f"this worker has no handler for {task.rpc_name!r}")
                result = await handler(task)
        except asyncio.CancelledError:
            if self._abandoned or not task.cancelled.is_set():
                raise  # abandoned: the server fails the attempt as lost
            # Cancelled by the server (before or while the handler ran): report it, which the
            # server refuses (the run is over) and which frees the task's slot there.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            self._send(self._protocol.failed(task, TaskCancelled(f"cancelled: {task.cancelled.reason}")))
        except Exception as exc:
            self._send(self._protocol.failed(task, exc))
        else:
            self._send(self._protocol.succeeded(task, result))

    def _forget_handler(self, key: tuple[str, int], _finished: asyncio.Task[None]) -> None:
        """A handler task ended: it is no longer the one to cancel for its step attempt."""
        self._handler_of.pop(key, None)

    def _cancel_handler(self, task: StepTask) -> None:
        """The server cancelled ``task``: cancel its handler (its ``cancelled`` is set already)."""
        handler_task = self._handler_of.get((task.step_id, task.attempt))
        if handler_task is not None:
            handler_task.cancel()

    async def _tick(self) -> None:
        while True:
            self._changed.clear()
            await _is_set_within(self._changed, self._protocol.seconds_to_next_tick())
            self._send(self._protocol.tick())

    def _send(self, messages: list[pb.StreamStepTasksRequest]) -> None:
        """Queue ``messages`` on the current stream, then half-close it when the worker is done."""
        if self._requests is not None and not self._half_closed:
            for message in messages:
                self._requests.put_nowait(message)
            if self._protocol.done:
                self._requests.put_nowait(None)  # the server then ends the stream with OK
                self._half_closed = True
        self._changed.set()

    def _merge(self, requests: list[pb.StreamStepTasksRequest]) -> list[pb.StreamStepTasksRequest]:
        """Messages queued together go in fewer (several reports in one, once the server takes that)."""
        return merge_requests(requests, bulk=self._protocol.server_bulk)

    async def stop(self, timeout: timedelta | None = timedelta(seconds=30)) -> bool:
        """Stop taking tasks, let the running handlers finish and report, then end the stream.

        Returns True when the worker stopped cleanly within ``timeout``
        (``None``: wait as long as it takes). After the timeout the stream and
        the handlers still running are cancelled: the server fails their
        attempts as lost, and each step is retried if it has retries left,
        else fails.
        """
        self._ask_to_stop()
        if not self._started:
            return True
        if await _is_set_within(self._finished, None if timeout is None else timeout.total_seconds()):
            return True
        self._abandon()
        await _is_set_within(self._finished, CANCEL_WAIT)
        return False

    def _ask_to_stop(self) -> None:
        self._send(self._protocol.stop())
        self.stopping.set()  # after the drain is queued: from here on, no new task starts

    def _abandon(self) -> None:
        self._abandoned = True
        if self._call is not None:
            self._call.cancel()
        for task in self._handler_tasks:
            task.cancel()
