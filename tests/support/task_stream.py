"""A worker's StreamStepTasks stream over the raw generated stub, driven by a test."""

from __future__ import annotations

from datetime import timedelta

from support.bidi_stream import BidiStream, duration

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


class TaskStream(BidiStream):
    """Subscribe, then take tasks and answer them (see BidiStream for reading the answers)."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceStub) -> None:
        super().__init__(stub.StreamStepTasks)

    def subscribe(
        self,
        rpc_names: list[str],
        *,
        max_in_flight: int = 10,
        task_lease: timedelta | None = None,
        worker_id: str = "test-worker",
        bulk: bool = False,
    ) -> pb.StepTaskSubscribed:
        subscribe = pb.StepTaskSubscribe(worker_id=worker_id, rpc_names=rpc_names, max_in_flight=max_in_flight, bulk=bulk)
        if task_lease is not None:
            subscribe.task_lease.CopyFrom(duration(task_lease))
        self.send(pb.StreamStepTasksRequest(subscribe=subscribe))
        return self.expect("subscribed")

    def complete(self, task: pb.StepTask, result_json: str = '{"ok": true}', *, attempt: int | None = None) -> None:
        complete = pb.StepTaskComplete(step_id=task.step_id, attempt=attempt or task.attempt, result_json=result_json)
        self.send(pb.StreamStepTasksRequest(complete=complete))

    def fail(self, task: pb.StepTask, message: str, *, retryable: bool = True) -> None:
        fail = pb.StepTaskFail(step_id=task.step_id, attempt=task.attempt, error=pb.Failure(message=message), retryable=retryable)
        self.send(pb.StreamStepTasksRequest(fail=fail))

    def updates(self, *updates: pb.StepTaskUpdate) -> None:
        self.send(pb.StreamStepTasksRequest(updates=pb.StepTaskUpdates(updates=updates)))

    def credit(self, n: int = 1) -> None:
        self.send(pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=n)))

    def heartbeat(self) -> None:
        self.send(pb.StreamStepTasksRequest(heartbeat=pb.StepTaskHeartbeat()))

    def drain(self) -> None:
        self.send(pb.StreamStepTasksRequest(drain=pb.StepTaskDrain()))
