"""Stubs generated from proto/workflowstate/v1 by scripts/generate_stubs.py. Do not edit.

Every message, enum and enum value of the package workflowstate.v1, whichever file defines it,
and the descriptor of WorkflowStateService as SERVICE_DESCRIPTOR.
"""

from google.protobuf.descriptor import ServiceDescriptor

from .engine_state_pb2 import SetStepSuspendedRequest
from .engine_state_pb2 import SetStepSuspendedResponse
from .engine_state_pb2 import SetStepChildRunRequest
from .engine_state_pb2 import SetStepChildRunResponse
from .engine_state_pb2 import SetStepBranchRequest
from .engine_state_pb2 import SetStepBranchResponse
from .engine_state_pb2 import ClaimStepRequest
from .engine_state_pb2 import ClaimStepResponse
from .engine_state_pb2 import UpdateRunStateRequest
from .engine_state_pb2 import UpdateRunStateResponse
from .engine_state_pb2 import GetRunStateRequest
from .engine_state_pb2 import GetRunStateResponse
from .engine_state_pb2 import UpsertWorkflowVersionRequest
from .engine_state_pb2 import UpsertWorkflowVersionResponse
from .engine_state_pb2 import GetWorkflowVersionRequest
from .engine_state_pb2 import GetWorkflowVersionResponse
from .engine_state_pb2 import UpdateWorkflowVersionStatusRequest
from .engine_state_pb2 import UpdateWorkflowVersionStatusResponse
from .engine_state_pb2 import WorkflowVersion
from .engine_state_pb2 import ListStalledRunsRequest
from .engine_state_pb2 import ListStalledRunsResponse
from .engine_state_pb2 import ListUndispatchedStepsRequest
from .engine_state_pb2 import ListUndispatchedStepsResponse
from .engine_state_pb2 import StepRef
from .engine_state_pb2 import WorkflowVersionStatus
from .engine_state_pb2 import WORKFLOW_VERSION_STATUS_UNSPECIFIED
from .engine_state_pb2 import WORKFLOW_VERSION_STATUS_DRAFT
from .engine_state_pb2 import WORKFLOW_VERSION_STATUS_ACTIVE
from .engine_state_pb2 import WORKFLOW_VERSION_STATUS_DECLINED
from .events_pb2 import WatchRunRequest
from .events_pb2 import WatchRunResponse
from .events_pb2 import StreamRunEventsRequest
from .events_pb2 import StreamRunEventsResponse
from .events_pb2 import RunEvent
from .events_pb2 import RunChanged
from .events_pb2 import StepChanged
from .leases_pb2 import LeaseRequest
from .leases_pb2 import LeaseResponse
from .leases_pb2 import GetLeaseRequest
from .leases_pb2 import GetLeaseResponse
from .leases_pb2 import ListLeasesRequest
from .leases_pb2 import ListLeasesResponse
from .leases_pb2 import LeaseAcquire
from .leases_pb2 import LeaseKeepAlive
from .leases_pb2 import LeaseRelease
from .leases_pb2 import LeaseGranted
from .leases_pb2 import LeaseKeptAlive
from .leases_pb2 import LeaseReleased
from .leases_pb2 import LeaseLost
from .leases_pb2 import LeaseInfo
from .leases_pb2 import LeaseLostReason
from .leases_pb2 import LEASE_LOST_REASON_UNSPECIFIED
from .leases_pb2 import LEASE_LOST_REASON_EXPIRED
from .leases_pb2 import LEASE_LOST_REASON_TAKEN_OVER
from .leases_pb2 import LEASE_LOST_REASON_SERVER_SHUTDOWN
from .operations_pb2 import BatchRequest
from .operations_pb2 import BatchOperation
from .operations_pb2 import BatchResponse
from .operations_pb2 import BatchResult
from .operations_pb2 import BatchError
from .operations_pb2 import ListRunsRequest
from .operations_pb2 import ListRunsResponse
from .operations_pb2 import ListStepsRequest
from .operations_pb2 import ListStepsResponse
from .operations_pb2 import ListWorkflowsRequest
from .operations_pb2 import ListWorkflowsResponse
from .operations_pb2 import WorkflowSummary
from .operations_pb2 import RunStatusCount
from .operations_pb2 import CancelRunRequest
from .operations_pb2 import CancelRunResponse
from .operations_pb2 import CancelRunsRequest
from .operations_pb2 import CancelRunsResponse
from .operations_pb2 import DeleteRunRequest
from .operations_pb2 import DeleteRunResponse
from .operations_pb2 import DeleteRunsRequest
from .operations_pb2 import DeleteRunsResponse
from .operations_pb2 import SetRetentionPolicyRequest
from .operations_pb2 import SetRetentionPolicyResponse
from .operations_pb2 import ListRetentionPoliciesRequest
from .operations_pb2 import ListRetentionPoliciesResponse
from .operations_pb2 import DeleteRetentionPolicyRequest
from .operations_pb2 import DeleteRetentionPolicyResponse
from .operations_pb2 import ListWorkersRequest
from .operations_pb2 import ListWorkersResponse
from .operations_pb2 import RetentionPolicy
from .operations_pb2 import WorkerInfo
from .operations_pb2 import RunFilter
from .operations_pb2 import RunOrder
from .operations_pb2 import RUN_ORDER_UNSPECIFIED
from .operations_pb2 import RUN_ORDER_CREATE_TIME_DESC
from .operations_pb2 import RUN_ORDER_CREATE_TIME_ASC
from .operations_pb2 import RunView
from .operations_pb2 import RUN_VIEW_UNSPECIFIED
from .operations_pb2 import RUN_VIEW_BASIC
from .operations_pb2 import RUN_VIEW_FULL
from .rpc_facts_pb2 import RpcFacts
from .rpc_facts_pb2 import RpcEffect
from .rpc_facts_pb2 import RPC_EFFECT_UNSPECIFIED
from .rpc_facts_pb2 import RPC_EFFECT_READ
from .rpc_facts_pb2 import RPC_EFFECT_CREATE_RUN
from .rpc_facts_pb2 import RPC_EFFECT_DRIVE_RUN
from .rpc_facts_pb2 import RPC_EFFECT_CANCEL_RUN
from .rpc_facts_pb2 import RPC_EFFECT_ERASE_RUNS
from .rpc_facts_pb2 import RPC_EFFECT_KEEP_RETENTION
from .rpc_facts_pb2 import RPC_EFFECT_MOVE_STEP
from .rpc_facts_pb2 import RPC_EFFECT_CLAIM_STEP
from .rpc_facts_pb2 import RPC_EFFECT_WORKER_TASK
from .rpc_facts_pb2 import RPC_EFFECT_KEEP_VERSIONS
from .rpc_facts_pb2 import RPC_EFFECT_HOLD_LEASE
from .rpc_facts_pb2 import RPC_EFFECT_KEEP_SCHEDULES
from .rpc_facts_pb2 import RPC_EFFECT_SET_DISPATCH_DEFAULTS
from .runs_pb2 import CreateRunRequest
from .runs_pb2 import CreateRunResponse
from .runs_pb2 import GetRunRequest
from .runs_pb2 import GetRunResponse
from .runs_pb2 import GetRunHistoryRequest
from .runs_pb2 import GetRunHistoryResponse
from .runs_pb2 import UpdateRunStatusRequest
from .runs_pb2 import UpdateRunStatusResponse
from .runs_pb2 import InsertStepStateRequest
from .runs_pb2 import InsertStepStateResponse
from .runs_pb2 import GetStepStateRequest
from .runs_pb2 import GetStepStateResponse
from .runs_pb2 import SetStepScheduledRequest
from .runs_pb2 import SetStepScheduledResponse
from .runs_pb2 import SetStepRunningRequest
from .runs_pb2 import SetStepRunningResponse
from .runs_pb2 import SetStepResultRequest
from .runs_pb2 import SetStepResultResponse
from .runs_pb2 import SetStepErrorRequest
from .runs_pb2 import SetStepErrorResponse
from .runs_pb2 import CreateRetryAttemptRequest
from .runs_pb2 import CreateRetryAttemptResponse
from .runs_pb2 import Run
from .runs_pb2 import PlannedStep
from .runs_pb2 import Failure
from .runs_pb2 import StepOptions
from .runs_pb2 import StepState
from .runs_pb2 import StepAttempt
from .runs_pb2 import RunStatus
from .runs_pb2 import RUN_STATUS_UNSPECIFIED
from .runs_pb2 import RUN_STATUS_RUNNING
from .runs_pb2 import RUN_STATUS_COMPLETED
from .runs_pb2 import RUN_STATUS_FAILED
from .runs_pb2 import RUN_STATUS_CANCELLED
from .runs_pb2 import RUN_STATUS_SUSPENDED
from .runs_pb2 import StepStatus
from .runs_pb2 import STEP_STATUS_UNSPECIFIED
from .runs_pb2 import STEP_STATUS_PENDING
from .runs_pb2 import STEP_STATUS_SCHEDULED
from .runs_pb2 import STEP_STATUS_RUNNING
from .runs_pb2 import STEP_STATUS_SUCCEEDED
from .runs_pb2 import STEP_STATUS_FAILED
from .runs_pb2 import STEP_STATUS_SUSPENDED
from .schedules_pb2 import CreateScheduleRequest
from .schedules_pb2 import CreateScheduleResponse
from .schedules_pb2 import ListSchedulesRequest
from .schedules_pb2 import ListSchedulesResponse
from .schedules_pb2 import PauseScheduleRequest
from .schedules_pb2 import PauseScheduleResponse
from .schedules_pb2 import ResumeScheduleRequest
from .schedules_pb2 import ResumeScheduleResponse
from .schedules_pb2 import DeleteScheduleRequest
from .schedules_pb2 import DeleteScheduleResponse
from .schedules_pb2 import Schedule
from .schedules_pb2 import ScheduleOverlap
from .schedules_pb2 import SCHEDULE_OVERLAP_UNSPECIFIED
from .schedules_pb2 import SCHEDULE_OVERLAP_SKIP
from .schedules_pb2 import SCHEDULE_OVERLAP_ALLOW
from .schedules_pb2 import ScheduleCatchUp
from .schedules_pb2 import SCHEDULE_CATCH_UP_UNSPECIFIED
from .schedules_pb2 import SCHEDULE_CATCH_UP_SKIP
from .schedules_pb2 import SCHEDULE_CATCH_UP_LATEST
from .worker_dispatch_pb2 import StreamStepTasksRequest
from .worker_dispatch_pb2 import StreamStepTasksResponse
from .worker_dispatch_pb2 import StepTaskSubscribe
from .worker_dispatch_pb2 import StepTaskAck
from .worker_dispatch_pb2 import StepTaskHeartbeat
from .worker_dispatch_pb2 import StepTaskComplete
from .worker_dispatch_pb2 import StepTaskFail
from .worker_dispatch_pb2 import StepTaskCredit
from .worker_dispatch_pb2 import StepTaskDrain
from .worker_dispatch_pb2 import StepTaskSubscribed
from .worker_dispatch_pb2 import StepTask
from .worker_dispatch_pb2 import StepTaskAccepted
from .worker_dispatch_pb2 import StepTaskRefused
from .worker_dispatch_pb2 import StepTaskCancel
from .worker_dispatch_pb2 import StepTaskDrained
from .worker_dispatch_pb2 import StepTaskUpdates
from .worker_dispatch_pb2 import StepTaskUpdate
from .worker_dispatch_pb2 import StepTaskBatch
from .worker_dispatch_pb2 import StepTaskOutcomes
from .worker_dispatch_pb2 import StepTaskOutcome
from .worker_dispatch_pb2 import SetDispatchDefaultsRequest
from .worker_dispatch_pb2 import SetDispatchDefaultsResponse
from .worker_dispatch_pb2 import ListDispatchDefaultsRequest
from .worker_dispatch_pb2 import ListDispatchDefaultsResponse
from .worker_dispatch_pb2 import DeleteDispatchDefaultsRequest
from .worker_dispatch_pb2 import DeleteDispatchDefaultsResponse
from .worker_dispatch_pb2 import DispatchDefaults
from .workflow_state_pb2 import DESCRIPTOR as _SERVICE_FILE_DESCRIPTOR

# The descriptor of the service: its methods, their request and response types, their options.
SERVICE_DESCRIPTOR: ServiceDescriptor = _SERVICE_FILE_DESCRIPTOR.services_by_name["WorkflowStateService"]

__all__ = [
    "BatchError",
    "BatchOperation",
    "BatchRequest",
    "BatchResponse",
    "BatchResult",
    "CancelRunRequest",
    "CancelRunResponse",
    "CancelRunsRequest",
    "CancelRunsResponse",
    "ClaimStepRequest",
    "ClaimStepResponse",
    "CreateRetryAttemptRequest",
    "CreateRetryAttemptResponse",
    "CreateRunRequest",
    "CreateRunResponse",
    "CreateScheduleRequest",
    "CreateScheduleResponse",
    "DeleteDispatchDefaultsRequest",
    "DeleteDispatchDefaultsResponse",
    "DeleteRetentionPolicyRequest",
    "DeleteRetentionPolicyResponse",
    "DeleteRunRequest",
    "DeleteRunResponse",
    "DeleteRunsRequest",
    "DeleteRunsResponse",
    "DeleteScheduleRequest",
    "DeleteScheduleResponse",
    "DispatchDefaults",
    "Failure",
    "GetLeaseRequest",
    "GetLeaseResponse",
    "GetRunHistoryRequest",
    "GetRunHistoryResponse",
    "GetRunRequest",
    "GetRunResponse",
    "GetRunStateRequest",
    "GetRunStateResponse",
    "GetStepStateRequest",
    "GetStepStateResponse",
    "GetWorkflowVersionRequest",
    "GetWorkflowVersionResponse",
    "InsertStepStateRequest",
    "InsertStepStateResponse",
    "LEASE_LOST_REASON_EXPIRED",
    "LEASE_LOST_REASON_SERVER_SHUTDOWN",
    "LEASE_LOST_REASON_TAKEN_OVER",
    "LEASE_LOST_REASON_UNSPECIFIED",
    "LeaseAcquire",
    "LeaseGranted",
    "LeaseInfo",
    "LeaseKeepAlive",
    "LeaseKeptAlive",
    "LeaseLost",
    "LeaseLostReason",
    "LeaseRelease",
    "LeaseReleased",
    "LeaseRequest",
    "LeaseResponse",
    "ListDispatchDefaultsRequest",
    "ListDispatchDefaultsResponse",
    "ListLeasesRequest",
    "ListLeasesResponse",
    "ListRetentionPoliciesRequest",
    "ListRetentionPoliciesResponse",
    "ListRunsRequest",
    "ListRunsResponse",
    "ListSchedulesRequest",
    "ListSchedulesResponse",
    "ListStalledRunsRequest",
    "ListStalledRunsResponse",
    "ListStepsRequest",
    "ListStepsResponse",
    "ListUndispatchedStepsRequest",
    "ListUndispatchedStepsResponse",
    "ListWorkersRequest",
    "ListWorkersResponse",
    "ListWorkflowsRequest",
    "ListWorkflowsResponse",
    "PauseScheduleRequest",
    "PauseScheduleResponse",
    "PlannedStep",
    "RPC_EFFECT_CANCEL_RUN",
    "RPC_EFFECT_CLAIM_STEP",
    "RPC_EFFECT_CREATE_RUN",
    "RPC_EFFECT_DRIVE_RUN",
    "RPC_EFFECT_ERASE_RUNS",
    "RPC_EFFECT_HOLD_LEASE",
    "RPC_EFFECT_KEEP_RETENTION",
    "RPC_EFFECT_KEEP_SCHEDULES",
    "RPC_EFFECT_KEEP_VERSIONS",
    "RPC_EFFECT_MOVE_STEP",
    "RPC_EFFECT_READ",
    "RPC_EFFECT_SET_DISPATCH_DEFAULTS",
    "RPC_EFFECT_UNSPECIFIED",
    "RPC_EFFECT_WORKER_TASK",
    "RUN_ORDER_CREATE_TIME_ASC",
    "RUN_ORDER_CREATE_TIME_DESC",
    "RUN_ORDER_UNSPECIFIED",
    "RUN_STATUS_CANCELLED",
    "RUN_STATUS_COMPLETED",
    "RUN_STATUS_FAILED",
    "RUN_STATUS_RUNNING",
    "RUN_STATUS_SUSPENDED",
    "RUN_STATUS_UNSPECIFIED",
    "RUN_VIEW_BASIC",
    "RUN_VIEW_FULL",
    "RUN_VIEW_UNSPECIFIED",
    "ResumeScheduleRequest",
    "ResumeScheduleResponse",
    "RetentionPolicy",
    "RpcEffect",
    "RpcFacts",
    "Run",
    "RunChanged",
    "RunEvent",
    "RunFilter",
    "RunOrder",
    "RunStatus",
    "RunStatusCount",
    "RunView",
    "SCHEDULE_CATCH_UP_LATEST",
    "SCHEDULE_CATCH_UP_SKIP",
    "SCHEDULE_CATCH_UP_UNSPECIFIED",
    "SCHEDULE_OVERLAP_ALLOW",
    "SCHEDULE_OVERLAP_SKIP",
    "SCHEDULE_OVERLAP_UNSPECIFIED",
    "SERVICE_DESCRIPTOR",
    "STEP_STATUS_FAILED",
    "STEP_STATUS_PENDING",
    "STEP_STATUS_RUNNING",
    "STEP_STATUS_SCHEDULED",
    "STEP_STATUS_SUCCEEDED",
    "STEP_STATUS_SUSPENDED",
    "STEP_STATUS_UNSPECIFIED",
    "Schedule",
    "ScheduleCatchUp",
    "ScheduleOverlap",
    "SetDispatchDefaultsRequest",
    "SetDispatchDefaultsResponse",
    "SetRetentionPolicyRequest",
    "SetRetentionPolicyResponse",
    "SetStepBranchRequest",
    "SetStepBranchResponse",
    "SetStepChildRunRequest",
    "SetStepChildRunResponse",
    "SetStepErrorRequest",
    "SetStepErrorResponse",
    "SetStepResultRequest",
    "SetStepResultResponse",
    "SetStepRunningRequest",
    "SetStepRunningResponse",
    "SetStepScheduledRequest",
    "SetStepScheduledResponse",
    "SetStepSuspendedRequest",
    "SetStepSuspendedResponse",
    "StepAttempt",
    "StepChanged",
    "StepOptions",
    "StepRef",
    "StepState",
    "StepStatus",
    "StepTask",
    "StepTaskAccepted",
    "StepTaskAck",
    "StepTaskBatch",
    "StepTaskCancel",
    "StepTaskComplete",
    "StepTaskCredit",
    "StepTaskDrain",
    "StepTaskDrained",
    "StepTaskFail",
    "StepTaskHeartbeat",
    "StepTaskOutcome",
    "StepTaskOutcomes",
    "StepTaskRefused",
    "StepTaskSubscribe",
    "StepTaskSubscribed",
    "StepTaskUpdate",
    "StepTaskUpdates",
    "StreamRunEventsRequest",
    "StreamRunEventsResponse",
    "StreamStepTasksRequest",
    "StreamStepTasksResponse",
    "UpdateRunStateRequest",
    "UpdateRunStateResponse",
    "UpdateRunStatusRequest",
    "UpdateRunStatusResponse",
    "UpdateWorkflowVersionStatusRequest",
    "UpdateWorkflowVersionStatusResponse",
    "UpsertWorkflowVersionRequest",
    "UpsertWorkflowVersionResponse",
    "WORKFLOW_VERSION_STATUS_ACTIVE",
    "WORKFLOW_VERSION_STATUS_DECLINED",
    "WORKFLOW_VERSION_STATUS_DRAFT",
    "WORKFLOW_VERSION_STATUS_UNSPECIFIED",
    "WatchRunRequest",
    "WatchRunResponse",
    "WorkerInfo",
    "WorkflowSummary",
    "WorkflowVersion",
    "WorkflowVersionStatus",
]
