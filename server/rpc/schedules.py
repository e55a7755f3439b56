"""Schedules: CreateSchedule, ListSchedules, PauseSchedule, ResumeSchedule, DeleteSchedule.
Validate the request into Python values, let the schedule store make the change in one statement,
turn the row into the response; a change that may bring a schedule's next occurrence closer wakes
this server's firer.
"""

from __future__ import annotations

import re

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..schedules.firer import ScheduleFirer
from ..schedules.limits import ScheduleLimits
from ..schedules.store import ScheduleSpec, ScheduleStore
from ..schedules.timing import Timing
from . import convert, page_tokens, validation
from .handlers import handles
from .payloads import Payloads
from .reply_bounds import ReplyBound


class ScheduleRpcs:
    """CreateSchedule ... DeleteSchedule, over the schedule store; `firer` is this server's."""

    def __init__(
        self, schedules: ScheduleStore, firer: ScheduleFirer, limits: ScheduleLimits, reply_bound: ReplyBound, payloads: Payloads
    ) -> None:
        self._schedules = schedules
        self._schedule_firer = firer
        self._schedule_limits = limits
        self._reply_bound = reply_bound
        self._payloads = payloads

    @handles("CreateSchedule")
    async def create_schedule(
        self,
        request: pb.CreateScheduleRequest,
        context: grpc.aio.ServicerContext[pb.CreateScheduleRequest, pb.CreateScheduleResponse],
    ) -> pb.CreateScheduleResponse:
        spec = ScheduleSpec(
            schedule_id=_schedule_id(request.schedule_id),
            workflow=validation.check_name("workflow", request.workflow),
            timing=Timing.checked(
                validation.check_name("cron", request.cron, required=False) or None,
                convert.duration_from_proto("interval", request.interval) if request.HasField("interval") else None,
                validation.check_name("timezone", request.timezone, required=False),
                min_interval=self._schedule_limits.min_interval,
            ),
            input_json=self._payloads.json("input_json", request.input_json),
            overlap=convert.schedule_overlap_from_proto("overlap", request.overlap),
            catch_up=convert.schedule_catch_up_from_proto("catch_up", request.catch_up),
        )
        row = await self._schedules.create(spec, max_schedules=self._schedule_limits.max_schedules)
        self._schedule_firer.wake()
        return pb.CreateScheduleResponse(schedule=convert.schedule_to_proto(row))

    @handles("ListSchedules")
    async def list_schedules(
        self,
        request: pb.ListSchedulesRequest,
        context: grpc.aio.ServicerContext[pb.ListSchedulesRequest, pb.ListSchedulesResponse],
    ) -> pb.ListSchedulesResponse:
        page_size = page_tokens.page_size(request.page_size)
        after = page_tokens.decode_schedule_position(request.page_token)

        # A schedule carries one payload, its input.
        row_bytes = self._reply_bound.row_bytes(payload_fields=1)
        page, last = await self._reply_bound.page(
            self._schedules.list, lambda row: row["schedule_id"], convert.schedule_to_proto, after=after, page_size=page_size, row_bytes=row_bytes
        )
        next_token = page_tokens.encode_schedule_position(last) if last is not None else ""
        return pb.ListSchedulesResponse(schedules=page, next_page_token=next_token)

    @handles("PauseSchedule")
    async def pause_schedule(
        self,
        request: pb.PauseScheduleRequest,
        context: grpc.aio.ServicerContext[pb.PauseScheduleRequest, pb.PauseScheduleResponse],
    ) -> pb.PauseScheduleResponse:
        row = await self._schedules.pause(_schedule_id(request.schedule_id))
        return pb.PauseScheduleResponse(schedule=convert.schedule_to_proto(row))

    @handles("ResumeSchedule")
    async def resume_schedule(
        self,
        request: pb.ResumeScheduleRequest,
        context: grpc.aio.ServicerContext[pb.ResumeScheduleRequest, pb.ResumeScheduleResponse],
    ) -> pb.ResumeScheduleResponse:
        row = await self._schedules.resume(_schedule_id(request.schedule_id))
        self._schedule_firer.wake()
        return pb.ResumeScheduleResponse(schedule=convert.schedule_to_proto(row))

    @handles("DeleteSchedule")
    async def delete_schedule(
        self,
        request: pb.DeleteScheduleRequest,
        context: grpc.aio.ServicerContext[pb.DeleteScheduleRequest, pb.DeleteScheduleResponse],
    ) -> pb.DeleteScheduleResponse:
        await self._schedules.delete(_schedule_id(request.schedule_id))
        return pb.DeleteScheduleResponse()


# A schedule id: short, printable, and safe in a URL, a shell and a log line.
_SCHEDULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _schedule_id(value: str) -> str:
    if not value:
        raise errors.InvalidArgument("schedule_id is required", field="schedule_id")
    if not _SCHEDULE_ID.fullmatch(value):
        raise errors.InvalidArgument(
            "schedule_id must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit, "
            f"got {value[:64]!r}",
            field="schedule_id",
        )
    return value


__all__ = ["ScheduleRpcs"]
