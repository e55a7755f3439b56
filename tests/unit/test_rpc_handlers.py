"""Every RPC of the service has exactly one handler, marked in its capability's module, and a table
that disagrees with the service stops the server's start, naming what is missing or unknown."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from workflowstate.server.rpc.batch import BatchRunner
from workflowstate.server.rpc.engine import EngineRpcs
from workflowstate.server.rpc.events import EventRpcs
from workflowstate.server.rpc.handlers import check_complete, handled_by, handlers_of, handles
from workflowstate.server.rpc.leases import LeaseRpcs
from workflowstate.server.rpc.operations import OperationRpcs
from workflowstate.server.rpc.rpc_facts import SERVICE
from workflowstate.server.rpc.runs import RunRpcs
from workflowstate.server.rpc.schedules import ScheduleRpcs
from workflowstate.server.rpc.steps import StepRpcs
from workflowstate.server.rpc.workers import WorkerRpcs

CAPABILITIES = (RunRpcs, StepRpcs, EngineRpcs, LeaseRpcs, WorkerRpcs, EventRpcs, ScheduleRpcs, OperationRpcs, BatchRunner)


def test_the_capabilities_answer_every_rpc_once() -> None:
    answered = [rpc for kind in CAPABILITIES for rpc in handled_by(kind)]
    assert len(answered) == len(set(answered)), sorted(rpc for rpc in answered if answered.count(rpc) > 1)
    assert set(answered) == {method.name for method in SERVICE.methods}


def test_a_table_without_a_handler_of_every_rpc_stops_the_start() -> None:
    table = {method.name: object() for method in SERVICE.methods}
    check_complete(table, SERVICE)
    del table["GetRun"]
    table["GetRuns"] = object()
    with pytest.raises(RuntimeError, match=r"RPCs without a handler \['GetRun'\], handlers of no RPC \['GetRuns'\]"):
        check_complete(table, SERVICE)


class _One:
    @handles("GetRun")
    async def get_run(self, request: Any, context: grpc.aio.ServicerContext) -> None: ...


class _Other:
    @handles("GetRun")
    async def read_run(self, request: Any, context: grpc.aio.ServicerContext) -> None: ...


def test_two_handlers_of_one_rpc_stop_the_start() -> None:
    assert set(handlers_of((_One(),))) == {"GetRun"}
    with pytest.raises(RuntimeError, match=r"two handlers of the RPC GetRun: _One.get_run and _Other.read_run"):
        handlers_of((_One(), _Other()))
