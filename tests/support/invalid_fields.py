"""A client interceptor that notes every INVALID_ARGUMENT a channel's unary calls get, with the `field`
its ErrorInfo names: for a test file to check that every refusal of bad input names the wrong field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from .error_info import error_info_of


class InvalidArgumentFields(grpc.UnaryUnaryClientInterceptor):
    """Each INVALID_ARGUMENT seen, as (method, message, field): field is '' when the ErrorInfo names none."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def intercept_unary_unary(self, continuation: Callable[..., Any], client_call_details: Any, request: Any) -> Any:
        outcome = continuation(client_call_details, request)
        err = outcome.exception()
        if isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            _, _, metadata = error_info_of(err)
            self.seen.append((client_call_details.method, err.details(), metadata.get("field", "")))
        return outcome

    def without_field(self) -> list[tuple[str, str, str]]:
        return [seen for seen in self.seen if not seen[2]]
