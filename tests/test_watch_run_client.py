"""watch_run and stream_run_events of both clients, set_step_scheduled's not_before and delay.

Against real servers: the session server, and for resumption a server restarted on the same
port, database and schema while a watcher is connected to it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from support.remote_mode import FAST_RECONNECT, free_port, restart
from support.server_process import ServerProcess

from workflowstate.client import (
    AsyncWorkflowStateClient,
    InvalidArgument,
    NotFound,
    Run,
    RunEvent,
    RunStatus,
    StepStatus,
    Unavailable,
    WorkflowStateClient,
)


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


def lifecycle(client: WorkflowStateClient, run: Run, step_name: str = "charge") -> None:
    """One step through a failed attempt and a retry to success, then the run completed."""
    step = client.insert_step_state(run.run_id, step_name, "chargeCard", {"amount": 10})
    client.set_step_scheduled(step.step_id)
    client.set_step_running(step.step_id)
    client.set_step_error(step.step_id, ValueError("declined"))
    client.create_retry_attempt(step.step_id, StepStatus.RUNNING)
    client.set_step_result(step.step_id, {"charged": True})
    client.update_run_status(run.run_id, RunStatus.COMPLETED, output={"ok": True})


def summary(events: list[RunEvent]) -> list[tuple[str, int, str]]:
    """What changed, in order: ("run", 0, status) or (step_name, attempt, status)."""
    return [
        ("run", 0, event.run_status.value) if event.run_status else (event.step.step_name, event.step.attempt, event.step.status.value)
        for event in events
        if event.run_status or event.step
    ]


LIFECYCLE = [
    ("run", 0, "running"),
    ("charge", 1, "pending"),
    ("charge", 1, "scheduled"),
    ("charge", 1, "running"),
    ("charge", 1, "failed"),
    ("charge", 2, "running"),
    ("charge", 2, "succeeded"),
    ("run", 0, "completed"),
]


def test_watch_run_yields_every_event_in_order_and_ends_with_the_run(client: WorkflowStateClient, unique: str) -> None:
    run = client.create_run(f"wf-{unique}", {})
    lifecycle(client, run)

    events = list(client.watch_run(run.run_id))  # ends by itself: the run is over

    assert summary(events) == LIFECYCLE
    assert {event.run_id for event in events} == {run.run_id}
    assert {event.workflow for event in events} == {f"wf-{unique}"}
    assert len({event.event_id for event in events}) == len(events)
    assert all(event.event_time.utcoffset() == timedelta(0) for event in events)
    assert [event.finishes_run for event in events] == [False] * 7 + [True]
    # Resuming after any event gives exactly the rest.
    for i, event in enumerate(events):
        assert list(client.watch_run(run.run_id, after_event_id=event.event_id)) == events[i + 1 :]


def test_watch_run_follows_a_live_run(client: WorkflowStateClient, unique: str) -> None:
    run = client.create_run(f"wf-{unique}", {})
    seen: list[RunEvent] = []
    first = threading.Event()

    def watch() -> None:
        for event in client.watch_run(run.run_id):
            seen.append(event)
            first.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert first.wait(30)  # connected: the run's first event arrived
    lifecycle(client, run)
    watcher.join(60)

    assert not watcher.is_alive()
    assert summary(seen) == LIFECYCLE


def test_watch_run_of_an_unknown_run_or_event_is_not_found(client: WorkflowStateClient, unique: str) -> None:
    with pytest.raises(NotFound) as unknown_run:
        next(client.watch_run(str(uuid.uuid4())))
    assert unknown_run.value.reason == "MISSING"
    run = client.create_run(f"wf-{unique}", {})
    with pytest.raises(NotFound) as unknown_event:
        next(client.watch_run(run.run_id, after_event_id=2**62))
    assert unknown_event.value.reason == "NOT_FOUND"


def test_stopping_the_iteration_ends_the_stream(client: WorkflowStateClient, unique: str) -> None:
    run = client.create_run(f"wf-{unique}", {})
    events = client.watch_run(run.run_id)
    assert next(events).run_status is RunStatus.RUNNING
    events.close()  # cancels the stream; the run is still running
    with pytest.raises(StopIteration):
        next(events)


def test_stream_run_events_keeps_only_the_workflow_asked_for(client: WorkflowStateClient, unique: str) -> None:
    run = client.create_run(f"wf-{unique}", {})
    client.create_run(f"other-{unique}", {})
    lifecycle(client, run)

    seen = []
    for event in client.stream_run_events(workflow=f"wf-{unique}"):
        seen.append(event)
        if event.finishes_run:
            break  # the stream itself never ends

    assert seen == list(client.watch_run(run.run_id))


def test_a_server_that_never_answers_raises_unavailable_after_reconnect_timeout() -> None:
    with WorkflowStateClient(f"127.0.0.1:{free_port()}") as client:
        with pytest.raises(Unavailable):
            next(client.watch_run(str(uuid.uuid4()), reconnect_timeout=timedelta(seconds=1)))


def test_watch_run_resumes_across_a_server_restart_without_gaps_or_repeats(
    start_server: Callable[..., ServerProcess], unique: str
) -> None:
    port = free_port()
    first_server = restart(start_server, None, port, f"t_{unique}")
    target = f"127.0.0.1:{port}"
    with WorkflowStateClient(target, channel_options=FAST_RECONNECT) as client:
        run = client.create_run(f"wf-{unique}", {})
        step = client.insert_step_state(run.run_id, "charge", "chargeCard", {})
        seen: list[RunEvent] = []
        arrived = threading.Condition()

        def watch() -> None:
            for event in client.watch_run(run.run_id):
                with arrived:
                    seen.append(event)
                    arrived.notify_all()

        watcher = threading.Thread(target=watch)
        watcher.start()
        with arrived:
            assert arrived.wait_for(lambda: len(seen) == 2, 30)  # run created, step pending

        restart(start_server, first_server, port, first_server.schema)
        client.set_step_scheduled(step.step_id)
        client.set_step_running(step.step_id)
        client.set_step_result(step.step_id, {"charged": True})
        client.update_run_status(run.run_id, RunStatus.COMPLETED)
        watcher.join(60)

        assert not watcher.is_alive()
        assert seen == list(client.watch_run(run.run_id))
        assert summary(seen)[-1] == ("run", 0, "completed")
        assert len(seen) == 6


async def test_async_watch_run_and_stream_run_events(server_target: str, unique: str) -> None:
    with WorkflowStateClient(server_target) as sync_client:
        run = sync_client.create_run(f"wf-{unique}", {})
        lifecycle(sync_client, run)
        expected = list(sync_client.watch_run(run.run_id))
    async with AsyncWorkflowStateClient(server_target) as client:
        assert [event async for event in client.watch_run(run.run_id)] == expected
        resumed = client.watch_run(run.run_id, after_event_id=expected[3].event_id)
        assert [event async for event in resumed] == expected[4:]

        seen = []
        async for event in client.stream_run_events(workflow=f"wf-{unique}"):
            seen.append(event)
            if event.finishes_run:
                break
        assert seen == expected

        with pytest.raises(NotFound) as unknown_run:
            await anext(client.watch_run(str(uuid.uuid4())))
        assert unknown_run.value.reason == "MISSING"


def test_set_step_scheduled_with_not_before_or_delay(client: WorkflowStateClient, unique: str) -> None:
    run = client.create_run(f"wf-{unique}", {})
    later = datetime(2100, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    at_time = client.insert_step_state(run.run_id, "at-time", "sleep", {})
    assert client.set_step_scheduled(at_time.step_id, not_before=later).not_before == later

    delayed = client.insert_step_state(run.run_id, "delayed", "sleep", {})
    scheduled = client.set_step_scheduled(delayed.step_id, delay=timedelta(hours=1))
    assert scheduled.not_before is not None and scheduled.scheduled_time is not None
    assert scheduled.not_before - scheduled.scheduled_time == timedelta(hours=1)  # the server's clock, both

    now = client.insert_step_state(run.run_id, "now", "sleep", {})
    scheduled = client.set_step_scheduled(now.step_id)
    assert scheduled.not_before == scheduled.scheduled_time
    assert scheduled.worker_id is None

    with pytest.raises(ValueError, match="not both"):
        client.set_step_scheduled(now.step_id, not_before=later, delay=timedelta(1))
    with pytest.raises(ValueError, match="naive"):
        client.set_step_scheduled(now.step_id, not_before=datetime(2100, 1, 1))
    pending = client.insert_step_state(run.run_id, "negative", "sleep", {})
    with pytest.raises(InvalidArgument):
        client.set_step_scheduled(pending.step_id, delay=timedelta(seconds=-1))
