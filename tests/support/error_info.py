"""The ErrorInfo of a refused call, read from its raw trailing metadata as any gRPC client would.

It needs only grpc and google.rpc, not the package's stubs, so a process that imports another
release's stubs (tests/support/previous_release_calls.py) can use it too.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def error_info_of(err: grpc.RpcError) -> tuple[str, str, dict[str, str]]:
    """The reason, domain and metadata of a failed call's ErrorInfo; ('', '', {}) when there is none."""
    details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return "", "", {}
    status = status_pb2.Status.FromString(details)
    assert (status.code, status.message) == (err.code().value[0], err.details()), "the details must restate the status"
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, info.domain, dict(info.metadata)
    return "", "", {}
