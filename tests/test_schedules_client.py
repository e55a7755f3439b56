"""The schedules methods of both Python clients, against a real server: an orchestrator that follows
its workflow's events starts each scheduled run."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from workflowstate.client import (
    AlreadyExists,
    AsyncWorkflowStateClient,
    InvalidArgument,
    NotFound,
    RunStatus,
    ScheduleCatchUp,
    ScheduleOverlap,
    WorkflowStateClient,
)


# Schedules of a second, so that their runs come within the test's time: a server told to take them.
SECOND_SCHEDULES = ("--schedule-min-interval", "1")


def test_an_orchestrator_sees_each_scheduled_run_and_manages_the_schedule(start_server) -> None:
    server_target = start_server(*SECOND_SCHEDULES).target
    schedule_id = f"client-{uuid.uuid4().hex[:8]}"
    workflow = f"nightly-{schedule_id}"
    with WorkflowStateClient(server_target) as client:
        events = client.stream_run_events(workflow=workflow)
        schedule = client.create_schedule(schedule_id, workflow, {"report": "sales"}, interval=timedelta(seconds=1), overlap=ScheduleOverlap.ALLOW)
        assert (schedule.interval, schedule.cron, schedule.timezone, schedule.input) == (timedelta(seconds=1), None, "UTC", {"report": "sales"})
        assert (schedule.overlap, schedule.catch_up, schedule.paused, schedule.last_run_id) == (ScheduleOverlap.ALLOW, ScheduleCatchUp.SKIP, False, None)
        assert schedule.next_fire_time is not None and schedule.next_fire_time > schedule.create_time - timedelta(seconds=1)
        # The same call again is the same schedule; another one with its id is refused.
        assert client.create_schedule(schedule_id, workflow, {"report": "sales"}, interval=timedelta(seconds=1), overlap=ScheduleOverlap.ALLOW) == schedule
        with pytest.raises(AlreadyExists) as other_settings:
            client.create_schedule(schedule_id, workflow, {"report": "stock"}, interval=timedelta(seconds=1))
        assert other_settings.value.reason == "ALREADY_EXISTS"

        event = next(events)  # the run's creation, made by the server
        assert event.run_status is RunStatus.RUNNING
        run = client.get_run(event.run_id)
        assert run is not None and (run.workflow, run.input, run.schedule_id) == (workflow, {"report": "sales"}, schedule_id)
        assert run.schedule_time is not None and run.schedule_time >= schedule.next_fire_time
        paused = client.pause_schedule(schedule_id)
        assert paused.paused and paused.next_fire_time is None
        # No RUNNING run is left behind in the session's schema for other tests to meet.
        for made in list(client.iter_runs(workflow=workflow, statuses=[RunStatus.RUNNING])):
            client.update_run_status(made.run_id, RunStatus.COMPLETED)
        listed = next(s for s in client.iter_schedules(page_size=1) if s.schedule_id == schedule_id)
        assert listed.last_run_id is not None and listed.last_schedule_time is not None and listed.last_run_status is RunStatus.COMPLETED
        resumed = client.resume_schedule(schedule_id)
        assert not resumed.paused and resumed.next_fire_time is not None
        client.delete_schedule(schedule_id)
        with pytest.raises(NotFound) as gone:
            client.delete_schedule(schedule_id)
        assert gone.value.reason == "NOT_FOUND"
        assert client.get_run(run.run_id).schedule_id == schedule_id  # the runs stay


def test_the_client_raises_invalid_argument_naming_the_field(start_server) -> None:
    with WorkflowStateClient(start_server(*SECOND_SCHEDULES).target) as client:
        with pytest.raises(InvalidArgument, match="^INVALID_ARGUMENT: timezone is not a known IANA timezone"):
            client.create_schedule("bad-zone", "w", cron="0 9 * * *", timezone="Atlantis/Capital")
        with pytest.raises(InvalidArgument, match="^INVALID_ARGUMENT: interval must be at least 1 s"):
            client.create_schedule("too-often", "w", interval=timedelta(milliseconds=10))
        with pytest.raises(InvalidArgument, match="^INVALID_ARGUMENT: set exactly one of cron and interval"):
            client.create_schedule("neither", "w")


async def test_the_async_client_has_the_same_methods(server_target: str) -> None:
    schedule_id = f"async-{uuid.uuid4().hex[:8]}"
    async with AsyncWorkflowStateClient(server_target) as client:
        schedule = await client.create_schedule(
            schedule_id, "monthly", cron="0 6 1 * *", timezone="America/New_York", catch_up=ScheduleCatchUp.LATEST
        )
        assert (schedule.cron, schedule.timezone, schedule.catch_up, schedule.overlap) == (
            "0 6 1 * *", "America/New_York", ScheduleCatchUp.LATEST, ScheduleOverlap.SKIP,
        )  # fmt: skip
        assert schedule.next_fire_time is not None and schedule.next_fire_time.day == 1  # 06:00 in New York is 10:00 or 11:00 UTC
        page = await client.list_schedules(page_size=1000)
        assert schedule_id in [s.schedule_id for s in page.schedules]
        assert schedule_id in [s.schedule_id async for s in client.iter_schedules()]
        assert (await client.pause_schedule(schedule_id)).paused
        assert not (await client.resume_schedule(schedule_id)).paused
        await client.delete_schedule(schedule_id)
        with pytest.raises(NotFound) as deleted:
            await client.pause_schedule(schedule_id)
        assert deleted.value.reason == "NOT_FOUND"
