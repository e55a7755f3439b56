"""One of two server replicas SIGKILLed under load: what it acknowledged is intact, its leases are
granted again through the other within their ttl (with a greater fencing token, the old one refused),
and its workers' tasks are swept by the other and retried there.

Load: client threads doing step lifecycles through both servers in turn (tests/support/faults_load.py).
On the doomed server: three lease holders (with waiters for the same keys on the survivor) and a
worker holding three tasks in handlers that never return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import grpc
import psycopg
import pytest
from support.faults_history import attempts_by_step, history_problems
from support.faults_load import LifecycleLoad, acknowledged_state_problems
from support.remote_mode import wait_for_steps
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate.client import FailedPrecondition, StepStatus, StepTask, Worker, WorkflowStateClient

TTL = 3.0
LEASES = 3
TASKS = 3
WAIT = 30.0
SERVER_ARGS = ("--dispatch-poll-interval", "0.2", "--lease-poll-interval", "0.2")


@contextmanager
def running(worker: Worker, stop_timeout: float) -> Iterator[None]:
    thread = threading.Thread(target=worker.run, name=f"run {worker.worker_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop(timedelta(seconds=stop_timeout))
        thread.join(stop_timeout + 5)


def test_a_killed_replica_loses_nothing_acknowledged_and_the_other_takes_over_its_leases_and_tasks(
    start_server: Callable[..., ServerProcess], db: psycopg.Connection, unique: str
) -> None:
    doomed = start_server(*SERVER_ARGS)
    schema = doomed.schema
    survivor = start_server(*SERVER_ARGS, schema=schema)
    keys = [f"key-{unique}-{i}" for i in range(LEASES)]
    worker_rpc = f"work-{unique}"
    handlers_may_return = threading.Event()

    def never_returns(task: StepTask) -> str:
        handlers_may_return.wait(WAIT)
        return "too late"

    with ExitStack() as stack:
        to_doomed = stack.enter_context(WorkflowStateClient(doomed.target, retry=False, timeout=timedelta(seconds=10)))
        to_survivor = stack.enter_context(WorkflowStateClient(survivor.target, retry=False, timeout=timedelta(seconds=10)))
        load = LifecycleLoad({"doomed": to_doomed, "survivor": to_survivor}, f"wf-{unique}", f"nobody-{unique}").start()
        stack.callback(load.stop)

        # On the doomed server: leases held, and a worker in the middle of its tasks.
        held = [stack.enter_context(to_doomed.lease(key, ttl=timedelta(seconds=TTL), holder="doomed")) for key in keys]
        stack.enter_context(
            running(
                Worker(
                    to_doomed,
                    {worker_rpc: never_returns},
                    max_in_flight=TASKS,
                    task_lease=timedelta(seconds=2),
                    worker_id="on-doomed",
                ),
                5,
            )
        )
        stack.callback(handlers_may_return.set)  # before that worker's stop, which then need not wait
        run = to_survivor.create_run(f"wf-{unique}", {})
        tasks = [
            to_survivor.insert_step_state(run.run_id, f"task-{i}", worker_rpc, {}, retries=2, retry_delay=timedelta(0))
            for i in range(TASKS)
        ]
        for step in tasks:
            to_survivor.set_step_scheduled(step.step_id)
        guarded = to_survivor.insert_step_state(run.run_id, "guarded", f"nobody-{unique}", {})
        wait_for_steps(db, schema, run.run_id, "running", TASKS, timeout=WAIT)

        # On the survivor: waiters for the held keys, queued before the kill.
        granted: dict[str, tuple[int, float]] = {}
        waiter_errors: list[BaseException] = []

        def wait_for(key: str) -> None:
            try:
                with to_survivor.lease(
                    key, ttl=timedelta(seconds=WAIT), wait_timeout=timedelta(seconds=WAIT), holder="survivor"
                ) as lease:
                    granted[key] = (lease.fencing_token, time.monotonic())
            except BaseException as err:  # reported below
                waiter_errors.append(err)

        waiters = [threading.Thread(target=wait_for, args=(key,)) for key in keys]
        for thread in waiters:
            thread.start()
        wait_in_database(
            db, f"(SELECT count(*) FROM {schema}.lease_waiters WHERE key = ANY({{}})) = {{}}", (keys, LEASES), timeout=WAIT
        )
        load.wait_completed(10, timeout=WAIT)

        doomed.kill()  # SIGKILL
        killed_at = time.monotonic()
        load.forget("doomed")

        # Its workers' tasks: swept by the survivor, retried by a worker there.
        def done_here(task: StepTask) -> dict:
            return {"worker": "on-survivor", "attempt": task.attempt}

        with running(Worker(to_survivor, {worker_rpc: done_here}, max_in_flight=TASKS, worker_id="on-survivor"), WAIT):
            for thread in waiters:
                thread.join(WAIT)
            assert not waiter_errors, waiter_errors
            wait_for_steps(db, schema, run.run_id, "succeeded", TASKS, timeout=WAIT)

        # Its leases: granted through the survivor within the ttl, with greater tokens; the old ones refused.
        regranted_after = {key: granted[key][1] - killed_at for key in keys}
        print(f"\nleases granted again {', '.join(f'{s:.2f}s' for s in regranted_after.values())} after the kill (ttl {TTL}s)")
        # The ttl counts from the last keepalive before the kill; the waiter's poll and a loaded machine add a little.
        assert max(regranted_after.values()) < TTL + 2.0
        for lease in held:
            assert granted[lease.key][0] > lease.fencing_token
            assert lease.lost.is_set(), "the holder on the killed server knows its lease is gone"
            with pytest.raises(FailedPrecondition) as stale:
                to_survivor.set_step_running(guarded.step_id, fencing_token=lease.fencing_token, lease_key=lease.key)
            assert (stale.value.reason, stale.value.metadata["lease_key"]) == ("STALE_FENCE", lease.key)
            assert int(stale.value.metadata["current_token"]) >= granted[lease.key][0]
        assert to_survivor.get_step_state(run.run_id, "guarded").status is StepStatus.PENDING

        load.wait_completed(load.completed() + 10, timeout=WAIT)  # the survivor serves the whole load now
        load.stop()

    assert not load.unexpected, load.unexpected
    print(f"{len(load.lifecycles)} lifecycles, {load.completed()} acknowledged to the end; errors: {dict(load.errors)}")
    assert set(load.errors) <= {grpc.StatusCode.UNAVAILABLE}, "calls cut off by the kill are UNAVAILABLE, nothing else"
    assert acknowledged_state_problems(db, schema, load.lifecycles) == []

    history = attempts_by_step(db, schema, [step.step_id for step in tasks])
    assert history_problems(history) == []
    for step in tasks:
        first, retry = history[step.step_id]
        assert first["error"]["message"].startswith("worker lost"), first["error"]
        assert retry["result"] == {"worker": "on-survivor", "attempt": 2}
