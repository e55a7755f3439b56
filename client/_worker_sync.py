"""``Worker``: runs step handlers of the blocking client in daemon threads, fed by StreamStepTasks.

The caller's thread (in :meth:`Worker.run`) opens the streams and reads them;
each handler runs in a daemon thread of its own, at most ``max_in_flight`` at
a time; one more thread sends heartbeats and resends when the protocol asks.
Every decision is ``WorkerProtocol``'s, called under one lock.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import grpc

from workflowstate import v1 as pb

from ._identity import host_and_pid
from ._reconnect import Backoff, OutageLog
from ._request_queue import until_none_merged
from ._signals import signals_to_thread, two_step_stop
from ._types import StepTask
from ._worker_protocol import (
    CANCEL_WAIT,
    RECONNECT_POLICY,
    RUNNING_WHILE_AWAY,
    NonRetryableError,
    WorkerProtocol,
    WorkerSettings,
    log,
    merge_requests,
    resubscribe_delay,
)

if TYPE_CHECKING:
    from ._sync import WorkflowStateClient

class Worker:
    """Runs the steps scheduled for its handlers, with the blocking client::

        def charge(task: StepTask) -> dict:
            return {"charged": task.data["amount"]}

        worker = Worker(client, {"chargeCard": charge}, max_in_flight=4)
        threading.Thread(target=worker.run).start()
        ...
        worker.stop()

    Each handler gets a :class:`StepTask` and returns the step's result (any
    JSON value). An exception fails the attempt, which the server retries
    while the step has retries left; :class:`NonRetryableError` fails the step
    at once. At most ``max_in_flight`` handlers run at a time, each in a
    daemon thread of its own (a handler that never returns cannot keep the
    process alive once the worker was told to stop at once). Heartbeats
    (every third of ``task_lease``) keep the tasks the worker's; when the server goes away the worker
    subscribes again, with backoff, and sends the results of tasks that
    finished in between.
    """

    def __init__(
        self,
        client: WorkflowStateClient,
        handlers: Mapping[str, Callable[[StepTask], Any]],
        *,
        max_in_flight: int = 10,
        task_lease: timedelta = timedelta(seconds=30),
        worker_id: str | None = None,
    ) -> None:
        """Prepare a worker; nothing is sent before :meth:`run`.

        Args:
            client: The client whose channel the worker's streams use.
            handlers: The function of each rpc name the worker serves.
            max_in_flight: The most handlers running at once (1 to 1000).
            task_lease: How long a task stays the worker's when the server
                hears nothing from it (the server's limit is 10 minutes).
            worker_id: Names the worker on the steps it runs; by default
                ``"<hostname>:<pid>"``.
        """
        self._stub = client._stub
        self._handlers = dict(handlers)
        settings = WorkerSettings(
            worker_id or host_and_pid(), tuple(self._handlers), max_in_flight, task_lease
        )
        self._protocol = WorkerProtocol(settings)
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_in_flight)
        self._changed = threading.Condition(self._lock)  # notified after every protocol change
        self._requests: queue.Queue[pb.StreamStepTasksRequest | None] | None = None
        self._call: Any = None  # the current stream, to cancel it
        self._half_closed = False
        self._abandoned = False
        self._started = False
        self._run_thread: int | None = None
        self.stopping = threading.Event()
        """Set once :meth:`stop` was called (handlers may check it to cut long work short)."""
        self._finished = threading.Event()

    @property
    def worker_id(self) -> str:
        """The name the worker subscribes with."""
        return self._protocol.settings.worker_id

    def run(self) -> None:
        """Take and run tasks until :meth:`stop`; raise the client's error if the server refuses the worker.

        A worker runs once. UNAVAILABLE (the server went away or shuts down)
        and DEADLINE_EXCEEDED (the server lost the worker) are not errors: the
        worker subscribes again. Run in the main thread, it turns SIGINT
        (Ctrl-C) and SIGTERM into :meth:`stop` without a timeout: the running
        handlers finish and report, then run() returns; a second signal stops
        at once, as stop() does after its timeout. The previous signal
        handlers are back when run() returns; a third signal ends the process.
        """
        with self._lock:
            if self._started:
                raise RuntimeError("a Worker runs once; make a new one")
            self._started = True
            self._run_thread = threading.get_ident()
        on_signal = two_step_stop(f"worker {self.worker_id}", self.stopping.is_set, self._ask_to_stop, self._abandon)
        with signals_to_thread(on_signal, f"worker-signals {self.worker_id}"):
            self._run()

    def _run(self) -> None:
        settings = self._protocol.settings
        ticker = threading.Thread(target=self._tick, name=f"worker-heartbeat {settings.worker_id}", daemon=True)
        ticker.start()
        try:
            self._serve()
            with self._lock:
                # Stopping: let the handlers finish, unless stop() gave up on them.
                while self._protocol.running and not self._abandoned:
                    self._changed.wait()
        finally:
            with self._lock:
                self._abandoned = True  # also ends the ticker
                self._protocol.stream_abandoned()
                self._changed.notify_all()
            ticker.join()
            self._finished.set()

    def _serve(self) -> None:
        backoff = Backoff(RECONNECT_POLICY)
        outage = OutageLog(log, f"worker {self.worker_id}", RUNNING_WHILE_AWAY)
        while True:
            requests: queue.Queue[pb.StreamStepTasksRequest | None] = queue.Queue()
            with self._lock:
                if self._protocol.stopping:
                    return  # no new stream for a stopping worker
                for message in self._protocol.connect():
                    requests.put(message)
                self._requests, self._half_closed = requests, False
                call = self._call = self._stub.StreamStepTasks(until_none_merged(requests, self._merge))
                self._changed.notify_all()
            started = time.monotonic()
            error: grpc.RpcError | None = None
            try:
                for response in call:
                    backoff.progress()
                    outage.connected()
                    with self._lock:
                        tasks, messages = self._protocol.on_response(response)
                        self._send(messages)
                    for task in tasks:
                        self._start_handler(task)
            except grpc.RpcError as err:
                error = err
            finally:
                with self._lock:
                    self._protocol.disconnected()
                    self._requests = self._call = None
                    self._changed.notify_all()
                requests.put(None)  # ends gRPC's reading of the generator
                call.cancel()
            if self._protocol.stopping:
                return
            delay = resubscribe_delay(error, backoff, outage, time.monotonic() - started)
            self.stopping.wait(delay)

    def _start_handler(self, task: StepTask) -> None:
        # A daemon thread, not a pool's: the interpreter joins a pool's threads when it exits, so
        # a handler stuck in one would keep a process that was told twice to stop alive.
        name = f"worker {self.worker_id} step {task.step_name}"
        threading.Thread(target=self._execute, args=(task,), name=name, daemon=True).start()

    def _execute(self, task: StepTask) -> None:
        handler = self._handlers.get(task.rpc_name)
        try:
            with self._slots:
                if handler is None:
                    raise NonRetryableError(f"this worker has no handler for {task.rpc_name!r}")
                result = handler(task)
        except BaseException as exc:
            with self._lock:
                self._send(self._protocol.failed(task, exc))
            if not isinstance(exc, Exception):
                raise
        else:
            with self._lock:
                self._send(self._protocol.succeeded(task, result))

    def _tick(self) -> None:
        with self._lock:
            while not self._abandoned:
                self._changed.wait(self._protocol.seconds_to_next_tick())
                self._send(self._protocol.tick())

    def _send(self, messages: list[pb.StreamStepTasksRequest]) -> None:
        """Queue ``messages`` on the current stream, then half-close it when the worker is done.

        Called under the lock, after every change of the protocol.
        """
        if self._requests is not None and not self._half_closed:
            for message in messages:
                self._requests.put(message)
            if self._protocol.done:
                self._requests.put(None)  # the server then ends the stream with OK
                self._half_closed = True
        self._changed.notify_all()

    def _merge(self, requests: list[pb.StreamStepTasksRequest]) -> list[pb.StreamStepTasksRequest]:
        """Messages queued together go in fewer (several reports in one, once the server takes that).

        Called in gRPC's sending thread: it reads one flag of the protocol, set before any report
        of the stream can be merged (the subscribed answer comes first)."""
        return merge_requests(requests, bulk=self._protocol.server_bulk)

    def stop(self, timeout: timedelta | None = timedelta(seconds=30)) -> bool:
        """Stop taking tasks, let the running handlers finish and report, then end the stream.

        Safe from any thread. Returns True when the worker stopped cleanly
        within ``timeout`` (``None``: wait as long as it takes). After the
        timeout the stream is cancelled and handlers still running are
        abandoned: the server fails their attempts as lost, and each step is
        retried if it has retries left, else fails.
        Called from the thread in :meth:`run` (a signal handler), it only asks
        for the stop and returns False.
        """
        self._ask_to_stop()
        if not self._started:
            return True
        if threading.get_ident() == self._run_thread:
            return False
        if self._finished.wait(None if timeout is None else timeout.total_seconds()):
            return True
        self._abandon()
        self._finished.wait(CANCEL_WAIT)
        return False

    def _ask_to_stop(self) -> None:
        with self._lock:
            self._send(self._protocol.stop())
            # Set after the drain is queued: from here on, no new task starts.
            self.stopping.set()

    def _abandon(self) -> None:
        # The handlers still running are left to finish in their threads; their results are not sent.
        with self._lock:
            self._abandoned = True
            if self._call is not None:
                self._call.cancel()
            self._changed.notify_all()
