"""Stubs generated from proto/workflowstate/v1 by scripts/generate_stubs.py. Do not edit.

Every message, enum and enum value of the package workflowstate.v1, whichever file defines it,
and the descriptor of WorkflowStateService as SERVICE_DESCRIPTOR.
"""

from google.protobuf.descriptor import ServiceDescriptor

from .workflow_state_pb2 import CreateRunRequest
from .workflow_state_pb2 import CreateRunResponse
from .workflow_state_pb2 import GetRunRequest
from .workflow_state_pb2 import GetRunResponse
from .workflow_state_pb2 import GetRunHistoryRequest
from .workflow_state_pb2 import GetRunHistoryResponse
from .workflow_state_pb2 import UpdateRunStatusRequest
from .workflow_state_pb2 import UpdateRunStatusResponse
from .workflow_state_pb2 import InsertStepStateRequest
from .workflow_state_pb2 import InsertStepStateResponse
from .workflow_state_pb2 import GetStepStateRequest
from .workflow_state_pb2 import GetStepStateResponse
from .workflow_state_pb2 import SetStepScheduledRequest
from .workflow_state_pb2 import SetStepScheduledResponse
from .workflow_state_pb2 import SetStepRunningRequest
from .workflow_state_pb2 import SetStepRunningResponse
from .workflow_state_pb2 import SetStepResultRequest
from .workflow_state_pb2 import SetStepResultResponse
from .workflow_state_pb2 import SetStepErrorRequest
from .workflow_state_pb2 import SetStepErrorResponse
from .workflow_state_pb2 import CreateRetryAttemptRequest
from .workflow_state_pb2 import CreateRetryAttemptResponse
from .workflow_state_pb2 import LeaseRequest
from .workflow_state_pb2 import LeaseResponse
from .workflow_state_pb2 import GetLeaseRequest
from .workflow_state_pb2 import GetLeaseResponse
from .workflow_state_pb2 import BatchRequest
from .workflow_state_pb2 import BatchOperation
from .workflow_state_pb2 import BatchResponse
from .workflow_state_pb2 import BatchResult
from .workflow_state_pb2 import BatchError
from .workflow_state_pb2 import StreamStepTasksRequest
from .workflow_state_pb2 import StreamStepTasksResponse
from .workflow_state_pb2 import WatchRunRequest
from .workflow_state_pb2 import WatchRunResponse
from .workflow_state_pb2 import StreamRunEventsRequest
from .workflow_state_pb2 import StreamRunEventsResponse
from .workflow_state_pb2 import ListRunsRequest
from .workflow_state_pb2 import ListRunsResponse
from .workflow_state_pb2 import ListStepsRequest
from .workflow_state_pb2 import ListStepsResponse
from .workflow_state_pb2 import ListWorkflowsRequest
from .workflow_state_pb2 import ListWorkflowsResponse
from .workflow_state_pb2 import WorkflowSummary
from .workflow_state_pb2 import RunStatusCount
from .workflow_state_pb2 import CancelRunRequest
from .workflow_state_pb2 import CancelRunResponse
from .workflow_state_pb2 import CancelRunsRequest
from .workflow_state_pb2 import CancelRunsResponse
from .workflow_state_pb2 import DeleteRunRequest
from .workflow_state_pb2 import DeleteRunResponse
from .workflow_state_pb2 import DeleteRunsRequest
from .workflow_state_pb2 import DeleteRunsResponse
from .workflow_state_pb2 import ListLeasesRequest
from .workflow_state_pb2 import ListLeasesResponse
from .workflow_state_pb2 import SetRetentionPolicyRequest
from .workflow_state_pb2 import SetRetentionPolicyResponse
from .workflow_state_pb2 import ListRetentionPoliciesRequest
from .workflow_state_pb2 import ListRetentionPoliciesResponse
from .workflow_state_pb2 import DeleteRetentionPolicyRequest
from .workflow_state_pb2 import DeleteRetentionPolicyResponse
from .workflow_state_pb2 import ListWorkersRequest
from .workflow_state_pb2 import ListWorkersResponse
from .workflow_state_pb2 import RetentionPolicy
from .workflow_state_pb2 import WorkerInfo
from .workflow_state_pb2 import RunFilter
from .workflow_state_pb2 import StepTaskSubscribe
from .workflow_state_pb2 import StepTaskAck
from .workflow_state_pb2 import StepTaskHeartbeat
from .workflow_state_pb2 import StepTaskComplete
from .workflow_state_pb2 import StepTaskFail
from .workflow_state_pb2 import StepTaskCredit
from .workflow_state_pb2 import StepTaskDrain
from .workflow_state_pb2 import StepTaskSubscribed
from .workflow_state_pb2 import StepTask
from .workflow_state_pb2 import StepTaskAccepted
from .workflow_state_pb2 import StepTaskRefused
from .workflow_state_pb2 import StepTaskCancel
from .workflow_state_pb2 import StepTaskDrained
from .workflow_state_pb2 import StepTaskUpdates
from .workflow_state_pb2 import StepTaskUpdate
from .workflow_state_pb2 import StepTaskBatch
from .workflow_state_pb2 import StepTaskOutcomes
from .workflow_state_pb2 import StepTaskOutcome
from .workflow_state_pb2 import LeaseAcquire
from .workflow_state_pb2 import LeaseKeepAlive
from .workflow_state_pb2 import LeaseRelease
from .workflow_state_pb2 import LeaseGranted
from .workflow_state_pb2 import LeaseKeptAlive
from .workflow_state_pb2 import LeaseReleased
from .workflow_state_pb2 import LeaseLost
from .workflow_state_pb2 import LeaseInfo
from .workflow_state_pb2 import RunEvent
from .workflow_state_pb2 import RunChanged
from .workflow_state_pb2 import StepChanged
from .workflow_state_pb2 import Run
from .workflow_state_pb2 import PlannedStep
from .workflow_state_pb2 import Failure
from .workflow_state_pb2 import StepOptions
from .workflow_state_pb2 import StepState
from .workflow_state_pb2 import StepAttempt
from .workflow_state_pb2 import SetStepSuspendedRequest
from .workflow_state_pb2 import SetStepSuspendedResponse
from .workflow_state_pb2 import SetStepChildRunRequest
from .workflow_state_pb2 import SetStepChildRunResponse
from .workflow_state_pb2 import SetStepBranchRequest
from .workflow_state_pb2 import SetStepBranchResponse
from .workflow_state_pb2 import ClaimStepRequest
from .workflow_state_pb2 import ClaimStepResponse
from .workflow_state_pb2 import UpdateRunStateRequest
from .workflow_state_pb2 import UpdateRunStateResponse
from .workflow_state_pb2 import GetRunStateRequest
from .workflow_state_pb2 import GetRunStateResponse
from .workflow_state_pb2 import UpsertWorkflowVersionRequest
from .workflow_state_pb2 import UpsertWorkflowVersionResponse
from .workflow_state_pb2 import GetWorkflowVersionRequest
from .workflow_state_pb2 import GetWorkflowVersionResponse
from .workflow_state_pb2 import UpdateWorkflowVersionStatusRequest
from .workflow_state_pb2 import UpdateWorkflowVersionStatusResponse
from .workflow_state_pb2 import WorkflowVersion
from .workflow_state_pb2 import ListStalledRunsRequest
from .workflow_state_pb2 import ListStalledRunsResponse
from .workflow_state_pb2 import ListUndispatchedStepsRequest
from .workflow_state_pb2 import ListUndispatchedStepsResponse
from .workflow_state_pb2 import StepRef
from .workflow_state_pb2 import CreateScheduleRequest
from .workflow_state_pb2 import CreateScheduleResponse
from .workflow_state_pb2 import ListSchedulesRequest
from .workflow_state_pb2 import ListSchedulesResponse
from .workflow_state_pb2 import PauseScheduleRequest
from .workflow_state_pb2 import PauseScheduleResponse
from .workflow_state_pb2 import ResumeScheduleRequest
from .workflow_state_pb2 import ResumeScheduleResponse
from .workflow_state_pb2 import DeleteScheduleRequest
from .workflow_state_pb2 import DeleteScheduleResponse
from .workflow_state_pb2 import Schedule
from .workflow_state_pb2 import SetDispatchDefaultsRequest
from .workflow_state_pb2 import SetDispatchDefaultsResponse
from .workflow_state_pb2 import ListDispatchDefaultsRequest
from .workflow_state_pb2 import ListDispatchDefaultsResponse
from .workflow_state_pb2 import DeleteDispatchDefaultsRequest
from .workflow_state_pb2 import DeleteDispatchDefaultsResponse
from .workflow_state_pb2 import DispatchDefaults
from .workflow_state_pb2 import RunOrder
from .workflow_state_pb2 import RUN_ORDER_UNSPECIFIED
from .workflow_state_pb2 import RUN_ORDER_CREATE_TIME_DESC
from .workflow_state_pb2 import RUN_ORDER_CREATE_TIME_ASC
from .workflow_state_pb2 import RunView
from .workflow_state_pb2 import RUN_VIEW_UNSPECIFIED
from .workflow_state_pb2 import RUN_VIEW_BASIC
from .workflow_state_pb2 import RUN_VIEW_FULL
from .workflow_state_pb2 import RunStatus
from .workflow_state_pb2 import RUN_STATUS_UNSPECIFIED
from .workflow_state_pb2 import RUN_STATUS_RUNNING
from .workflow_state_pb2 import RUN_STATUS_COMPLETED
from .workflow_state_pb2 import RUN_STATUS_FAILED
from .workflow_state_pb2 import RUN_STATUS_CANCELLED
from .workflow_state_pb2 import RUN_STATUS_SUSPENDED
from .workflow_state_pb2 import StepStatus
from .workflow_state_pb2 import STEP_STATUS_UNSPECIFIED
from .workflow_state_pb2 import STEP_STATUS_PENDING
from .workflow_state_pb2 import STEP_STATUS_SCHEDULED
from .workflow_state_pb2 import STEP_STATUS_RUNNING
from .workflow_state_pb2 import STEP_STATUS_SUCCEEDED
from .workflow_state_pb2 import STEP_STATUS_FAILED
from .workflow_state_pb2 import STEP_STATUS_SUSPENDED
from .workflow_state_pb2 import LeaseLostReason
from .workflow_state_pb2 import LEASE_LOST_REASON_UNSPECIFIED
from .workflow_state_pb2 import LEASE_LOST_REASON_EXPIRED
from .workflow_state_pb2 import LEASE_LOST_REASON_TAKEN_OVER
from .workflow_state_pb2 import LEASE_LOST_REASON_SERVER_SHUTDOWN
from .workflow_state_pb2 import WorkflowVersionStatus
from .workflow_state_pb2 import WORKFLOW_VERSION_STATUS_UNSPECIFIED
from .workflow_state_pb2 import WORKFLOW_VERSION_STATUS_DRAFT
from .workflow_state_pb2 import WORKFLOW_VERSION_STATUS_ACTIVE
from .workflow_state_pb2 import WORKFLOW_VERSION_STATUS_DECLINED
from .workflow_state_pb2 import ScheduleOverlap
from .workflow_state_pb2 import SCHEDULE_OVERLAP_UNSPECIFIED
from .workflow_state_pb2 import SCHEDULE_OVERLAP_SKIP
from .workflow_state_pb2 import SCHEDULE_OVERLAP_ALLOW
from .workflow_state_pb2 import ScheduleCatchUp
from .workflow_state_pb2 import SCHEDULE_CATCH_UP_UNSPECIFIED
from .workflow_state_pb2 import SCHEDULE_CATCH_UP_SKIP
from .workflow_state_pb2 import SCHEDULE_CATCH_UP_LATEST
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
